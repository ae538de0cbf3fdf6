"""The wrong-credentials guard: a token bucket per source address on the clock."""

from __future__ import annotations

from typing import Any

from twisted.internet.task import Clock
from twisted.logger import globalLogPublisher
from zope.interface.verify import verifyObject

from gateway.service.guard import CredentialGuard
from gateway.service.interfaces import ICredentialGuard, SourceStatus


def test_guard_provides_its_interface() -> None:
    """The guard is an ICredentialGuard."""
    assert verifyObject(ICredentialGuard, CredentialGuard(Clock()))


def test_budget_spent_then_earned_back_on_the_clock() -> None:
    """A source may fail its budget at once, is throttled after, and earns one try per share."""
    clock = Clock()
    guard = CredentialGuard(clock, 3, 30.0)
    for _ in range(3):
        assert guard.throttled("10.0.0.1") is None
        guard.failed("10.0.0.1")
    assert guard.throttled("10.0.0.1") == 10
    clock.advance(9)
    assert guard.throttled("10.0.0.1") == 1
    clock.advance(1)
    assert guard.throttled("10.0.0.1") is None
    guard.failed("10.0.0.1")
    assert guard.throttled("10.0.0.1") == 10
    assert (guard.wrong_total, guard.throttled_total) == (4, 3)
    assert guard.sources() == [SourceStatus("10.0.0.1", 4, 3, 10)]


def test_other_sources_are_never_throttled() -> None:
    """One source spending its budget leaves every other source free."""
    guard = CredentialGuard(Clock(), 1, 60.0)
    guard.failed("10.0.0.1")
    assert guard.throttled("10.0.0.1") == 60
    assert guard.throttled("10.0.0.2") is None
    assert guard.throttled("::1") is None


def test_no_budget_counts_but_never_throttles() -> None:
    """A budget of 0 turns throttling off; failures are still counted per source."""
    guard = CredentialGuard(Clock(), 0)
    for _ in range(100):
        guard.failed("10.0.0.1")
    assert guard.throttled("10.0.0.1") is None
    assert guard.sources() == [SourceStatus("10.0.0.1", 100, 0, None)]


def test_sources_bounded_oldest_failure_forgotten() -> None:
    """Past max_sources the source that failed longest ago is forgotten first."""
    guard = CredentialGuard(Clock(), 5, 60.0, max_sources=2)
    guard.failed("a")
    guard.failed("b")
    guard.failed("a")
    guard.failed("c")
    assert [s.source for s in guard.sources()] == ["a", "c"]


def test_throttling_logged_once_per_block() -> None:
    """Becoming throttled is logged once, not once per failure or refused request."""
    events: list[dict[str, Any]] = []
    globalLogPublisher.addObserver(events.append)
    try:
        guard = CredentialGuard(Clock(), 2, 60.0)
        for _ in range(5):
            guard.failed("10.0.0.1")
            guard.throttled("10.0.0.1")
    finally:
        globalLogPublisher.removeObserver(events.append)
    mine = [e for e in events if e.get("source") == "10.0.0.1"]
    assert len(mine) == 1
    assert mine[0]["wrong"] == 2
