"""
The DTLS transport driven by a Clock: the cookie front end, sessions and
their identities, timers, limits and what the engine sees.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.task import Clock
from twisted.logger import LogEvent, globalLogPublisher

from gateway.coap import codec
from gateway.coap import numbers as n
from gateway.coap.layer import MessageLayer
from gateway.dtls.session import State
from gateway.dtls.settings import DTLSSettings
from tests.coap.resources import Observable, tree
from tests.coap.support import request

from .support import ADDRESS, OTHER, PSK_ID, Harness, MemoryClient


def test_psk_session_carries_its_identity_to_the_engine() -> None:
    """After a PSK handshake the engine gets plaintext from a peer carrying the PSK identity."""
    tb = Harness()
    client = tb.connect(tb.psk_client())
    assert client.established
    assert tb.exchange(client, b"hello") == [b"echo:hello"]
    [(peer, data)] = tb.engine.received
    assert data == b"hello" and peer.address == ADDRESS
    assert str(peer.identity) == "psk:" + PSK_ID
    assert tb.transport.counters.handshakes["psk"]["ok"] == 1


def test_one_way_session_has_no_identity() -> None:
    """A client that only checks the server's certificate gets a session without identity."""
    tb = Harness()
    client = tb.connect(MemoryClient(ca=tb.ca_pem()))
    assert client.established and client.cipher.startswith("ECDHE-ECDSA")
    tb.exchange(client, b"x")
    [(peer, _)] = tb.engine.received
    assert peer.identity is None
    assert tb.transport.report()["sessions"]["by_mode"]["one_way"] == 1


def test_first_client_hello_gets_a_verify_request_and_no_state() -> None:
    """A ClientHello without cookie is answered with one small HelloVerifyRequest, nothing kept."""
    tb = Harness()
    [answer] = tb.feed(tb.psk_client().start())
    assert answer[0] == 22 and answer[13] == 3  # handshake record: hello_verify_request
    assert len(answer) <= 60
    assert len(tb.transport) == 0
    assert tb.transport.counters.hello_verify_requests == 1


def test_garbage_from_strangers_is_dropped_silently() -> None:
    """Datagrams that are no ClientHello get no answer and leave no state."""
    tb = Harness()
    hello = tb.psk_client().start()[0]
    for data in (b"\x00", b"\x17" + bytes(40), hello[:20], request(path="x"), bytes(1400)):
        assert tb.feed([data]) == []
    assert len(tb.transport) == 0
    assert tb.transport.counters.not_client_hello == 5


def test_forged_cookie_is_counted_and_answered_with_a_new_one() -> None:
    """A ClientHello with a cookie not made for its address is rejected: verify request again."""
    tb = Harness()
    client = tb.psk_client()
    [verify] = tb.feed(client.start(), OTHER)
    [second] = client.receive(verify)  # carries a cookie for OTHER
    [again] = tb.feed([second], ADDRESS)
    assert again[13] == 3
    assert tb.transport.counters.cookie_rejections == 1 and len(tb.transport) == 0


def test_cookie_rotation_outdates_cookies() -> None:
    """A cookie two rotations old is refused; one rotation old still starts a session."""
    tb = Harness(DTLSSettings(cookie_rotation=60.0))
    fresh = tb.psk_client()
    [verify] = tb.feed(fresh.start())
    [with_cookie] = fresh.receive(verify)
    tb.clock.advance(60)
    assert len(tb.feed([with_cookie])) >= 1 and len(tb.transport) == 1
    stale = tb.psk_client()
    [verify] = tb.feed(stale.start(), OTHER)
    [stale_cookie] = stale.receive(verify)
    tb.clock.advance(120)
    [again] = tb.feed([stale_cookie], OTHER)
    assert again[13] == 3 and tb.transport.session(OTHER) is None


def _verified_hello(tb: Harness, client: MemoryClient, addr: Any = ADDRESS) -> bytes:
    [verify] = tb.feed(client.start(), addr)
    [hello] = client.receive(verify)
    return hello


def test_server_flight_is_retransmitted_with_doubling_delays() -> None:
    """An unanswered server flight is sent again after 1 s, then 2 s, 4 s (the injected clock)."""
    tb = Harness(DTLSSettings(retransmit_initial=1.0, handshake_timeout=30.0))
    client = MemoryClient(ca=tb.ca_pem())
    flight = tb.feed([_verified_hello(tb, client)])
    assert flight
    tb.clock.advance(0.9)
    assert tb.wire.take(ADDRESS) == []
    tb.clock.advance(0.1)
    assert tb.wire.take(ADDRESS) == flight
    tb.clock.advance(1.9)
    assert tb.wire.take(ADDRESS) == []
    tb.clock.advance(0.1)
    assert tb.wire.take(ADDRESS) == flight
    tb.clock.advance(4)
    assert tb.wire.take(ADDRESS) == flight
    # The client still completes on the retransmitted copy.
    pending = [out for data in flight for out in client.receive(data)]
    for data in tb.feed(pending):
        client.receive(data)
    assert client.established and tb.transport.session(ADDRESS).state is State.OPEN


def test_flight_datagrams_fit_the_mtu() -> None:
    """The server's certificate flight is split into datagrams no larger than the MTU."""
    tb = Harness(DTLSSettings(mtu=400))
    flight = tb.feed([_verified_hello(tb, MemoryClient(ca=tb.ca_pem(), mtu=400))])
    assert len(flight) > 1 and max(len(d) for d in flight) <= 400


def test_handshake_deadline_drops_the_session() -> None:
    """A handshake not finished within handshake_timeout is dropped and counted a timeout."""
    tb = Harness(DTLSSettings(handshake_timeout=5.0))
    tb.feed([_verified_hello(tb, MemoryClient(ca=tb.ca_pem()))])
    assert len(tb.transport) == 1
    tb.clock.pump([1.0] * 4)
    assert len(tb.transport) == 1
    tb.clock.pump([1.0] * 2)
    assert len(tb.transport) == 0
    assert tb.transport.counters.handshakes["one_way"]["timeout"] == 1
    assert len(tb.engine.forgotten) == 1


def test_wrong_psk_key_times_out_with_a_hint() -> None:
    """A known identity with a wrong key stalls; at the deadline a likely wrong key is logged."""
    tb = Harness(DTLSSettings(handshake_timeout=5.0))
    events: list[LogEvent] = []
    globalLogPublisher.addObserver(events.append)
    try:
        client = tb.connect(tb.psk_client(key=b"not the key"))
        assert not client.established and client.failed is None  # no alert: it just stalls
        tb.clock.pump([1.0] * 6)
    finally:
        globalLogPublisher.removeObserver(events.append)
    assert len(tb.transport) == 0
    assert tb.transport.counters.handshakes["psk"]["timeout"] == 1
    assert any("probably a wrong key" in str(e.get("reason")) for e in events)


def test_unknown_psk_identity_fails_at_once() -> None:
    """An identity nobody holds gets a fatal alert and leaves no session."""
    tb = Harness()
    client = tb.connect(tb.psk_client(identity="nobody"))
    assert not client.established and client.failed is not None
    assert len(tb.transport) == 0
    assert tb.transport.counters.handshakes["psk"]["failed"] == 1


def test_idle_session_expires_with_close_notify() -> None:
    """A session silent for inactivity_timeout gets close_notify and its engine state dropped."""
    tb = Harness(DTLSSettings(inactivity_timeout=10.0))
    client = tb.connect(tb.psk_client())
    tb.clock.pump([1.0] * 5)
    tb.exchange(client, b"still here")
    tb.clock.pump([1.0] * 9)
    assert len(tb.transport) == 1
    tb.clock.pump([1.0] * 2)
    assert len(tb.transport) == 0
    for data in tb.wire.take(ADDRESS):
        client.receive(data)
    assert client.closed
    assert tb.transport.counters.idle_timeouts == 1
    assert tb.engine.forgotten == [tb.engine.received[0][0].key]


def test_new_handshake_from_the_same_address_replaces_the_session() -> None:
    """A client starting over from the same address gets a new session; the old one's state goes."""
    tb = Harness()
    first = tb.connect(tb.psk_client())
    tb.exchange(first, b"one")
    old = tb.transport.session(ADDRESS)
    second = tb.connect(tb.psk_client())
    assert second.established
    new = tb.transport.session(ADDRESS)
    assert new is not old and old is not None and old.state is State.CLOSED
    assert tb.engine.forgotten == [old.key]
    assert tb.exchange(second, b"two") == [b"echo:two"]
    assert tb.transport.counters.replaced == 1


def test_retransmitted_client_hello_does_not_replace_the_handshake() -> None:
    """The same ClientHello again (same random) goes to the session being built, not a new one."""
    tb = Harness()
    client = MemoryClient(ca=tb.ca_pem())
    hello = _verified_hello(tb, client)
    flight = tb.feed([hello])
    session = tb.transport.session(ADDRESS)
    tb.feed([hello])
    assert tb.transport.session(ADDRESS) is session
    pending = [out for data in flight for out in client.receive(data)]
    for data in tb.feed(pending):
        client.receive(data)
    assert client.established and tb.transport.counters.replaced == 0


def test_handshakes_per_source_are_rate_limited() -> None:
    """A host past its handshake budget is dropped until it earns one back; others are not."""
    tb = Harness(DTLSSettings(handshakes_per_source=2, handshake_refill=10.0))
    ports = iter(range(41000, 41100))
    results = [tb.connect(tb.psk_client(), ("127.0.0.1", next(ports))).established
               for _ in range(3)]
    assert results == [True, True, False]
    assert tb.transport.counters.rate_limited == 1
    assert tb.connect(tb.psk_client(), ("127.0.0.2", 1)).established
    tb.clock.advance(5)
    assert tb.connect(tb.psk_client(), ("127.0.0.1", next(ports))).established


def test_session_table_is_bounded() -> None:
    """With max_sessions open, a new client is dropped after its cookie, and counted."""
    tb = Harness(DTLSSettings(max_sessions=2))
    assert tb.connect(tb.psk_client(), ("127.0.0.1", 1)).established
    assert tb.connect(tb.psk_client(), ("127.0.0.1", 2)).established
    assert not tb.connect(tb.psk_client(), ("127.0.0.1", 3)).established
    assert len(tb.transport) == 2 and tb.transport.counters.session_limit == 1


def test_client_close_notify_ends_the_session() -> None:
    """close_notify from the client closes the session and drops its engine state."""
    tb = Harness()
    client = tb.connect(tb.psk_client())
    tb.feed(client.close())
    assert len(tb.transport) == 0 and tb.transport.counters.closed_by_client == 1
    assert len(tb.engine.forgotten) == 1


def test_stopping_sends_close_notify_to_every_session() -> None:
    """Stopping the transport says close_notify to each open session."""
    tb = Harness()
    clients = [tb.connect(tb.psk_client(), addr) for addr in (ADDRESS, OTHER)]
    tb.transport.doStop()
    for client, addr in zip(clients, (ADDRESS, OTHER), strict=True):
        for data in tb.wire.take(addr):
            client.receive(data)
        assert client.closed
    assert len(tb.transport) == 0


def test_records_that_do_not_decrypt_are_dropped() -> None:
    """A tampered record is dropped without an answer and the session keeps working."""
    tb = Harness()
    client = tb.connect(tb.psk_client())
    [record] = client.send(b"tampered")
    assert tb.feed([record[:-1] + bytes([record[-1] ^ 1])]) == []
    assert tb.exchange(client, b"fine") == [b"echo:fine"]


def test_engine_state_goes_with_the_session() -> None:
    """An observation made over a session is cancelled when the session is replaced."""
    clock = Clock()
    layer = MessageLayer(tree(obs=Observable()), clock)
    tb = Harness(engine=layer, clock=clock)
    client = tb.connect(tb.psk_client())
    register = request(path="obs", options=((n.OBSERVE, 0),))
    [answer] = tb.exchange(client, register)
    assert codec.decode(answer).code == n.CONTENT
    assert len(layer.observations) == 1
    tb.connect(tb.psk_client())
    assert len(layer.observations) == 0



def test_session_is_an_engine_peer() -> None:
    """A DTLS session provides the engine's IPeer, with a key of its own per session."""
    from zope.interface.verify import verifyObject

    from gateway.coap.peer import IPeer

    tb = Harness()
    tb.connect(tb.psk_client())
    first = tb.transport.session(ADDRESS)
    assert first is not None and verifyObject(IPeer, first)
    tb.connect(tb.psk_client())
    second = tb.transport.session(ADDRESS)
    assert second is not None and second.key != first.key and second.address == first.address
