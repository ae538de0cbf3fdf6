# -*- test-case-name: tests.application.test_signals -*-
"""
L{StopSignals}: one SIGTERM or SIGINT stops the gateway; more while it
stops are ignored.

The reactor's own handlers call C{reactor.stop} on every signal, and a
second call while stopping raises C{ReactorNotRunning}, logged as a
critical traceback: what happens when a process group is signalled (C{make
run} stopped with Ctrl-C, or SIGTERM then SIGINT from a supervisor).
"""

from __future__ import annotations

import signal
from functools import partial
from types import FrameType
from typing import Any, Callable

import attrs
from twisted.internet.interfaces import IReactorCore

__all__ = ["StopSignals"]

Handler = Callable[[int, "FrameType | None"], Any]


@attrs.define
class StopSignals:
    """
    Once the reactor is running, wrap its SIGTERM and SIGINT handlers (its
    bound methods) so that only the first signal reaches them, and none
    once shutdown has begun for another reason.  The first one's handler still records the
    signal, so twistd exits with it as before.

    @param getsignal: C{signal.getsignal}, or a stand-in in tests.
    @param setsignal: C{signal.signal}, or a stand-in in tests.
    """

    _reactor: IReactorCore
    _getsignal: Callable[[int], Any] = signal.getsignal
    _setsignal: Callable[[int, Handler], Any] = signal.signal
    _stopping: bool = False

    def install(self) -> None:
        # The reactor installs its handlers during startup.
        self._reactor.addSystemEventTrigger("after", "startup", self._wrap)
        self._reactor.addSystemEventTrigger("before", "shutdown", self._shutdown_begins)

    def _wrap(self) -> None:
        for number in (signal.SIGTERM, signal.SIGINT):
            previous = self._getsignal(number)
            # Only the reactor's own handlers (not SIGINT ignored in a
            # background job, nor a test runner's).
            if getattr(previous, "__self__", None) is self._reactor:
                self._setsignal(number, partial(self._handle, previous))

    def _shutdown_begins(self) -> None:
        self._stopping = True

    def _handle(self, previous: Handler, number: int, frame: FrameType | None) -> None:
        if self._stopping:
            return
        self._stopping = True
        previous(number, frame)
