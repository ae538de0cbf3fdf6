"""
Tests for L{gateway.application.signals}: the first stop signal reaches the
reactor's handler, later ones and those after shutdown began do not.
"""

from __future__ import annotations

import signal
from typing import Any, Callable

from gateway.application.signals import StopSignals


class FakeReactor:
    """Records system event triggers and fires them on demand; records the signals it handles."""

    def __init__(self) -> None:
        self.triggers: dict[tuple[str, str], list[Callable[[], Any]]] = {}
        self.signals: list[int] = []

    def sigTerm(self, number: int, frame: Any) -> None:
        self.signals.append(number)

    sigInt = sigTerm

    def addSystemEventTrigger(self, phase: str, event: str, fn: Callable[[], Any]) -> None:
        self.triggers.setdefault((phase, event), []).append(fn)

    def fire(self, phase: str, event: str) -> None:
        for fn in self.triggers.get((phase, event), []):
            fn()


def installed() -> tuple[FakeReactor, dict[int, Any], list[int]]:
    reactor = FakeReactor()
    table: dict[int, Any] = {signal.SIGTERM: reactor.sigTerm, signal.SIGINT: reactor.sigInt}
    StopSignals(reactor, table.__getitem__, table.__setitem__).install()  # type: ignore[arg-type]
    reactor.fire("after", "startup")
    return reactor, table, reactor.signals


def test_only_the_first_stop_signal_reaches_the_reactor() -> None:
    """SIGTERM then SIGINT then SIGTERM: the reactor's handler hears the first only."""
    _, table, calls = installed()
    table[signal.SIGTERM](signal.SIGTERM, None)
    table[signal.SIGINT](signal.SIGINT, None)
    table[signal.SIGTERM](signal.SIGTERM, None)
    assert calls == [signal.SIGTERM]


def test_signals_during_a_shutdown_begun_otherwise_are_ignored() -> None:
    """Once shutdown has begun (start-up failed, say), a stop signal is ignored."""
    reactor, table, calls = installed()
    reactor.fire("before", "shutdown")
    table[signal.SIGINT](signal.SIGINT, None)
    assert calls == []


def test_only_the_reactor_handlers_are_wrapped_once_it_runs() -> None:
    """Before startup nothing changes; then the reactor's handlers are wrapped and no others."""
    reactor = FakeReactor()

    def runner(number: int, frame: Any) -> None:
        """A handler of someone else's (a test runner's, say)."""

    table: dict[int, Any] = {signal.SIGTERM: reactor.sigTerm, signal.SIGINT: runner}
    StopSignals(reactor, table.__getitem__, table.__setitem__).install()  # type: ignore[arg-type]
    assert table == {signal.SIGTERM: reactor.sigTerm, signal.SIGINT: runner}
    reactor.fire("after", "startup")
    assert table[signal.SIGINT] is runner
    assert table[signal.SIGTERM] != reactor.sigTerm
    table[signal.SIGTERM](signal.SIGTERM, None)
    assert reactor.signals == [signal.SIGTERM]
