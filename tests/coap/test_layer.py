"""The message layer: piggybacking, separate responses, dedup, pings, errors."""

from __future__ import annotations

from typing import Any

import pytest
from twisted.internet import defer
from twisted.logger import globalLogPublisher

from gateway.coap import codec, errors
from gateway.coap import numbers as n
from gateway.coap.exchange import accept
from gateway.coap.params import EngineLimits, TransmissionParameters

from .resources import Broken, Later, Option4209, Text, tree
from .support import OTHER, PEER, make_server, option, request


def test_con_get_is_piggybacked() -> None:
    """A CON GET answered at once gets an ACK with the same MID and token."""
    server, transport, _ = make_server(tree(hello=Text()))
    server.feed(request(path="hello", mid=7, token=b"ab"), PEER)
    [reply] = transport.take()
    assert (reply.mtype, reply.mid, reply.token, reply.code) == (n.ACK, 7, b"ab", n.CONTENT)
    assert reply.payload == b"hello"
    assert option(reply, n.CONTENT_FORMAT) == n.TEXT_PLAIN


def test_non_request_gets_non_response() -> None:
    """A NON request is answered with a NON carrying a fresh MID and the token."""
    server, transport, _ = make_server(tree(hello=Text()))
    server.feed(request(path="hello", mtype=n.NON, mid=9), PEER)
    [reply] = transport.take()
    assert reply.mtype == n.NON
    assert reply.token == b"t1"
    assert reply.code == n.CONTENT


def test_slow_handler_gets_empty_ack_then_separate_con() -> None:
    """A handler slower than the piggyback delay gets an empty ACK, then a CON response."""
    later = Later()
    server, transport, clock = make_server(tree(slow=later))
    server.feed(request(path="slow", mid=5, token=b"tk"), PEER)
    assert transport.take() == []
    clock.advance(0.1)
    [ack] = transport.take()
    assert (ack.mtype, ack.code, ack.mid, ack.token) == (n.ACK, n.EMPTY, 5, b"")
    later.pending[0].callback(Text().render_GET(None))
    [response] = transport.take()
    assert (response.mtype, response.code, response.token) == (n.CON, n.CONTENT, b"tk")
    assert response.mid != 5


@pytest.mark.parametrize("mtype", [n.CON, n.NON])
def test_accepted_request_is_acked_at_once(mtype: int) -> None:
    """A handler that accepts its request later gets the empty ACK then, not after the delay."""
    later = Later()
    server, transport, clock = make_server(tree(slow=later))
    server.feed(request(path="slow", mid=5, mtype=mtype), PEER)
    assert transport.take() == []
    accept(later.requests[0])
    expected = [(n.ACK, n.EMPTY, 5)] if mtype == n.CON else []
    assert [(m.mtype, m.code, m.mid) for m in transport.take()] == expected
    clock.advance(1)
    assert transport.take() == []
    later.pending[0].callback(Text().render_GET(None))
    [response] = transport.take()
    assert (response.mtype, response.code) == (mtype, n.CONTENT)


def test_request_accepted_while_rendering_is_acked_at_once() -> None:
    """Accepting during the render itself (before any timer) also sends the empty ACK at once."""

    class Parked(Later):
        def render_GET(self, request: Any) -> Any:
            accept(request)
            return super().render_GET(request)

    server, transport, _ = make_server(tree(slow=Parked()))
    server.feed(request(path="slow", mid=6), PEER)
    assert [(m.mtype, m.code, m.mid) for m in transport.take()] == [(n.ACK, n.EMPTY, 6)]


def _separate_response(**kwargs):  # type: ignore[no-untyped-def]
    """A server that has sent the empty ACK and then a separate CON response."""
    later = Later()
    server, transport, clock = make_server(tree(slow=later), **kwargs)
    server.feed(request(path="slow"), PEER)
    clock.advance(0.1)
    transport.take()
    later.pending[0].callback(Text().render_GET(None))
    [response] = transport.take()
    return server, transport, clock, response


def test_separate_response_is_retransmitted_with_backoff() -> None:
    """An unacknowledged separate CON is resent at doubling intervals, then given up."""
    params = TransmissionParameters(ack_timeout=2.0, ack_random_factor=1.0, max_retransmit=4)
    server, transport, clock, _ = _separate_response(params=params)
    times = [clock.seconds()]
    for _ in range(140):
        clock.advance(0.5)
        if transport.written:
            transport.take()
            times.append(clock.seconds())
    gaps = [round(b - a, 3) for a, b in zip(times, times[1:], strict=False)]
    assert gaps == [2.0, 4.0, 8.0, 16.0]
    assert len(server.transmitter) == 0


def test_ack_stops_retransmission() -> None:
    """The peer's empty ACK for the separate response ends its retransmission."""
    server, transport, clock, response = _separate_response()
    server.feed(codec.empty(n.ACK, response.mid), PEER)
    clock.advance(100)
    assert transport.take() == []


def test_ack_from_another_peer_does_not_settle() -> None:
    """Exchanges are keyed by peer and MID: an ACK from elsewhere is ignored."""
    server, transport, clock, response = _separate_response()
    server.feed(codec.empty(n.ACK, response.mid), OTHER)
    clock.advance(10)
    assert [m.mid for m in transport.take()] == [response.mid]


def test_rst_cancels_separate_response() -> None:
    """An RST to the separate response ends its retransmission."""
    server, transport, clock, response = _separate_response()
    server.feed(codec.empty(n.RST, response.mid), PEER)
    clock.advance(100)
    assert transport.take() == []


def test_ping_gets_rst() -> None:
    """An empty CON (CoAP ping) is answered with an RST of the same MID."""
    server, transport, _ = make_server(tree())
    server.feed(codec.empty(n.CON, 0x4242), PEER)
    [reply] = transport.take()
    assert (reply.mtype, reply.code, reply.mid) == (n.RST, n.EMPTY, 0x4242)


def test_duplicate_con_replays_response() -> None:
    """A retransmitted CON is not handled again; the cached ACK is replayed."""
    hello = Text()
    server, transport, _ = make_server(tree(hello=hello))
    data = request(path="hello", code=n.POST, mid=3, payload=b"x")
    server.feed(data, PEER)
    server.feed(data, PEER)
    first, second = transport.written
    assert first[0] == second[0]
    assert len(hello.received) == 1


def test_duplicate_while_pending_is_ignored() -> None:
    """A retransmission that arrives while the handler runs gets nothing extra."""
    later = Later()
    server, transport, _ = make_server(tree(slow=later))
    data = request(path="slow", mid=3)
    server.feed(data, PEER)
    server.feed(data, PEER)
    assert transport.take() == []
    assert len(later.pending) == 1


def test_duplicate_after_empty_ack_gets_empty_ack() -> None:
    """A retransmission after the empty ACK gets the empty ACK again."""
    later = Later()
    server, transport, clock = make_server(tree(slow=later))
    data = request(path="slow", mid=3)
    server.feed(data, PEER)
    clock.advance(0.1)
    transport.take()
    server.feed(data, PEER)
    [again] = transport.take()
    assert (again.mtype, again.code, again.mid) == (n.ACK, n.EMPTY, 3)


def test_reused_mid_with_new_token_is_served() -> None:
    """A rebooted device reusing a MID with another token gets a fresh answer."""
    hello = Text()
    server, transport, _ = make_server(tree(hello=hello))
    server.feed(request(path="hello", mid=1, token=b"a"), PEER)
    server.feed(request(path="hello", mid=1, token=b"b"), PEER)
    first, second = transport.take()
    assert (first.token, second.token) == (b"a", b"b")
    assert len(hello.received) == 2


def test_reused_mid_with_new_code_is_served() -> None:
    """A reused MID carrying another method is a new request, not a duplicate."""
    hello = Text()
    server, transport, _ = make_server(tree(hello=hello))
    server.feed(request(path="hello", mid=1), PEER)
    server.feed(request(path="hello", mid=1, code=n.POST), PEER)
    first, second = transport.take()
    assert (first.code, second.code) == (n.CONTENT, n.CHANGED)


def test_dedup_expires_after_exchange_lifetime() -> None:
    """After EXCHANGE_LIFETIME the same datagram is handled as new."""
    hello = Text()
    params = TransmissionParameters()
    server, transport, clock = make_server(tree(hello=hello), params=params)
    data = request(path="hello", mid=1)
    server.feed(data, PEER)
    clock.advance(params.exchange_lifetime - 1)
    server.feed(data, PEER)
    assert len(hello.received) == 1
    clock.advance(2)
    server.feed(data, PEER)
    assert len(hello.received) == 2


def test_non_dedup_uses_non_lifetime() -> None:
    """NON messages are remembered for NON_LIFETIME only."""
    hello = Text()
    params = TransmissionParameters()
    server, _, clock = make_server(tree(hello=hello), params=params)
    data = request(path="hello", mid=1, mtype=n.NON)
    server.feed(data, PEER)
    clock.advance(params.non_lifetime + 1)
    server.feed(data, PEER)
    assert len(hello.received) == 2


def test_spoofed_flood_is_bounded() -> None:
    """Requests from many sources never hold more than the dedup bound."""
    limits = EngineLimits(dedup_entries=500)
    server, transport, _ = make_server(tree(hello=Text()), limits=limits)
    for i in range(5000):
        server.feed(request(path="hello", mid=i), ("10.0.0.1", 1024 + i))
    assert len(server.dedup) <= 500
    assert len(transport.written) == 5000


def test_per_peer_dedup_bound() -> None:
    """One peer cannot hold more than its own share of the dedup table."""
    limits = EngineLimits(dedup_entries_per_peer=8)
    server, _, _ = make_server(tree(hello=Text()), limits=limits)
    for mid in range(100):
        server.feed(request(path="hello", mid=mid), PEER)
    assert len(server.dedup) == 8


@pytest.mark.parametrize(
    "path, code, options, expected",
    [
        ("nope", n.GET, (), n.NOT_FOUND),
        ("hello/deeper", n.GET, (), n.NOT_FOUND),
        ("hello", n.DELETE, (), n.METHOD_NOT_ALLOWED),
        ("hello", 5, (), n.METHOD_NOT_ALLOWED),
        ("hello", 31, (), n.METHOD_NOT_ALLOWED),
        ("hello", n.GET, ((2049, b"x"),), n.BAD_OPTION),
        ("hello", n.GET, ((4209, b"x"),), n.BAD_OPTION),
        ("hello", n.GET, ((65001, b""),), n.BAD_OPTION),
        ("hello", n.GET, ((n.PROXY_URI, b"coap://x/"),), n.PROXYING_NOT_SUPPORTED),
        ("hello", n.GET, ((n.PROXY_SCHEME, b"http"),), n.PROXYING_NOT_SUPPORTED),
        ("hello", n.GET, ((n.ACCEPT, 50),), n.NOT_ACCEPTABLE),
        ("hello", n.GET, ((n.ACCEPT, 0),), n.CONTENT),
        ("hello", n.GET, ((4210, b"elective"),), n.CONTENT),
        ("hello", n.GET, ((n.IF_NONE_MATCH, b""),), n.CONTENT),
        ("opt", n.GET, ((4209, b"Basic abc"),), n.CONTENT),
        ("broken", n.PUT, (), n.FORBIDDEN),
    ],
)
def test_error_codes(path: str, code: int, options: tuple, expected: int) -> None:
    """Each kind of unservable request gets its RFC 7252 code and a diagnostic."""
    server, transport, _ = make_server(tree(hello=Text(), opt=Option4209(), broken=Broken()))
    server.feed(request(path=path, code=code, options=options), PEER)
    [reply] = transport.take()
    assert reply.code == expected
    if expected >= 128:
        assert reply.payload


def test_too_large_payload_gets_413_with_size1() -> None:
    """A body over the limit gets 4.13 with Size1 telling the limit."""
    limits = EngineLimits(max_body_size=100)
    server, transport, _ = make_server(tree(hello=Text()), limits=limits)
    server.feed(request(path="hello", code=n.POST, payload=b"x" * 101), PEER)
    [reply] = transport.take()
    assert reply.code == n.REQUEST_ENTITY_TOO_LARGE
    assert option(reply, n.SIZE1) == 100


def test_announced_size1_over_limit_gets_413() -> None:
    """A request announcing a too-large body with Size1 is refused up front."""
    limits = EngineLimits(max_body_size=100)
    server, transport, _ = make_server(tree(hello=Text()), limits=limits)
    server.feed(request(path="hello", code=n.POST, options=((n.SIZE1, 5000),)), PEER)
    [reply] = transport.take()
    assert reply.code == n.REQUEST_ENTITY_TOO_LARGE


def test_handler_exception_gets_500_logged_once_without_payload() -> None:
    """A raising handler gets 5.00; the failure is logged once with the peer, not the payload."""
    events: list[dict] = []
    globalLogPublisher.addObserver(events.append)
    try:
        server, transport, _ = make_server(tree(broken=Broken()))
        server.feed(request(path="broken", payload=b""), PEER)
    finally:
        globalLogPublisher.removeObserver(events.append)
    [reply] = transport.take()
    assert reply.code == n.INTERNAL_SERVER_ERROR
    failures = [e for e in events if e.get("log_failure") is not None]
    assert len(failures) == 1
    assert failures[0]["peer"] == "127.0.0.1:40000"


def test_failed_deferred_gets_500() -> None:
    """A handler whose Deferred fails gets 5.00 too."""
    server, transport, _ = make_server(tree(broken=Broken()))
    server.feed(request(path="broken", code=n.POST), PEER)
    [reply] = transport.take()
    assert reply.code == n.INTERNAL_SERVER_ERROR


def test_uri_path_in_one_option_is_split() -> None:
    """A whole path sent as one Uri-Path option reaches the nested resource."""
    inner = Text(b"deep")
    root = tree()
    mid = Text()
    root.putChild(b"a", mid)
    mid.putChild(b"b", inner)
    server, transport, _ = make_server(root)
    server.feed(request(path="", options=((n.URI_PATH, b"a/b"),)), PEER)
    [reply] = transport.take()
    assert reply.payload == b"deep"


def test_request_sees_peer_and_options() -> None:
    """A resource sees the peer address and every option of the request."""
    hello = Option4209()
    server, _, _ = make_server(tree(opt=hello))
    server.feed(
        request(path="opt", options=((4209, b"v"), (n.URI_QUERY, b"a=1"))), PEER
    )
    [seen] = hello.received
    assert seen.remote == PEER
    assert seen.peer.address == PEER
    assert seen.opt.getOption(4209)[0].value == b"v"
    assert seen.opt.uri_query == [b"a=1"]


def test_request_in_ack_is_dropped() -> None:
    """A request code inside an ACK is a format error and gets nothing."""
    server, transport, _ = make_server(tree(hello=Text()))
    server.feed(request(path="hello", mtype=n.ACK), PEER)
    assert transport.take() == []


def test_unexpected_con_response_gets_rst() -> None:
    """A CON response to nothing we asked is reset."""
    server, transport, _ = make_server(tree())
    server.feed(request(code=n.CONTENT, mid=77), PEER)
    [reply] = transport.take()
    assert (reply.mtype, reply.mid) == (n.RST, 77)


def test_well_known_core_lists_resources() -> None:
    """/.well-known/core lists the tree in link format with obs markers."""
    from .resources import Observable

    server, transport, _ = make_server(tree(hello=Text(), obs=Observable()))
    server.feed(request(path=".well-known/core"), PEER)
    [reply] = transport.take()
    assert reply.code == n.CONTENT
    assert option(reply, n.CONTENT_FORMAT) == n.LINK_FORMAT
    assert reply.payload == b"</hello>,</obs>;obs"


def test_well_known_core_lists_dynamic_links() -> None:
    """Children a resource serves dynamically are listed through its dynamic_links."""

    class Dynamic(Text):
        dynamic_links = {"x": {"rt": "demo", "ct": "50", "obs": ""}}

    server, transport, _ = make_server(tree(dyn=Dynamic()))
    server.feed(request(path=".well-known/core"), PEER)
    [reply] = transport.take()
    assert reply.payload == b'</dyn>,</dyn/x>;rt="demo";ct=50;obs'


class _Guarded(Text):
    """Resolves to itself once the test fires the Deferred; refuses on failure."""

    def __init__(self) -> None:
        super().__init__()
        self.waiting: list[defer.Deferred[Any]] = []

    def resolve(self, request: Any) -> Any:
        d: defer.Deferred[Any] = defer.Deferred()
        self.waiting.append(d)
        return d


def test_resolve_may_defer_before_render() -> None:
    """A resource that resolves through a Deferred renders only once it fires."""
    guarded = _Guarded()
    server, transport, _ = make_server(tree(g=guarded))
    server.feed(request(path="g"), PEER)
    assert guarded.received == [] and transport.take() == []
    guarded.waiting[0].callback(guarded)
    [reply] = transport.take()
    assert reply.code == n.CONTENT and len(guarded.received) == 1


def test_resolve_failure_refuses_before_buffering_blocks() -> None:
    """A refusal from resolve answers its error and keeps no Block1 state."""
    guarded = _Guarded()
    server, transport, _ = make_server(tree(g=guarded))
    block = request(code=n.POST, path="g", payload=b"x" * 16, options=((n.BLOCK1, (0, True, 0)),))
    server.feed(block, PEER)
    guarded.waiting[0].errback(errors.Unauthorized("who are you"))
    [reply] = transport.take()
    assert (reply.code, reply.payload) == (n.UNAUTHORIZED, b"who are you")
    assert len(server.blockwise) == 0


def test_put_child_refuses_a_taken_mount() -> None:
    """Mounting a second resource where one is mounted is an error, not an overwrite."""
    root = tree(a=Text())
    with pytest.raises(ValueError, match="'a' is already mounted"):
        root.putChild(b"a", Text())


def test_forget_peer_leaves_nothing_of_it() -> None:
    """Forgetting a peer drops its exchanges, observations, transfers and dedup entries."""
    from .resources import Observable

    later, obs, text = Later(), Observable(), Text(b"x" * 3000)
    server, transport, clock = make_server(tree(slow=later, obs=obs, big=text))
    server.feed(request(path="slow", mid=1), PEER)
    clock.advance(0.1)
    later.pending[0].callback(Text().render_GET(None))  # a separate CON in flight
    server.feed(request(path="obs", mid=2, options=((n.OBSERVE, 0),)), PEER)
    server.feed(request(path="big", mid=3), PEER)  # a Block2 download started
    upload = request(n.POST, "big", mid=4, payload=b"u" * 16, options=((n.BLOCK1, (0, True, 0)),))
    server.feed(upload, PEER)
    server.feed(request(path="big", mid=1), OTHER)
    assert server.transmitter and server.observations and server.blockwise
    server.forget_peer(PEER)
    assert len(server.transmitter) == 0
    assert len(server.observations) == 0 and obs.observers == {}
    assert len(server.blockwise) == 1  # OTHER's download only
    assert len(server.dedup) == 1
    assert clock.getDelayedCalls() == []


def test_transmission_parameters_are_per_peer() -> None:
    """A peer with its own (NB-IoT) parameters gets its own timers; others keep the defaults."""
    slow_net = TransmissionParameters(ack_timeout=10.0, ack_random_factor=1.0, piggyback_delay=1.0)
    lan = TransmissionParameters(ack_random_factor=1.0)
    later = Later()
    server, transport, clock = make_server(tree(slow=later), params=lan)
    server.peer(OTHER).params = slow_net
    server.feed(request(path="slow", mid=1), PEER)
    server.feed(request(path="slow", mid=1), OTHER)
    clock.advance(0.1)
    assert [addr for _, addr in transport.written] == [PEER]  # OTHER waits 1 s
    clock.advance(0.9)
    assert [addr for _, addr in transport.written] == [PEER, OTHER]
    transport.take()
    for d in later.pending:
        d.callback(Text().render_GET(None))
    transport.take()
    clock.advance(2.0)
    assert [addr for _, addr in transport.written] == [PEER]  # OTHER retransmits at 10 s
    clock.advance(8.0)
    assert [addr for _, addr in transport.written] == [PEER, PEER, OTHER]


def test_dedup_lifetime_follows_the_peer() -> None:
    """A peer with stretched timers has its requests remembered for its longer lifetime."""
    stretched = TransmissionParameters(ack_timeout=10.0)
    hello = Text()
    server, transport, clock = make_server(tree(hello=hello))
    server.peer(OTHER).params = stretched
    server.feed(request(path="hello", mid=5), PEER)
    server.feed(request(path="hello", mid=5), OTHER)
    transport.take()
    clock.advance(TransmissionParameters().exchange_lifetime + 1)
    server.feed(request(path="hello", mid=5), PEER)
    server.feed(request(path="hello", mid=5), OTHER)
    assert len(hello.received) == 3  # PEER's expired and was served again; OTHER's replayed
    assert stretched.exchange_lifetime > TransmissionParameters().exchange_lifetime + 1


@pytest.mark.parametrize("mtype, answer", [(n.CON, n.ACK), (n.NON, n.NON)])
def test_datagram_over_the_limit_gets_413_unparsed(mtype: int, answer: int) -> None:
    """A datagram over max_datagram_size gets 4.13 with Size1 and never reaches the resource."""
    hello = Text()
    server, transport, _ = make_server(tree(hello=hello), limits=EngineLimits(max_datagram_size=64))
    at_limit = request(n.POST, "hello", mtype=mtype, mid=1, payload=b"x" * 50)
    at_limit += b"y" * (64 - len(at_limit))
    server.feed(at_limit, PEER)
    server.feed(at_limit + b"z", PEER)
    ok, refused = transport.take()
    assert ok.code == n.CHANGED and hello.received[0].payload.endswith(b"xy")
    assert (refused.mtype, refused.code) == (answer, n.REQUEST_ENTITY_TOO_LARGE)
    assert refused.token == b"t1" and option(refused, n.SIZE1) == 64
    assert len(hello.received) == 1


def test_too_many_options_is_a_400() -> None:
    """More options than max_options is a 4.00 with a reason; at the limit a request is served."""
    server, transport, _ = make_server(tree(hello=Text()), limits=EngineLimits(max_options=8))
    at_limit = tuple((n.URI_QUERY, b"q") for _ in range(7))  # plus one Uri-Path
    server.feed(request(path="hello", mid=1, options=at_limit), PEER)
    server.feed(request(path="hello", mid=2, options=at_limit + ((n.URI_QUERY, b"q"),)), PEER)
    served, refused = transport.take()
    assert served.code == n.CONTENT
    assert (refused.mtype, refused.mid, refused.code) == (n.ACK, 2, n.BAD_REQUEST)
    assert refused.payload == b"more than 8 options"
