"""The UDP transport: addresses to peers, sends, and stopping."""

from __future__ import annotations

import errno
from typing import Any

from twisted.internet.task import Clock
from twisted.logger import globalLogPublisher

from gateway.coap.layer import MessageLayer
from gateway.coap.params import TransmissionParameters
from gateway.coap.udp import UDPTransport

from .resources import Later, Text, tree
from .support import OTHER, PEER, FakeTransport, request


def _udp(root: Any = None, max_peers: int | None = None, **layer: Any):  # type: ignore[no-untyped-def]
    clock = Clock()
    engine = MessageLayer(root or tree(hello=Text()), clock, **layer)
    udp = UDPTransport(engine, max_peers)
    wire = FakeTransport()
    udp.makeConnection(wire)  # type: ignore[arg-type]
    return udp, wire, clock


def test_answers_go_back_to_the_source_address() -> None:
    """A datagram from an address is answered to that address."""
    udp, wire, _ = _udp()
    udp.datagramReceived(request(path="hello"), PEER)
    udp.datagramReceived(request(path="hello", mid=2), OTHER)
    assert [addr for _, addr in wire.written] == [PEER, OTHER]


def test_new_peers_start_on_the_engine_defaults() -> None:
    """Each new address gets a peer carrying the engine's transmission parameters."""
    params = TransmissionParameters(ack_timeout=7.0)
    udp, _, _ = _udp(params=params)
    udp.datagramReceived(request(path="hello"), PEER)
    hello = udp.layer.root.children[b"hello"]
    assert hello.received[0].peer.params is params
    assert hello.received[0].peer.key == PEER


def test_peer_table_is_bounded() -> None:
    """Peer objects are bounded in number; an evicted address is still served."""
    udp, wire, _ = _udp(max_peers=2)
    for port in range(5):
        udp.datagramReceived(request(path="hello"), ("127.0.0.1", 50000 + port))
    assert len(udp._peers) == 2
    assert len(wire.written) == 5


def test_socket_send_errors_are_counted_not_raised() -> None:
    """A failing sendto on the socket is counted, and a too-large datagram logged once."""

    class Socket:
        def sendto(self, data: bytes, addr: Any) -> None:
            raise OSError(errno.EMSGSIZE, "too long")

    class WithSocket(FakeTransport):
        socket = Socket()

    clock = Clock()
    udp = UDPTransport(MessageLayer(tree(hello=Text()), clock))
    udp.makeConnection(WithSocket())  # type: ignore[arg-type]
    events: list[dict[str, Any]] = []
    globalLogPublisher.addObserver(events.append)
    try:
        udp.datagramReceived(request(path="hello"), PEER)
    finally:
        globalLogPublisher.removeObserver(events.append)
    plain, wire, _ = _udp()
    plain.datagramReceived(request(path="hello"), PEER)
    [(answer, _)] = wire.written
    assert udp.send_errors == 1
    assert [e["size"] for e in events if "size" in e] == [len(answer)]


def test_stopping_cancels_the_engine_timers() -> None:
    """Closing the socket cancels every pending retransmission of the engine."""
    later = Later()
    udp, _, clock = _udp(tree(slow=later))
    udp.datagramReceived(request(path="slow"), PEER)
    clock.advance(0.1)
    later.pending[0].callback(Text().render_GET(None))
    assert clock.getDelayedCalls()
    udp.doStop()
    assert clock.getDelayedCalls() == []
