"""
L{Retention} prunes the local outbox on a Clock, by age and by count.
"""

from __future__ import annotations

from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.logger import capturedLogs

from gateway.store.memory import MemoryStore
from gateway.store.unit import AppendEvent, UnitOfWork
from gateway.upstream.retention import Retention
from tests.service.conftest import result


def _store(received: list[int]) -> MemoryStore:
    store = MemoryStore()
    result(store.commit(UnitOfWork(tuple(
        AppendEvent("d", f"e{i}", "t", ms, ms, "{}") for i, ms in enumerate(received)
    ))))
    return store


def test_prunes_at_start_and_every_interval() -> None:
    """Events older than the retention go at start and then at each interval."""
    clock = Clock()
    clock.advance(100)
    store = _store([10_000, 50_000, 95_000])
    retention = Retention(store, clock, retention=60, keep=100, interval=10)
    retention.startService()
    assert [e.received_ms for e in result(store.peek(10))] == [50_000, 95_000]
    clock.advance(10)  # now 110 s: the cut-off is 50 s
    assert [e.received_ms for e in result(store.peek(10))] == [50_000, 95_000]
    clock.advance(10)  # 120 s: cut-off 60 s
    assert [e.received_ms for e in result(store.peek(10))] == [95_000]
    result(retention.stopService())
    clock.advance(1000)
    assert result(store.size()) == 1


def test_keeps_at_most_keep_events() -> None:
    """Beyond C{keep} the oldest events go, however young."""
    clock = Clock()
    store = _store([1, 2, 3, 4])
    Retention(store, clock, retention=10**9, keep=2).startService()
    assert [e.received_ms for e in result(store.peek(10))] == [3, 4]


class FailingOnce(MemoryStore):
    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def prune(self, received_before_ms: int, keep: int) -> "Deferred[int]":
        self.calls += 1
        if self.calls == 1:
            return Deferred.fromCoroutine(self._fail())
        return super().prune(received_before_ms, keep)

    async def _fail(self) -> int:
        raise RuntimeError("disk on fire")


def test_failure_is_logged_and_retried() -> None:
    """A failing prune is logged and the next interval tries again."""
    clock = Clock()
    store = FailingOnce()
    with capturedLogs() as events:
        Retention(store, clock, retention=1, keep=1, interval=5).startService()
    assert [e["log_format"] for e in events if "log_failure" in e] == ["pruning the outbox failed"]
    clock.advance(5)
    assert store.calls == 2


def test_stop_waits_for_a_prune_in_flight() -> None:
    """Stopping fires only once the prune running has finished, so the store can close after."""
    clock = Clock()
    pending: Deferred[int] = Deferred()

    class Slow(MemoryStore):
        def prune(self, received_before_ms: int, keep: int) -> "Deferred[int]":
            return pending

    retention = Retention(Slow(), clock, retention=1, keep=1)
    retention.startService()
    stopped = retention.stopService()
    assert not stopped.called
    pending.callback(0)
    assert stopped.called
