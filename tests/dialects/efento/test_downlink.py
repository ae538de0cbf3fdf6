"""Waiting for a queued configuration: handed over, refused, or not in time."""

from __future__ import annotations

from typing import Any, Optional

from twisted.internet.task import Clock

from gateway.dialects.efento.config import BadConfig
from gateway.dialects.efento.downlink import PendingConfig
from gateway.domain.model import Rpc, RpcState
from gateway.service.interfaces import DeliverRpc, Unsubscribe
from tests.service.conftest import result


class Queue:
    """Records the one subscription a PendingConfig makes (the RPC queue's side of it)."""

    def __init__(self) -> None:
        self.deliver: Optional[DeliverRpc] = None
        self.events: list[str] = []

    def subscribe_rpc(self, device_id: str, deliver: DeliverRpc) -> Unsubscribe:
        self.deliver = deliver
        self.events.append(f"subscribe {device_id}")
        return lambda: self.events.append("unsubscribe")


def rpc(method: str, params: Any) -> Rpc:
    return Rpc("dev", 1, method, params, oneway=True, timeout_ms=10_000, expires_at=0, created=0,
               state=RpcState.SENT)


def encode(params: Any) -> bytes:
    if params == "bad":
        raise BadConfig("bad")
    return repr(params).encode()


def pending(clock: Clock, queue: Queue) -> PendingConfig:
    return PendingConfig(queue.subscribe_rpc, clock, "dev", 2, encode)


def test_config_is_the_answer_and_counts_as_sent(clock: Clock) -> None:
    """A 'config' RPC handed over is encoded into the answer and reported sent ("non")."""
    queue = Queue()
    wait = pending(clock, queue)
    assert queue.deliver is not None
    assert result(queue.deliver(rpc("config", {"a": 1}))) == "non"
    assert result(wait.answer) == b"{'a': 1}"
    assert queue.events == ["subscribe dev", "unsubscribe"]
    assert clock.getDelayedCalls() == []


def test_time_up_answers_empty_and_later_rpcs_are_gone(clock: Clock) -> None:
    """Nothing in time: the answer is empty, and an RPC handed over later goes back ("gone")."""
    queue = Queue()
    wait = pending(clock, queue)
    clock.advance(1.9)
    assert not wait.answer.called
    clock.advance(0.1)
    assert result(wait.answer) == b""
    assert queue.events == ["subscribe dev", "unsubscribe"]
    assert queue.deliver is not None
    assert result(queue.deliver(rpc("config", {}))) == "gone"


def test_what_the_sensor_cannot_take_is_refused(clock: Clock) -> None:
    """Another method, or params that do not encode, is refused ("reset"); the answer is empty."""
    for method, params in (("reboot", {}), ("config", "bad")):
        queue = Queue()
        wait = pending(clock, queue)
        assert queue.deliver is not None
        assert result(queue.deliver(rpc(method, params))) == "reset"
        assert result(wait.answer) == b""
