# -*- test-case-name: tests.application.test_startup -*-
"""
Start-up failures an operator must fix, reported in one line.

A L{StartupError} (or a L{ConfigError}) raised while twistd builds or
starts the gateway (C{makeService}, C{privilegedStartService}) ends the
process before the reactor runs.  twistd lets the exception through (after
removing its pid file, or writing it to the daemon's status pipe), so the
process exits with status 1, and L{install_excepthook} prints it as
C{coap-gateway: error: <message>} instead of a traceback.
"""

from __future__ import annotations

import sys
from types import TracebackType
from typing import Callable, TextIO

import attrs

from gateway.config import ConfigError

__all__ = ["StartupError", "OneLineHook", "install_excepthook"]

ExceptHook = Callable[[type[BaseException], BaseException, "TracebackType | None"], object]


class StartupError(Exception):
    """The gateway cannot start: the message names the path or port and what to do."""


@attrs.frozen
class OneLineHook:
    """
    An excepthook printing start-up errors as one line on C{stream()} and
    anything else with C{previous}.
    """

    _previous: ExceptHook
    _stream: Callable[[], TextIO]

    def __call__(
        self, kind: type[BaseException], error: BaseException, tb: TracebackType | None
    ) -> None:
        if issubclass(kind, (StartupError, ConfigError)):
            print(f"coap-gateway: error: {error}", file=self._stream())
        else:
            self._previous(kind, error, tb)


def install_excepthook() -> None:
    """Print start-up errors that end the process as one line (installed once)."""
    if not isinstance(sys.excepthook, OneLineHook):
        # sys.stderr is looked up when printing: twistd redirects it to its log.
        sys.excepthook = OneLineHook(sys.excepthook, lambda: sys.stderr)
