"""Waits on one reactor timer: run when due, dropped when cancelled, in order."""

from __future__ import annotations

from twisted.internet.task import Clock
from twisted.logger import LogEvent, globalLogPublisher

from gateway.coap.deadlines import Deadlines


def test_a_wait_runs_when_due_and_a_cancelled_one_never() -> None:
    """After its delay a wait's call runs; a cancelled wait's never does, and no timer is left."""
    clock, ran = Clock(), []
    deadlines = Deadlines(clock)
    deadlines.add(0.1, ran.append, "a")
    deadlines.add(0.1, ran.append, "b").cancel()
    clock.advance(0.05)
    assert ran == []
    clock.advance(0.05)
    assert ran == ["a"]
    assert clock.getDelayedCalls() == [] and len(deadlines) == 0


def test_cancelling_the_only_wait_leaves_no_timer_once_due() -> None:
    """A cancelled wait is dropped at its time; nothing runs and no timer stays."""
    clock, ran = Clock(), []
    deadlines = Deadlines(clock)
    deadlines.add(0.1, ran.append, "a").cancel()
    clock.advance(0.1)
    assert ran == [] and clock.getDelayedCalls() == []


def test_waits_run_by_due_time_then_in_the_order_added() -> None:
    """A shorter wait added later runs first; waits due together run in the order added."""
    clock, ran = Clock(), []
    deadlines = Deadlines(clock)
    deadlines.add(2.0, ran.append, "late")
    deadlines.add(1.0, ran.append, "first")
    deadlines.add(1.0, ran.append, "second")
    clock.advance(1.0)
    assert ran == ["first", "second"]
    clock.advance(1.0)
    assert ran == ["first", "second", "late"]


def test_a_failing_call_is_logged_and_the_others_run() -> None:
    """An exception in one call is logged; the waits due with it still run."""
    clock, ran, logged = Clock(), [], []

    def boom(_: object) -> None:
        raise ValueError("boom")

    def observer(event: LogEvent) -> None:
        logged.append(event)

    deadlines = Deadlines(clock)
    deadlines.add(0.1, boom, None)
    deadlines.add(0.1, ran.append, "after")
    globalLogPublisher.addObserver(observer)
    try:
        clock.advance(0.1)
    finally:
        globalLogPublisher.removeObserver(observer)
    assert ran == ["after"]
    assert any(e.get("log_failure") is not None for e in logged)
    assert clock.getDelayedCalls() == []


def test_clear_drops_every_wait_and_the_timer() -> None:
    """clear() drops what is pending; nothing runs later."""
    clock, ran = Clock(), []
    deadlines = Deadlines(clock)
    deadlines.add(0.1, ran.append, "a")
    deadlines.clear()
    assert clock.getDelayedCalls() == []
    clock.advance(1)
    assert ran == [] and len(deadlines) == 0
