"""The deduplicator on its own: lifetimes, identity of retransmissions, bounds."""

from __future__ import annotations

from twisted.internet.task import Clock

from gateway.coap.dedup import Deduplicator

CON, NON = 247.0, 145.0


def _dedup(max_entries: int = 100, per_peer: int = 10) -> tuple[Deduplicator, Clock]:
    clock = Clock()
    return Deduplicator(clock, max_entries, per_peer), clock


def test_identical_bytes_are_a_duplicate() -> None:
    """The same datagram under the same MID finds the earlier entry; other bytes do not."""
    dedup, _ = _dedup()
    entry = dedup.remember("p", 1, b"abc", lifetime=CON)
    assert dedup.lookup("p", 1, b"abc") is entry
    assert dedup.lookup("p", 1, b"abd") is None
    assert dedup.lookup("q", 1, b"abc") is None


def test_con_and_non_lifetimes() -> None:
    """CON entries live EXCHANGE_LIFETIME and NON entries NON_LIFETIME."""
    dedup, clock = _dedup()
    dedup.remember("p", 1, b"con", lifetime=CON)
    dedup.remember("p", 2, b"non", lifetime=NON)
    clock.advance(146)
    assert dedup.lookup("p", 2, b"non") is None
    assert dedup.lookup("p", 1, b"con") is not None
    clock.advance(102)
    assert dedup.lookup("p", 1, b"con") is None


def test_expired_entries_are_purged() -> None:
    """Expired entries leave the table on the next remember, and empty peers go too."""
    dedup, clock = _dedup()
    for mid in range(5):
        dedup.remember("p", mid, b"x", lifetime=NON)
    clock.advance(200)
    dedup.remember("q", 1, b"y", lifetime=CON)
    assert len(dedup) == 1


def test_reuse_flood_keeps_queue_bounded() -> None:
    """Re-sending one MID with new bytes forever keeps one entry and a bounded queue."""
    dedup, _ = _dedup(max_entries=50)
    for i in range(10_000):
        dedup.remember("p", 7, i.to_bytes(4, "big"), lifetime=CON)
    assert len(dedup) == 1
    assert len(dedup._queue) <= 100


def test_forget_peer() -> None:
    """Forgetting a peer drops all its entries."""
    dedup, _ = _dedup()
    for mid in range(3):
        dedup.remember("p", mid, b"x", lifetime=CON)
    dedup.forget_peer("p")
    assert len(dedup) == 0 and dedup.lookup("p", 0, b"x") is None


def test_large_datagrams_cost_no_more_than_small_ones() -> None:
    """An entry keeps a digest of the datagram, so its charge does not grow with the datagram."""
    dedup, _ = _dedup()
    dedup.remember("p", 1, b"x", lifetime=NON)
    small = dedup.bytes
    dedup.remember("p", 2, b"x" * 8000, lifetime=NON)
    assert dedup.bytes == 2 * small
    assert dedup.lookup("p", 2, b"x" * 8000) is not None
    assert dedup.lookup("p", 2, b"x" * 7999 + b"y") is None


def test_bounded_in_bytes() -> None:
    """Entries and the answers they keep stay under max_bytes; the oldest go first."""
    clock = Clock()
    dedup = Deduplicator(clock, 1000, 1000, max_bytes=10 * 1280)
    for mid in range(50):
        dedup.answered(dedup.remember("p", mid, b"req", lifetime=CON), b"a" * 1024)
    assert dedup.bytes <= 10 * 1280 + 1280
    assert dedup.lookup("p", 49, b"req") is not None
    assert dedup.lookup("p", 0, b"req") is None
    dedup.forget_peer("p")
    assert (len(dedup), dedup.bytes) == (0, 0)
