"""
The ICommandQueue contract (the RPC queue) and the devices' power-saving
settings, run against the in-memory and the SQLite backends.
"""

from __future__ import annotations

import attrs
import pytest
import pytest_twisted
from zope.interface.verify import verifyObject

from gateway.domain.errors import Conflict, IdTaken, InvalidArgument, NotFound
from gateway.domain.model import Device, PowerMode, Rpc, RpcState
from gateway.store.interfaces import ICommandQueue, IStore
from gateway.store.unit import (
    CreateDevice,
    DeleteProfile,
    EnqueueRpc,
    UnitOfWork,
    UpdateRpc,
)

QUEUED, SENT, DELIVERED = RpcState.QUEUED, RpcState.SENT, RpcState.DELIVERED


def rpc(device_id: str = "d1", method: str = "setLed", **kw: object) -> Rpc:
    fields: dict[str, object] = {
        "id": 0, "params": {"on": True}, "oneway": False, "timeout_ms": 10_000,
        "expires_at": 1_700_000_060_000, "created": 1_700_000_000_000,
        "updated": 1_700_000_000_000,
    }
    fields.update(kw)
    return Rpc(device_id, method=method, **fields)  # type: ignore[arg-type]


async def _devices(store: IStore, *ids: str) -> None:
    for i in ids:
        await store.create_device(Device(i, f"name-{i}"))


async def enqueue(store: IStore, r: Rpc, limit: int = 100, keep: int = 100) -> Rpc:
    """Queue C{r} under the next id."""
    last = await ICommandQueue(store).last_rpc_id()
    (stored,) = await store.commit(
        UnitOfWork.of(EnqueueRpc(attrs.evolve(r, id=last + 1), limit, keep))
    )
    assert isinstance(stored, Rpc)
    return stored


def test_provides_interface(store: IStore) -> None:
    """Each backend provides ICommandQueue completely."""
    assert verifyObject(ICommandQueue, store)


@pytest_twisted.ensureDeferred
async def test_enqueue_keeps_ids_and_reads_back(store: IStore) -> None:
    """Queued RPCs keep their increasing ids across devices and read back as queued."""
    await _devices(store, "d1", "d2")
    first = await enqueue(store, rpc("d1", "a"))
    second = await enqueue(store, rpc("d2", "b"))
    third = await enqueue(store, rpc("d1", "c", params=[1, "x", None], content_type="a/b"))
    assert 0 < first.id < second.id < third.id
    queue = ICommandQueue(store)
    assert await queue.get_rpc("d1", first.id) == first
    assert await queue.get_rpc("d2", first.id) is None
    assert [r.method for r in await queue.list_rpcs("d1")] == ["a", "c"]
    assert (await queue.list_rpcs("d1"))[1].params == [1, "x", None]
    assert (first.content_type, (await queue.get_rpc("d1", third.id)).content_type) == (None, "a/b")


@pytest_twisted.ensureDeferred
async def test_params_are_a_snapshot(store: IStore) -> None:
    """Changing the params after queueing changes nothing stored."""
    await _devices(store, "d1")
    params = {"n": [1]}
    op = EnqueueRpc(rpc(id=1, params=params), 10, 10)
    params["n"].append(2)
    (stored,) = await store.commit(UnitOfWork.of(op))
    assert (await ICommandQueue(store).get_rpc("d1", stored.id)).params == {"n": [1]}


@pytest_twisted.ensureDeferred
async def test_enqueue_for_missing_device_is_not_found(store: IStore) -> None:
    """An RPC for a device that does not exist is refused with NotFound."""
    with pytest.raises(NotFound):
        await enqueue(store, rpc("ghost"))


@pytest_twisted.ensureDeferred
async def test_full_queue_is_a_conflict_counting_unfinished_only(store: IStore) -> None:
    """A device holding `limit` unfinished RPCs refuses another; finished ones do not count."""
    await _devices(store, "d1")
    a = await enqueue(store, rpc(), limit=2)
    await enqueue(store, rpc(), limit=2)
    with pytest.raises(Conflict, match="full"):
        await enqueue(store, rpc(), limit=2)
    done = attrs.evolve(a, state=RpcState.SUCCESSFUL, response={"ok": 1})
    await store.commit(UnitOfWork.of(UpdateRpc(done, (QUEUED,))))
    await enqueue(store, rpc(), limit=2)


@pytest_twisted.ensureDeferred
async def test_oldest_finished_are_pruned(store: IStore) -> None:
    """Beyond keep_finished, the device's oldest finished RPCs go when another is queued."""
    await _devices(store, "d1")
    ids = []
    for _ in range(3):
        queued = await enqueue(store, rpc())
        await store.commit(
            UnitOfWork.of(UpdateRpc(attrs.evolve(queued, state=RpcState.EXPIRED), (QUEUED,)))
        )
        ids.append(queued.id)
    last = await enqueue(store, rpc(), keep=1)
    assert [r.id for r in await ICommandQueue(store).list_rpcs("d1")] == [ids[2], last.id]


@pytest_twisted.ensureDeferred
async def test_update_sets_state_fields_only(store: IStore) -> None:
    """An update changes state, retries, times, response and error; method and params stay."""
    await _devices(store, "d1")
    queued = await enqueue(store, rpc())
    change = attrs.evolve(
        queued, method="other", params=None, state=SENT, retries=2,
        sent_at=1_700_000_001_000, updated=1_700_000_001_000, error="x",
    )
    (updated,) = await store.commit(UnitOfWork.of(UpdateRpc(change, (QUEUED,))))
    assert updated == attrs.evolve(change, method="setLed", params={"on": True})
    assert await ICommandQueue(store).get_rpc("d1", queued.id) == updated


@pytest_twisted.ensureDeferred
async def test_update_in_another_state_is_a_conflict(store: IStore) -> None:
    """An update expecting a state the RPC is no longer in fails and changes nothing."""
    await _devices(store, "d1")
    queued = await enqueue(store, rpc())
    await store.commit(UnitOfWork.of(UpdateRpc(attrs.evolve(queued, state=SENT), (QUEUED,))))
    late = attrs.evolve(queued, state=RpcState.EXPIRED)
    with pytest.raises(Conflict):
        await store.commit(UnitOfWork.of(UpdateRpc(late, (QUEUED,))))
    assert (await ICommandQueue(store).get_rpc("d1", queued.id)).state is SENT


@pytest_twisted.ensureDeferred
async def test_update_of_unknown_or_foreign_rpc_is_not_found(store: IStore) -> None:
    """Updating an id that does not exist, or another device's, is NotFound."""
    await _devices(store, "d1", "d2")
    queued = await enqueue(store, rpc("d1"))
    for wrong in (attrs.evolve(queued, id=queued.id + 50), attrs.evolve(queued, device_id="d2")):
        with pytest.raises(NotFound):
            await store.commit(UnitOfWork.of(UpdateRpc(wrong, (QUEUED,))))


@pytest_twisted.ensureDeferred
async def test_list_by_state_and_unfinished(store: IStore) -> None:
    """list_rpcs filters by state; unfinished_rpcs lists every device's open ones by device."""
    await _devices(store, "d2", "d1")
    b = await enqueue(store, rpc("d2"))
    a = await enqueue(store, rpc("d1"))
    c = await enqueue(store, rpc("d1"))
    await store.commit(UnitOfWork.of(UpdateRpc(attrs.evolve(c, state=DELIVERED), (QUEUED,))))
    done = await enqueue(store, rpc("d1"))
    await store.commit(
        UnitOfWork.of(UpdateRpc(attrs.evolve(done, state=RpcState.FAILED), (QUEUED,)))
    )
    queue = ICommandQueue(store)
    assert [r.id for r in await queue.list_rpcs("d1", QUEUED)] == [a.id]
    assert [r.id for r in await queue.list_rpcs("d1", limit=2)] == [a.id, c.id]
    assert [(r.device_id, r.id) for r in await queue.unfinished_rpcs()] == [
        ("d1", a.id), ("d1", c.id), ("d2", b.id),
    ]


@pytest_twisted.ensureDeferred
async def test_ids_are_never_given_twice(store: IStore) -> None:
    """An id at or below the last one given is a Conflict (IdTaken), even once its RPC was
    deleted."""
    await _devices(store, "d1")
    queued = await enqueue(store, rpc())
    await store.delete_device("d1")
    await _devices(store, "d1")
    assert await ICommandQueue(store).last_rpc_id() == queued.id
    for taken in (queued.id, queued.id - 1):
        with pytest.raises(IdTaken, match="given before"):
            await store.commit(UnitOfWork.of(EnqueueRpc(rpc(id=taken), 10, 10)))


@pytest_twisted.ensureDeferred
async def test_deleting_the_device_deletes_its_rpcs(store: IStore) -> None:
    """A device's RPCs go with it."""
    await _devices(store, "d1")
    queued = await enqueue(store, rpc())
    await store.delete_device("d1")
    await _devices(store, "d1")
    assert await ICommandQueue(store).get_rpc("d1", queued.id) is None
    assert await ICommandQueue(store).unfinished_rpcs() == []


@pytest_twisted.ensureDeferred
async def test_failed_unit_leaves_no_rpc(store: IStore) -> None:
    """An RPC queued in a unit that fails later is not stored."""
    await _devices(store, "d1")
    with pytest.raises(NotFound):
        await store.commit(UnitOfWork.of(EnqueueRpc(rpc(id=1), 10, 10), DeleteProfile("nope")))
    assert await ICommandQueue(store).list_rpcs("d1") == []
    assert await ICommandQueue(store).last_rpc_id() == 0


def test_bad_values_are_refused_when_built() -> None:
    """Params JSON cannot hold, a non-bool oneway or a huge id are InvalidArgument at once."""
    for bad in (
        rpc(params=float("nan")),
        rpc(oneway=1),
        rpc(id=2**64),
        rpc(method="\ud800"),
    ):
        with pytest.raises(InvalidArgument):
            EnqueueRpc(bad, 10, 10)


@pytest_twisted.ensureDeferred
async def test_device_power_settings_round_trip(store: IStore) -> None:
    """A device's own power mode and timers are stored, updated and cleared."""
    device = Device(
        "p1", "psm", power_mode=PowerMode.PSM, psm_activity_timer=5000,
        edrx_cycle=None, paging_transmission_window=2000,
    )
    await store.commit(UnitOfWork.of(CreateDevice(device)))
    assert await store.get_device("p1") == device
    cleared = attrs.evolve(device, power_mode=None, psm_activity_timer=None)
    await store.update_device(cleared)
    assert await store.get_device("p1") == cleared
    with pytest.raises(InvalidArgument):
        CreateDevice(attrs.evolve(device, edrx_cycle=2**70))
