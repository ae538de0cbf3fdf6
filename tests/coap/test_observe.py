"""Observe (RFC 7641): registration, notifications and every way an observation ends."""

from __future__ import annotations

from typing import Any

from gateway.coap import codec
from gateway.coap import numbers as n
from gateway.coap.params import EngineLimits, TransmissionParameters

from .resources import Observable, Text, tree
from .support import OTHER, PEER, make_server, option, request

OBSERVE0 = ((n.OBSERVE, 0),)


def _observed(**kwargs):  # type: ignore[no-untyped-def]
    resource = Observable(b"v1")
    server, transport, clock = make_server(tree(obs=resource), **kwargs)
    return resource, server, transport, clock


def test_registration_answers_with_observe_and_notifies() -> None:
    """GET with Observe=0 registers; each change sends a notification with a rising sequence."""
    resource, server, transport, _ = _observed()
    server.feed(request(path="obs", options=OBSERVE0, token=b"ob"), PEER)
    [first] = transport.take()
    assert first.code == n.CONTENT and option(first, n.OBSERVE) is not None
    resource.text = b"v2"
    resource.updatedState()
    [note] = transport.take()
    assert (note.mtype, note.token, note.payload) == (n.CON, b"ob", b"v2")
    assert option(note, n.OBSERVE) > option(first, n.OBSERVE)
    assert len(resource.observers) == 1


def test_non_registrant_gets_non_notifications_and_daily_con() -> None:
    """A NON registration gets NON notifications, with a CON at least once a day."""
    resource, server, transport, clock = _observed()
    server.feed(request(path="obs", mtype=n.NON, options=OBSERVE0), PEER)
    transport.take()
    resource.updatedState()
    [note] = transport.take()
    assert note.mtype == n.NON
    clock.advance(24 * 3600)
    resource.updatedState()
    [daily] = transport.take()
    assert daily.mtype == n.CON


def test_deregistration_with_observe_1() -> None:
    """GET with Observe=1 removes the observation and answers without Observe."""
    resource, server, transport, _ = _observed()
    server.feed(request(path="obs", options=OBSERVE0, token=b"ob", mid=1), PEER)
    server.feed(
        request(path="obs", options=((n.OBSERVE, 1),), token=b"ob", mid=2), PEER
    )
    _, reply = transport.take()
    assert reply.code == n.CONTENT and option(reply, n.OBSERVE) is None
    assert len(resource.observers) == 0
    resource.updatedState()
    assert transport.take() == []


def test_rst_to_con_notification_cancels() -> None:
    """An RST answering a CON notification removes the observer."""
    resource, server, transport, _ = _observed()
    server.feed(request(path="obs", options=OBSERVE0), PEER)
    transport.take()
    resource.updatedState()
    [note] = transport.take()
    server.feed(codec.empty(n.RST, note.mid), PEER)
    assert len(resource.observers) == 0
    assert len(server.observations) == 0


def test_rst_to_non_notification_cancels() -> None:
    """An RST answering a NON notification removes the observer too."""
    resource, server, transport, _ = _observed()
    server.feed(request(path="obs", mtype=n.NON, options=OBSERVE0), PEER)
    transport.take()
    resource.updatedState()
    [note] = transport.take()
    server.feed(codec.empty(n.RST, note.mid), PEER)
    assert len(resource.observers) == 0


def test_unacknowledged_notification_cancels_after_retransmissions() -> None:
    """A CON notification whose retransmissions run out ends the observation."""
    params = TransmissionParameters(ack_random_factor=1.0)
    resource, server, transport, clock = _observed(params=params)
    server.feed(request(path="obs", options=OBSERVE0), PEER)
    resource.updatedState()
    for _ in range(int(params.max_transmit_wait) + 1):
        clock.advance(1)
    sent = transport.take()
    assert len(sent) == 1 + 1 + params.max_retransmit
    assert len(resource.observers) == 0
    assert len(server.transmitter) == 0


def test_acknowledged_notification_keeps_observer() -> None:
    """An ACKed notification leaves the observation in place."""
    resource, server, transport, clock = _observed()
    server.feed(request(path="obs", options=OBSERVE0), PEER)
    transport.take()
    resource.updatedState()
    [note] = transport.take()
    server.feed(codec.empty(n.ACK, note.mid), PEER)
    clock.advance(1000)
    assert transport.take() == []
    assert len(resource.observers) == 1


def test_changes_while_in_flight_are_sent_after_ack() -> None:
    """Changes during an outstanding CON notification are coalesced and sent once ACKed."""
    resource, server, transport, _ = _observed()
    server.feed(request(path="obs", options=OBSERVE0), PEER)
    transport.take()
    resource.updatedState()
    [note] = transport.take()
    resource.text = b"v3"
    resource.updatedState()
    resource.updatedState()
    assert transport.take() == []
    server.feed(codec.empty(n.ACK, note.mid), PEER)
    [latest] = transport.take()
    assert latest.payload == b"v3"


def test_explicit_notification_renderer() -> None:
    """notify(render) sends what the renderer makes instead of re-rendering GET."""
    from txthings import coap as tx

    resource, server, transport, _ = _observed()
    server.feed(request(path="obs", options=OBSERVE0), PEER)
    transport.take()
    resource.notify(lambda req: tx.Message(code=n.CONTENT, payload=b'{"k":1}'))
    [note] = transport.take()
    assert note.payload == b'{"k":1}'


def test_reregistration_with_same_token_replaces() -> None:
    """Registering again with the same token keeps one observation, not two."""
    resource, server, transport, _ = _observed()
    server.feed(request(path="obs", options=OBSERVE0, token=b"x", mid=1), PEER)
    server.feed(request(path="obs", options=OBSERVE0, token=b"x", mid=2), PEER)
    assert len(resource.observers) == 1
    server.feed(request(path="obs", options=OBSERVE0, token=b"y", mid=3), PEER)
    assert len(resource.observers) == 2


def test_error_notification_ends_observation() -> None:
    """A non-2.xx notification is sent as CON and ends the observation."""
    from gateway.coap import errors

    resource, server, transport, _ = _observed(params=TransmissionParameters())
    server.feed(request(path="obs", mtype=n.NON, options=OBSERVE0), PEER)
    transport.take()

    def gone(req):  # type: ignore[no-untyped-def]
        raise errors.NotFound("deleted")

    resource.notify(gone)
    [note] = transport.take()
    assert (note.code, note.mtype) == (n.NOT_FOUND, n.CON)
    assert option(note, n.OBSERVE) is None
    assert len(resource.observers) == 0


def test_observer_caps() -> None:
    """Over the per-resource cap a registration is served without Observe."""
    limits = EngineLimits(max_observers_per_resource=2)
    resource, server, transport, _ = _observed(limits=limits)
    for i in range(3):
        server.feed(
            request(path="obs", options=OBSERVE0, token=bytes([i]), mid=i), PEER
        )
    replies = transport.take()
    assert [option(r, n.OBSERVE) is not None for r in replies] == [True, True, False]
    assert len(resource.observers) == 2


def test_global_observer_cap() -> None:
    """The global cap holds across resources."""
    limits = EngineLimits(max_observers=1)
    a, b = Observable(), Observable()
    server, transport, _ = make_server(tree(a=a, b=b), limits=limits)
    server.feed(request(path="a", options=OBSERVE0, mid=1), PEER)
    server.feed(request(path="b", options=OBSERVE0, mid=2), PEER)
    assert len(server.observations) == 1


def test_observe_on_plain_resource_is_plain_get() -> None:
    """Observe on a resource that isn't observable answers once without Observe."""
    server, transport, _ = make_server(tree(hello=Text()))
    server.feed(request(path="hello", options=OBSERVE0), PEER)
    [reply] = transport.take()
    assert reply.code == n.CONTENT and option(reply, n.OBSERVE) is None


def test_held_peer_gets_its_notifications_on_release() -> None:
    """Notifications for a peer on hold wait, coalesced, and go out when it is released."""
    resource, server, transport, _ = _observed()
    server.feed(request(path="obs", mtype=n.NON, options=OBSERVE0, token=b"ob"), PEER)
    transport.take()
    server.hold(PEER)
    resource.text = b"v2"
    resource.updatedState()
    resource.updatedState()
    assert transport.take() == []
    server.release(PEER)
    [note] = transport.take()
    assert (note.token, note.payload) == (b"ob", b"v2")
    resource.updatedState()
    assert len(transport.take()) == 1


def test_hold_is_per_peer() -> None:
    """Holding one peer leaves another peer's notifications flowing."""
    resource, server, transport, _ = _observed()
    server.feed(request(path="obs", mtype=n.NON, options=OBSERVE0), PEER)
    server.feed(request(path="obs", mtype=n.NON, options=OBSERVE0), OTHER)
    transport.take()
    server.hold(PEER)
    resource.updatedState()
    assert [addr for _, addr in transport.written] == [OTHER]


def test_explicit_changes_held_are_all_sent_in_order() -> None:
    """Changes rendered explicitly while a NON observer is held all reach it, oldest first."""
    resource, server, transport, _ = _observed()
    server.feed(request(path="obs", mtype=n.NON, options=OBSERVE0), PEER)
    transport.take()
    server.hold(PEER)
    for text in (b"a", b"b"):
        resource.notify(lambda request, text=text: Text(text).render_GET(request))
    server.release(PEER)
    assert [note.payload for note in transport.take()] == [b"a", b"b"]


def test_lifecycle_hooks() -> None:
    """A resource hears of each observation added and of each one that ends."""
    events: list[tuple[str, bytes]] = []

    class Watched(Observable):
        def observer_added(self, observation: Any) -> None:
            events.append(("added", observation.token))

        def observer_removed(self, observation: Any) -> None:
            events.append(("removed", observation.token))

    server, transport, _ = make_server(tree(obs=Watched(b"v1")))
    server.feed(request(path="obs", options=OBSERVE0, token=b"t1", mid=1), PEER)
    server.feed(request(path="obs", options=OBSERVE0, token=b"t2", mid=2), PEER)
    server.feed(
        request(path="obs", options=((n.OBSERVE, 1),), token=b"t1", mid=3), PEER
    )
    assert events == [("added", b"t1"), ("added", b"t2"), ("removed", b"t1")]


class _Settled(Observable):
    def __init__(self) -> None:
        super().__init__(b"v1")
        self.outcomes: list[str] = []

    def notification_settled(self, observation: Any, outcome: str) -> None:
        self.outcomes.append(outcome)


def test_notification_outcomes_reach_the_resource() -> None:
    """The resource hears whether each CON notification was acknowledged or timed out."""
    params = TransmissionParameters(ack_random_factor=1.0)
    resource = _Settled()
    server, transport, clock = make_server(tree(obs=resource), params=params)
    server.feed(request(path="obs", options=OBSERVE0), PEER)
    transport.take()
    resource.updatedState()
    [note] = transport.take()
    server.feed(codec.empty(n.ACK, note.mid), PEER)
    resource.updatedState()
    for _ in range(int(params.max_transmit_wait) + 1):
        clock.advance(1)
    assert resource.outcomes == ["ack", "timeout"]


def test_observations_are_capped_per_peer() -> None:
    """One peer with many tokens gets at most its share; another peer can still observe."""
    limits = EngineLimits(max_observers_per_peer=3)
    resource, server, transport, _ = _observed(limits=limits)
    for mid in range(10):
        server.feed(request(path="obs", mid=mid, token=b"t%d" % mid, options=OBSERVE0), PEER)
    server.feed(request(path="obs", mid=99, token=b"x", options=OBSERVE0), OTHER)
    replies = transport.take()
    assert [option(r, n.OBSERVE) is not None for r in replies] == [True] * 3 + [False] * 7 + [True]
    assert len(resource.observers) == 4


def test_a_bloated_registration_is_answered_but_not_kept() -> None:
    """A registration with options over max_observe_request_bytes is answered once, unobserved."""
    resource, server, transport, _ = _observed()
    bloated = OBSERVE0 + tuple((n.URI_QUERY, b"q" * 200) for _ in range(20))
    server.feed(request(path="obs", options=bloated), PEER)
    [reply] = transport.take()
    assert reply.code == n.CONTENT and option(reply, n.OBSERVE) is None
    assert len(server.observations) == 0


def test_kept_request_shares_options_without_exchange_ones() -> None:
    """What an observation keeps has the request's options minus Observe and block-wise ones."""
    resource, server, _, _ = _observed()
    options = OBSERVE0 + ((n.URI_QUERY, b"k=v"), (n.BLOCK2, (0, False, 6)))
    server.feed(request(path="obs", options=options), PEER)
    [observation] = resource.observers.values()
    kept = observation.request
    assert option(kept, n.URI_QUERY) == b"k=v"
    assert option(kept, n.OBSERVE) is None and option(kept, n.BLOCK2) is None
    [registering] = resource.received
    assert kept.opt.getOption(n.URI_QUERY)[0] is registering.opt.getOption(n.URI_QUERY)[0]
