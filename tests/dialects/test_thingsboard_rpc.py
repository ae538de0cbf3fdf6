"""
ThingsBoard RPC over the engine: Observe on /rpc (2.03 first, then each
RPC as a 2.05 notification), replies on /rpc/{id}, client-side RPCs, and
RPCs held while a PSM device sleeps.
"""

from __future__ import annotations

import json
from typing import Any

from twisted.internet.task import Clock

from gateway.coap import codec
from gateway.coap import numbers as n
from gateway.coap.peer import PeerIdentity
from gateway.domain.model import PowerMode, RpcState
from tests.coap.support import PEER, option, request
from tests.service.conftest import result

from .conftest import TOKEN, Harness
from .test_thingsboard import DTLSPeer

RPC = f"api/v1/{TOKEN}/rpc"
OBSERVE = ((n.OBSERVE, 0),)


def observe(tb: Harness, mtype: int = n.CON) -> Any:
    """Observe /rpc; what was queued goes out on the next turn of the clock."""
    response = tb.ask(n.GET, RPC, options=OBSERVE, token=b"rp", mtype=mtype)
    assert (response.code, response.payload) == (n.VALID, b"")
    assert option(response, n.OBSERVE) is not None
    tb.clock.advance(0)
    return response


def state(tb: Harness, rpc_id: int) -> RpcState:
    return result(tb.services.rpc.get(tb.device_id, rpc_id)).state


def test_first_answer_is_valid_with_observe_and_no_payload(tb: Harness) -> None:
    """GET /rpc with Observe is answered 2.03 Valid, Observe and an empty payload."""
    observe(tb)
    assert tb.transport.take() == []


def test_get_without_observe_is_400(tb: Harness) -> None:
    """A plain GET on /rpc is a 4.00, as in ThingsBoard."""
    assert tb.ask(n.GET, RPC).code == n.BAD_REQUEST


def test_queued_rpc_is_notified_on_subscribing_then_replied(tb: Harness) -> None:
    """An RPC queued before the device observes goes out as a CON 2.05; ACK and reply finish it."""
    rpc = result(tb.services.rpc.enqueue(tb.device_id, "setGpio", {"pin": 7}))
    observe(tb)
    (note,) = tb.transport.take()
    assert (note.mtype, note.code, note.token) == (n.CON, n.CONTENT, b"rp")
    assert json.loads(note.payload) == {"id": rpc.id, "method": "setGpio", "params": {"pin": 7}}
    assert option(note, n.CONTENT_FORMAT) == n.JSON
    assert state(tb, rpc.id) is RpcState.SENT
    tb.server.feed(codec.empty(n.ACK, note.mid), PEER)
    assert state(tb, rpc.id) is RpcState.DELIVERED
    reply = tb.ask(n.POST, f"{RPC}/{rpc.id}", b'{"value":1}')
    assert reply.code == n.CREATED
    done = result(tb.services.rpc.get(tb.device_id, rpc.id))
    assert (done.state, done.response) == (RpcState.SUCCESSFUL, {"value": 1})


def test_rpcs_follow_each_other_after_each_ack(tb: Harness) -> None:
    """With NSTART 1 the second RPC is notified only once the first is acknowledged."""
    observe(tb)
    first = result(tb.services.rpc.enqueue(tb.device_id, "a"))
    second = result(tb.services.rpc.enqueue(tb.device_id, "b"))
    (note,) = tb.transport.take()
    assert json.loads(note.payload)["id"] == first.id
    tb.server.feed(codec.empty(n.ACK, note.mid), PEER)
    (after,) = tb.transport.take()
    assert json.loads(after.payload)["id"] == second.id
    assert option(after, n.OBSERVE) > option(note, n.OBSERVE)


def test_non_subscription_gets_non_notifications_delivered_at_once(tb: Harness) -> None:
    """A NON observer is notified NON, and a one-way RPC to it is SUCCESSFUL at once."""
    observe(tb, mtype=n.NON)
    rpc = result(tb.services.rpc.enqueue(tb.device_id, "blink", oneway=True))
    (note,) = tb.transport.take()
    assert note.mtype == n.NON
    assert state(tb, rpc.id) is RpcState.SUCCESSFUL


def test_reply_errors(tb: Harness) -> None:
    """A reply that is no object is 4.00; an unknown, finished or odd id 4.04 or 4.00."""
    observe(tb, mtype=n.NON)
    rpc = result(tb.services.rpc.enqueue(tb.device_id, "m"))
    tb.transport.take()
    assert tb.ask(n.POST, f"{RPC}/{rpc.id}", b"[1]").code == n.BAD_REQUEST
    unknown = tb.ask(n.POST, f"{RPC}/{rpc.id + 100}", b"{}")
    assert (unknown.code, unknown.payload) == (n.NOT_FOUND, f"no rpc {rpc.id + 100}".encode())
    assert tb.ask(n.POST, f"{RPC}/{rpc.id}", b"{}").code == n.CREATED
    finished = tb.ask(n.POST, f"{RPC}/{rpc.id}", b"{}")
    assert finished.code == n.NOT_FOUND and b"SUCCESSFUL" in finished.payload
    assert tb.ask(n.POST, f"{RPC}/abc", b"{}").code == n.BAD_REQUEST


def test_reply_in_the_dtls_form(tb: Harness) -> None:
    """A PSK session observes /api/v1/rpc and replies on /api/v1/rpc/{id} for its device."""
    result(tb.services.registry.set_psk(tb.device_id, "psk-id", b"k" * 16))
    peer = DTLSPeer(PeerIdentity("psk", "psk-id"))
    tb.server.receive(
        peer, request(n.GET, "api/v1/rpc", n.NON, 699, b"rp", options=OBSERVE)
    )
    assert codec.decode(peer.sent.pop(0)).code == n.VALID
    rpc = result(tb.services.rpc.enqueue(tb.device_id, "m"))
    tb.clock.advance(0)
    note = codec.decode(peer.sent.pop(0))
    assert json.loads(note.payload)["id"] == rpc.id
    tb.server.receive(peer, request(n.POST, f"api/v1/rpc/{rpc.id}", mid=700, payload=b"{}"))
    assert codec.decode(peer.sent[0]).code == n.CREATED
    assert state(tb, rpc.id) is RpcState.SUCCESSFUL


def test_timed_out_notification_requeues_and_marks_asleep(tb: Harness, clock: Clock) -> None:
    """A CON notification never acknowledged puts the RPC back and the device to sleep."""
    observe(tb)
    rpc = result(tb.services.rpc.enqueue(tb.device_id, "m", timeout_ms=600_000))
    clock.pump([1.0] * 200)  # every retransmission of the notification goes unanswered
    again = result(tb.services.rpc.get(tb.device_id, rpc.id))
    assert (again.state, again.retries) == (RpcState.QUEUED, 1)
    assert not tb.services.scheduler.awake(tb.device_id)
    assert len(tb.transport.take()) == 5  # the notification and its 4 retransmissions
    observe(tb)  # the device comes back and subscribes again
    (note,) = [m for m in tb.transport.take() if m.code == n.CONTENT]
    assert json.loads(note.payload)["id"] == rpc.id


def test_psm_device_gets_rpcs_only_in_its_window(tb: Harness, clock: Clock) -> None:
    """RPCs for a sleeping PSM device wait for its uplink and go within its activity timer."""
    power = {"power_mode": PowerMode.PSM, "psm_activity_timer": 4000}
    result(tb.services.registry.update_device(tb.device_id, power=power))
    observe(tb, mtype=n.NON)
    clock.advance(4)  # the window the observation opened closes
    rpc = result(tb.services.rpc.enqueue(tb.device_id, "wake"))
    clock.advance(60)
    assert tb.transport.take() == []
    tb.ask(n.POST, f"api/v1/{TOKEN}/telemetry", b'{"t":1}')
    clock.advance(0)
    (note,) = tb.transport.take()
    assert json.loads(note.payload)["id"] == rpc.id


def test_client_side_get_current_time(tb: Harness, clock: Clock) -> None:
    """POST /rpc with getCurrentTime is answered 2.05 {"currentTime": ms}."""
    response = tb.ask(n.POST, RPC, b'{"method":"getCurrentTime","params":{}}')
    assert response.code == n.CONTENT
    assert json.loads(response.payload) == {"currentTime": int(clock.seconds() * 1000)}


def test_client_side_errors(tb: Harness) -> None:
    """No method is 4.00; a method nobody answers is 5.04 with {"error": ...}."""
    assert tb.ask(n.POST, RPC, b'{"params":1}').code == n.BAD_REQUEST
    unanswered = tb.ask(n.POST, RPC, b'{"method":"checkStatus"}')
    assert unanswered.code == n.GATEWAY_TIMEOUT
    assert "checkStatus" in json.loads(unanswered.payload)["error"]


def test_well_known_core_lists_rpc(tb: Harness) -> None:
    """/.well-known/core lists the token-less, observable /api/v1/rpc."""
    links = tb.ask(n.GET, ".well-known/core").payload.decode().split(",")
    assert '</api/v1/rpc>;rt="tb.rpc";ct=50;obs' in links
