"""The per-source handshake budget."""

from __future__ import annotations

from twisted.internet.task import Clock

from gateway.dtls.ratelimit import HandshakeBudget


def test_budget_is_spent_and_earned_back() -> None:
    """A host gets its budget at once, then one more handshake per refill/budget seconds."""
    clock = Clock()
    budget = HandshakeBudget(clock, budget=2, refill=10.0, max_sources=10)
    assert [budget.take("h") for _ in range(3)] == [True, True, False]
    assert budget.take("other")
    clock.advance(5)
    assert budget.take("h") and not budget.take("h")


def test_remembered_hosts_are_bounded() -> None:
    """Only max_sources hosts are remembered; the one seen longest ago is forgotten first."""
    clock = Clock()
    budget = HandshakeBudget(clock, budget=1, refill=10.0, max_sources=2)
    budget.take("a")
    budget.take("b")
    budget.take("c")
    assert len(budget) == 2
    assert budget.take("a")  # forgotten, so a full budget again
