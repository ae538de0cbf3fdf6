"""
The RPC queue on a Clock: held until the device can be reached, sent in
order paced by NSTART, every state change an event, deadlines and
retries, and a restart in the middle.
"""

from __future__ import annotations

import json
from typing import Any

import attrs
import pytest
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock

from gateway.domain.errors import Conflict, InvalidArgument, NotFound, Unavailable
from gateway.domain.model import PowerMode, Rpc, RpcState
from gateway.service.build import Downlinks, Services, build_services
from gateway.service.interfaces import Delivery
from gateway.service.rpc import _NOT_WAITING, RpcSettings
from gateway.store.memory import MemoryStore
from tests.service.conftest import FAST_HASHER, failure, result

Q, SENT, DELIVERED = RpcState.QUEUED, RpcState.SENT, RpcState.DELIVERED
OK, TIMEOUT, EXPIRED, FAILED = (
    RpcState.SUCCESSFUL, RpcState.TIMEOUT, RpcState.EXPIRED, RpcState.FAILED,
)
START = 1_700_000_000


@attrs.define
class FakeDevice:
    """A subscription that records what it is sent; the test decides how each send ends."""

    sent: list[tuple[Rpc, "Deferred[Delivery]"]] = attrs.field(factory=list)

    def deliver(self, rpc: Rpc) -> "Deferred[Delivery]":
        d: Deferred[Delivery] = Deferred()
        self.sent.append((rpc, d))
        return d

    def methods(self) -> list[str]:
        return [rpc.method for rpc, _ in self.sent]

    def settle(self, index: int, outcome: Delivery = "ack") -> None:
        self.sent[index][1].callback(outcome)

    def listen(self, s: Services, device_id: str, clock: Clock, nstart: int = 1) -> Any:
        """Subscribe to the device's RPCs (they go out on the clock's next turn)."""
        stop = s.devices.subscribe_rpc(device_id, self.deliver, nstart)
        clock.advance(0)
        return stop


def make(clock: Clock, store: MemoryStore | None = None, **queue: Any) -> Services:
    return result(
        build_services(
            store or MemoryStore(), clock, FAST_HASHER,
            downlinks=Downlinks(queue=RpcSettings(**queue)),
        )
    )


def new_device(services: Services, mode: PowerMode = PowerMode.DRX) -> str:
    power = {"power_mode": mode, "psm_activity_timer": 5000}
    return result(services.registry.create_device(f"dev-{mode.value}", power=power)).device.id


def states(services: Services, device_id: str) -> list[tuple[int, str]]:
    """(rpc id, state) of every RPC event of the device, in outbox order."""
    events = result(services.outbox.query(device_id, "io.coap-gateway.rpc.v1", limit=1000))
    return [(data["id"], data["state"]) for data in (json.loads(e.body)["data"] for e in events)]


def now(services: Services, device_id: str, rpc_id: int) -> Rpc:
    return result(services.rpc.get(device_id, rpc_id))


@pytest.fixture
def s(clock: Clock) -> Services:
    return make(clock)


def test_two_way_round_trip_with_every_change_an_event(s: Services, clock: Clock) -> None:
    """QUEUED, then SENT on subscribing, DELIVERED on the ACK, SUCCESSFUL on the reply."""
    d = new_device(s)
    rpc = result(s.rpc.enqueue(d, "setLed", {"on": True}))
    assert (rpc.state, rpc.params, rpc.oneway) == (Q, {"on": True}, False)
    device = FakeDevice()
    device.listen(s, d, clock)
    assert device.methods() == ["setLed"]
    assert now(s, d, rpc.id).state is SENT
    device.settle(0, "ack")
    assert now(s, d, rpc.id).state is DELIVERED
    done = result(s.devices.reply_rpc(d, rpc.id, {"led": "on"}))
    assert (done.state, done.response) == (OK, {"led": "on"})
    assert now(s, d, rpc.id) == done
    assert states(s, d) == [(rpc.id, "QUEUED"), (rpc.id, "SENT"), (rpc.id, "DELIVERED"),
                            (rpc.id, "SUCCESSFUL")]


def test_one_way_acknowledged_is_successful(s: Services, clock: Clock) -> None:
    """A one-way RPC goes from SENT to SUCCESSFUL when the device acknowledges it."""
    d = new_device(s)
    device = FakeDevice()
    device.listen(s, d, clock)
    rpc = result(s.rpc.enqueue(d, "reboot", oneway=True))
    device.settle(0, "non")
    assert now(s, d, rpc.id).state is OK
    assert [state for _, state in states(s, d)] == ["QUEUED", "SENT", "SUCCESSFUL"]


def test_in_order_paced_by_nstart(s: Services, clock: Clock) -> None:
    """Queued RPCs go out in order, NSTART of them unacknowledged at a time."""
    d = new_device(s)
    for method in ("a", "b", "c", "d"):
        result(s.rpc.enqueue(d, method))
    device = FakeDevice()
    device.listen(s, d, clock, nstart=2)
    assert device.methods() == ["a", "b"]
    device.settle(1)
    assert device.methods() == ["a", "b", "c"]
    device.settle(0)
    device.settle(2)
    assert device.methods() == ["a", "b", "c", "d"]


def test_waits_for_a_subscription(s: Services, clock: Clock) -> None:
    """An RPC queued while nobody listens is sent when the device subscribes."""
    d = new_device(s)
    rpc = result(s.rpc.enqueue(d, "m"))
    assert now(s, d, rpc.id).state is Q
    device = FakeDevice()
    device.listen(s, d, clock)
    assert device.methods() == ["m"]


def test_psm_rpcs_wait_for_the_window_and_go_in_order(s: Services, clock: Clock) -> None:
    """RPCs queued while a PSM device sleeps go out on its uplink, in order; none after."""
    d = new_device(s, PowerMode.PSM)
    device = FakeDevice()
    device.listen(s, d, clock)
    first = [result(s.rpc.enqueue(d, f"m{i}")) for i in range(3)]
    assert device.sent == []
    s.devices.report_seen(d, "uplink")
    clock.advance(0)
    for i in range(3):
        assert device.methods()[-1] == f"m{i}"
        device.settle(i, "ack")
    assert [now(s, d, r.id).state for r in first] == [DELIVERED] * 3
    clock.advance(5)  # the activity timer runs out
    late = result(s.rpc.enqueue(d, "late"))
    clock.advance(60)
    assert device.methods() == ["m0", "m1", "m2"]
    s.devices.report_seen(d, "uplink")
    clock.advance(0)
    assert device.methods()[-1] == "late" and now(s, d, late.id).state is SENT


def test_expires_while_asleep(s: Services, clock: Clock) -> None:
    """An RPC not sent by its expiration time is EXPIRED and never sent."""
    d = new_device(s, PowerMode.PSM)
    device = FakeDevice()
    device.listen(s, d, clock)
    rpc = result(s.rpc.enqueue(d, "m", expires_at=(START + 30) * 1000))
    clock.advance(29.999)
    assert now(s, d, rpc.id).state is Q
    clock.advance(0.001)
    expired = now(s, d, rpc.id)
    assert (expired.state, expired.error) == (EXPIRED, "not sent before its expiration time")
    s.devices.report_seen(d, "uplink")
    clock.advance(0)
    assert device.sent == []
    assert states(s, d) == [(rpc.id, "QUEUED"), (rpc.id, "EXPIRED")]


def test_reply_timeout(s: Services, clock: Clock) -> None:
    """A two-way RPC without a reply within its timeout of being sent is TIMEOUT."""
    d = new_device(s)
    device = FakeDevice()
    device.listen(s, d, clock)
    rpc = result(s.rpc.enqueue(d, "m", timeout_ms=2000))
    device.settle(0)
    clock.advance(1.999)
    assert now(s, d, rpc.id).state is DELIVERED
    clock.advance(0.001)
    assert now(s, d, rpc.id).state is TIMEOUT
    failure(s.devices.reply_rpc(d, rpc.id, {}), Conflict)


def test_unacknowledged_send_is_retried_then_times_out(clock: Clock) -> None:
    """A send the device did not acknowledge is queued again in its place, then TIMEOUT."""
    s = make(clock, max_retries=1)
    d = new_device(s)
    device = FakeDevice()
    device.listen(s, d, clock)
    rpc = result(s.rpc.enqueue(d, "m"))
    result(s.rpc.enqueue(d, "n"))
    device.settle(0, "timeout")
    assert (now(s, d, rpc.id).state, now(s, d, rpc.id).retries) == (SENT, 1)
    assert device.methods() == ["m", "m"]
    device.settle(1, "gone")
    assert now(s, d, rpc.id).state is TIMEOUT
    assert device.methods() == ["m", "m", "n"]


def test_reset_is_failed(s: Services, clock: Clock) -> None:
    """A device that resets the notification fails the RPC."""
    d = new_device(s)
    device = FakeDevice()
    device.listen(s, d, clock)
    rpc = result(s.rpc.enqueue(d, "m"))
    device.settle(0, "reset")
    assert now(s, d, rpc.id).state is FAILED


def test_full_queue_is_refused(clock: Clock) -> None:
    """A device holding max_queued unfinished RPCs refuses another with a reason."""
    s = make(clock, max_queued=2)
    d = new_device(s)
    result(s.rpc.enqueue(d, "a"))
    result(s.rpc.enqueue(d, "b"))
    assert "full" in failure(s.rpc.enqueue(d, "c"), Conflict).value.message


def test_full_outbox_is_unavailable(clock: Clock) -> None:
    """With the outbox full an RPC is not queued: Unavailable."""
    s = make(clock, MemoryStore(outbox_limit=1))
    d = new_device(s)
    result(s.rpc.enqueue(d, "a"))
    failure(s.rpc.enqueue(d, "b"), Unavailable)
    assert [r.method for r in result(s.rpc.list(d))] == ["a"]


def test_bad_requests(s: Services) -> None:
    """An empty method, a bad timeout, a past expiration or an unknown device are refused."""
    d = new_device(s)
    failure(s.rpc.enqueue(d, ""), InvalidArgument)
    failure(s.rpc.enqueue(d, "m", timeout_ms=0), InvalidArgument)
    failure(s.rpc.enqueue(d, "m", expires_at=START * 1000 - 1), InvalidArgument)
    failure(s.rpc.enqueue(d, "m", params=float("nan")), InvalidArgument)
    failure(s.rpc.enqueue("ghost", "m"), NotFound)


def test_cancel(s: Services) -> None:
    """Cancelling an unfinished RPC fails it; a finished one cannot be cancelled."""
    d = new_device(s)
    rpc = result(s.rpc.enqueue(d, "m"))
    cancelled = result(s.rpc.cancel(d, rpc.id))
    assert (cancelled.state, cancelled.error) == (FAILED, "cancelled")
    failure(s.rpc.cancel(d, rpc.id), Conflict)
    failure(s.rpc.cancel(d, rpc.id + 9), NotFound)


def test_reply_errors(s: Services, clock: Clock) -> None:
    """A reply to an unknown id is NotFound; to a one-way or unsent RPC, Conflict."""
    d = new_device(s)
    failure(s.devices.reply_rpc(d, 99, {}), NotFound)
    queued = result(s.rpc.enqueue(d, "m"))
    failure(s.devices.reply_rpc(d, queued.id, {}), Conflict)
    device = FakeDevice()
    device.listen(s, d, clock)
    device.settle(0)
    oneway = result(s.rpc.enqueue(d, "o", oneway=True))
    failure(s.devices.reply_rpc(d, oneway.id, {}), Conflict)


def test_wait_returns_the_outcome_or_gives_up_unsent(s: Services, clock: Clock) -> None:
    """A waiter gets the finished RPC, or the queued one once its wait passed unsent."""
    d = new_device(s)
    rpc = result(s.rpc.enqueue(d, "m"))
    waiting = s.rpc.wait(d, rpc.id, 10)
    clock.advance(10)
    assert result(waiting).state is Q
    device = FakeDevice()
    device.listen(s, d, clock)
    waiting = s.rpc.wait(d, rpc.id, 10)
    device.settle(0)
    clock.advance(5)
    s.devices.reply_rpc(d, rpc.id, {"r": 1})
    assert result(waiting).response == {"r": 1}


def test_restart_keeps_states_and_rearms_timers_from_stored_times(clock: Clock) -> None:
    """After a restart the queue is as it was (SENT back to QUEUED) and deadlines hold."""
    store = MemoryStore()
    s = make(clock, store)
    d = new_device(s)
    device = FakeDevice()
    stop = device.listen(s, d, clock, nstart=2)
    delivered = result(s.rpc.enqueue(d, "delivered", timeout_ms=20_000))
    sent = result(s.rpc.enqueue(d, "sent"))
    device.settle(0)
    stop()  # the device stops listening with "sent" unacknowledged
    queued = result(s.rpc.enqueue(d, "queued", expires_at=(START + 30) * 1000))
    assert [now(s, d, r.id).state for r in (delivered, sent, queued)] == [DELIVERED, SENT, Q]
    s.rpc.stop()
    clock.advance(10)

    again = make(clock, store)
    assert [now(again, d, r.id).state for r in (delivered, sent, queued)] == [DELIVERED, Q, Q]
    assert now(again, d, sent.id).retries == 1
    clock.advance(9.999)  # delivered: sent at START, 20 s to reply
    assert now(again, d, delivered.id).state is DELIVERED
    clock.advance(0.001)
    assert now(again, d, delivered.id).state is TIMEOUT
    clock.advance(10)  # queued: expires at START + 30
    assert now(again, d, queued.id).state is EXPIRED
    fresh = FakeDevice()
    fresh.listen(again, d, clock)
    assert fresh.methods() == ["sent"]
    assert result(again.rpc.enqueue(d, "next")).id > queued.id


def test_dropping_application_expires_what_cannot_go_out_at_once(clock: Clock) -> None:
    """In a drop_applications application an RPC goes to a waiting device or EXPIRES at once."""
    s = make(clock, drop_applications=("default",))
    d = new_device(s)
    dropped = result(s.rpc.enqueue(d, "early"))
    assert (dropped.state, dropped.error) == (EXPIRED, _NOT_WAITING)
    device = FakeDevice()
    device.listen(s, d, clock)
    sent = result(s.rpc.enqueue(d, "waited"))
    assert device.methods() == ["waited"] and now(s, d, sent.id).state is SENT
    assert states(s, d) == [
        (dropped.id, "QUEUED"), (dropped.id, "EXPIRED"), (sent.id, "QUEUED"), (sent.id, "SENT"),
    ]


def test_other_applications_still_queue(clock: Clock) -> None:
    """drop_applications leaves the RPCs of devices of other applications queued."""
    s = make(clock, drop_applications=("drogue-app",))
    d = new_device(s)
    assert result(s.rpc.enqueue(d, "m")).state is Q
