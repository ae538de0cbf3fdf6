"""
The IOutbox contract, run against the in-memory and the SQLite backends.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import pytest_twisted
from zope.interface.verify import verifyObject

from gateway.domain.errors import InvalidArgument, NotFound, Unavailable
from gateway.domain.model import Device, Profile
from gateway.store.interfaces import IOutbox, IStore
from gateway.store.unit import (
    AppendEvent,
    AppendTelemetry,
    OutboxEvent,
    UnitOfWork,
)
from tests.store.conftest import BACKENDS, open_backend


def event(device_id: str = "d1", n: int = 1, type: str = "t.v1") -> AppendEvent:
    return AppendEvent(device_id, f"id-{device_id}-{n}", type, 1000 + n, 2000 + n, f'{{"n":{n}}}')


async def _fill(store: IStore, *events: AppendEvent) -> list[int]:
    return await store.commit(UnitOfWork(events))


def test_provides_interface(store: IStore) -> None:
    """Each backend provides IOutbox completely."""
    assert verifyObject(IOutbox, store)


@pytest_twisted.ensureDeferred
async def test_append_gives_each_device_its_own_sequence(store: IOutbox) -> None:
    """Sequence numbers count 1, 2, 3 per device; positions ascend across devices."""
    results = await _fill(store, event("a", 1), event("b", 1), event("a", 2))  # type: ignore[arg-type]
    assert results == [1, 1, 2]
    held = await store.peek(10)
    assert [(e.device_id, e.sequence) for e in held] == [("a", 1), ("b", 1), ("a", 2)]
    assert held[0] == OutboxEvent(held[0].position, "a", 1, "id-a-1", "t.v1", 1001, 2001, '{"n":1}')
    assert held[0].position < held[1].position < held[2].position
    assert await store.size() == 3


@pytest_twisted.ensureDeferred
async def test_failed_unit_leaves_no_event_and_no_gap(store: IStore) -> None:
    """A unit that fails after its event keeps neither the event nor its sequence number."""
    with pytest.raises(NotFound):
        await store.commit(
            UnitOfWork.of(event("d1", 1), AppendTelemetry("nobody", [(1, {"k": 1})]))
        )
    outbox: IOutbox = store  # type: ignore[assignment]
    assert await outbox.size() == 0
    assert await store.commit_one(event("d1", 2)) == 1


@pytest_twisted.ensureDeferred
async def test_event_commits_with_telemetry(store: IStore) -> None:
    """An event in the same unit as the device's telemetry is held once the unit commits."""
    await store.create_device(Device("d1", "one"))
    await store.commit(UnitOfWork.of(AppendTelemetry("d1", [(5, {"k": 1})]), event("d1")))
    assert len(await store.get_latest_telemetry("d1")) == 1
    assert [e.event_id for e in await store.peek(5)] == ["id-d1-1"]  # type: ignore[attr-defined]


@pytest_twisted.ensureDeferred
async def test_peek_pages_after_a_position(store: IOutbox) -> None:
    """peek returns at most C{limit} events, oldest first, after the position given."""
    await _fill(store, *(event("d", n) for n in range(1, 6)))  # type: ignore[arg-type]
    first = await store.peek(2)
    rest = await store.peek(10, after=first[-1].position)
    assert [e.sequence for e in first] == [1, 2]
    assert [e.sequence for e in rest] == [3, 4, 5]


@pytest_twisted.ensureDeferred
async def test_acknowledge_removes_only_those_events(store: IOutbox) -> None:
    """Acknowledged events leave the outbox; the count says how many were held."""
    await _fill(store, *(event("d", n) for n in range(1, 4)))  # type: ignore[arg-type]
    held = await store.peek(10)
    assert await store.acknowledge([held[0].position, held[2].position, 999_999]) == 2
    assert [e.sequence for e in await store.peek(10)] == [2]
    assert await store.size() == 1
    assert await store.acknowledge([held[0].position]) == 0


@pytest_twisted.ensureDeferred
async def test_query_filters_by_device_and_type(store: IOutbox) -> None:
    """query selects by device and by type, and pages with after and limit."""
    await _fill(
        store,  # type: ignore[arg-type]
        event("a", 1, "x"), event("b", 1, "x"), event("a", 2, "y"), event("a", 3, "x"),
    )
    assert [e.sequence for e in await store.query(device_id="a")] == [1, 2, 3]
    assert [e.device_id for e in await store.query(type="x")] == ["a", "b", "a"]
    found = await store.query(device_id="a", type="x", limit=1)
    assert [e.sequence for e in found] == [1]
    later = await store.query(device_id="a", type="x", after=found[0].position)
    assert [e.sequence for e in later] == [3]


@pytest_twisted.ensureDeferred
async def test_dead_letter_replay_and_discard(store: IOutbox) -> None:
    """A dead letter leaves the outbox with its answer; replay re-appends it, discard drops it."""
    await _fill(store, event("d", 1), event("d", 2), event("d", 3))  # type: ignore[arg-type]
    held = await store.peek(10)
    assert await store.dead_letter(held[0].position, 400, "bad event", 7) is True
    assert await store.dead_letter(held[1].position, 0, "refused", 8) is True
    assert await store.dead_letter(held[0].position, 400, "again", 9) is False
    dead = await store.dead_letters()
    assert [(d.event, d.status, d.reason, d.failed_ms) for d in dead] == [
        (held[0], 400, "bad event", 7),
        (held[1], 0, "refused", 8),
    ]
    assert await store.size() == 1
    assert await store.replay([held[0].position]) == 1
    again = await store.peek(10)
    assert [(e.sequence, e.event_id) for e in again] == [(3, "id-d-3"), (1, "id-d-1")]
    assert again[1].position > held[2].position
    assert await store.size() == 2
    assert await store.discard() == 1
    assert await store.dead_letters() == []
    assert await store.replay() == 0


@pytest_twisted.ensureDeferred
async def test_dead_letters_page(store: IOutbox) -> None:
    """dead_letters returns at most C{limit}, oldest first, after the position given."""
    await _fill(store, *(event("d", n) for n in range(1, 4)))  # type: ignore[arg-type]
    for e in await store.peek(10):
        await store.dead_letter(e.position, 400, "no", 1)
    first = await store.dead_letters(limit=2)
    assert [d.event.sequence for d in first] == [1, 2]
    rest = await store.dead_letters(after=first[-1].event.position)
    assert [d.event.sequence for d in rest] == [3]


@pytest_twisted.ensureDeferred
async def test_bad_event_text_is_refused_when_built() -> None:
    """An event attribute that is not valid Unicode is refused before any backend sees it."""
    with pytest.raises(InvalidArgument):
        AppendEvent("d", "\ud800", "t", 1, 1, "{}")


@pytest_twisted.async_yield_fixture(params=BACKENDS)
async def limited(request: pytest.FixtureRequest, tmp_path: Path):  # type: ignore[no-untyped-def]
    s = await open_backend(request, tmp_path, outbox_limit=2)
    await s.put_profile(Profile("default"))
    await s.create_device(Device("d1", "one"))
    yield s
    await s.close()


@pytest_twisted.ensureDeferred
async def test_full_outbox_refuses_the_whole_unit(limited: IStore) -> None:
    """At the limit an append fails Unavailable and its unit's other writes are undone."""
    await _fill(limited, event("d1", 1), event("d1", 2))
    with pytest.raises(Unavailable):
        await limited.commit(UnitOfWork.of(AppendTelemetry("d1", [(5, {"k": 1})]), event("d1", 3)))
    assert await limited.get_latest_telemetry("d1") == []
    outbox: IOutbox = limited  # type: ignore[assignment]
    await outbox.acknowledge([(await outbox.peek(1))[0].position])
    assert await limited.commit_one(event("d1", 3)) == 3


@pytest_twisted.ensureDeferred
async def test_replay_ignores_the_limit(limited: IStore) -> None:
    """Replayed dead letters return to a full outbox (they were accepted once)."""
    outbox: IOutbox = limited  # type: ignore[assignment]
    await _fill(limited, event("d1", 1), event("d1", 2))
    first = (await outbox.peek(1))[0]
    await outbox.dead_letter(first.position, 400, "no", 1)
    await limited.commit_one(event("d1", 3))
    assert await outbox.replay() == 1
    assert await outbox.size() == 3


@pytest_twisted.ensureDeferred
async def test_prune_by_age_then_by_count(store: IOutbox) -> None:
    """Pruning drops events received before the cut-off, then the oldest beyond C{keep}."""
    await _fill(store, *(event("d", n) for n in range(1, 7)))  # type: ignore[arg-type]
    # received_ms is 2000 + n: events 1 and 2 are older than 2003.
    assert await store.prune(2003, keep=3) == 3
    assert [e.sequence for e in await store.peek(10)] == [4, 5, 6]
    assert await store.size() == 3
    assert await store.prune(0, keep=10) == 0
    assert await store.commit_one(event("d", 7)) == 7  # type: ignore[attr-defined]
