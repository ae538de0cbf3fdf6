"""The transmitter: message IDs, NSTART and CON retransmission outcomes."""

from __future__ import annotations

import random

from twisted.internet.task import Clock

from gateway.coap.params import TransmissionParameters
from gateway.coap.peer import UDPPeer
from gateway.coap.transmit import Transmitter

PARAMS = TransmissionParameters(ack_timeout=2.0, ack_random_factor=1.0, max_retransmit=2)


def _setup(params: TransmissionParameters = PARAMS):  # type: ignore[no-untyped-def]
    clock = Clock()
    sent: list[bytes] = []
    peer = UDPPeer(lambda data, addr: sent.append(data), ("127.0.0.1", 1), params)
    return Transmitter(clock, max_peers=10, rng=random.Random(1)), clock, sent, peer


def test_nstart_queues_further_cons() -> None:
    """With NSTART=1 a second CON waits until the first is acknowledged."""
    transmitter, _, sent, peer = _setup()
    transmitter.send_confirmable(peer, 1, b"first")
    transmitter.send_confirmable(peer, 2, b"second")
    assert sent == [b"first"]
    assert transmitter.acknowledge(peer.key, 1)
    assert sent == [b"first", b"second"]


def test_timeout_reports_outcome_after_max_retransmit() -> None:
    """A CON never acknowledged is sent 1 + MAX_RETRANSMIT times, then reported as timed out."""
    transmitter, clock, sent, peer = _setup()
    outcomes: list[str] = []
    transmitter.send_confirmable(peer, 1, b"x", outcomes.append)
    for _ in range(20):
        clock.advance(1)
    assert (len(sent), outcomes) == (3, ["timeout"])
    assert len(transmitter) == 0


def test_reset_reports_outcome_and_starts_next() -> None:
    """An RST settles the exchange as reset and lets the queued CON go."""
    transmitter, _, sent, peer = _setup()
    outcomes: list[str] = []
    transmitter.send_confirmable(peer, 1, b"a", outcomes.append)
    transmitter.send_confirmable(peer, 2, b"b")
    assert transmitter.reset(peer.key, 1)
    assert outcomes == ["reset"] and sent == [b"a", b"b"]


def test_queue_overflow_drops_oldest() -> None:
    """More than 64 queued CONs to one peer drop the oldest, reporting it."""
    transmitter, _, _, peer = _setup()
    outcomes: list[tuple[int, str]] = []
    for mid in range(66):
        transmitter.send_confirmable(peer, mid, b"", lambda o, mid=mid: outcomes.append((mid, o)))
    assert outcomes == [(1, "dropped")]


def test_next_mid_skips_live_exchanges() -> None:
    """A new message ID never collides with an exchange still live towards the same peer."""
    transmitter, _, _, peer = _setup()
    first = transmitter.next_mid(peer.key)
    transmitter.send_confirmable(peer, (first + 1) & 0xFFFF, b"")
    assert transmitter.next_mid(peer.key) == (first + 2) & 0xFFFF


def test_cancel_all_stops_timers() -> None:
    """Cancelling every exchange leaves no timer and reports nothing."""
    transmitter, clock, _, peer = _setup()
    outcomes: list[str] = []
    transmitter.send_confirmable(peer, 1, b"", outcomes.append)
    transmitter.send_confirmable(peer, 2, b"", outcomes.append)
    transmitter.cancel_all()
    assert clock.getDelayedCalls() == [] and outcomes == [] and len(transmitter) == 0
