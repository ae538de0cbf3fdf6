"""
Tests for L{gateway.application.startup}: a start-up error that ends the
process is printed as one line, anything else as Python would.
"""

from __future__ import annotations

import io
import sys
from types import TracebackType
from typing import Any

from gateway.application.startup import OneLineHook, StartupError, install_excepthook
from gateway.config import ConfigError


def test_startup_and_config_errors_are_one_line() -> None:
    """StartupError and ConfigError print 'coap-gateway: error: ...'; others go to the old hook."""
    out = io.StringIO()
    passed: list[Any] = []

    def previous(kind: type[BaseException], error: BaseException, tb: TracebackType | None) -> None:
        passed.append(error)

    hook = OneLineHook(previous, lambda: out)
    hook(StartupError, StartupError("port 1 is in use: free it"), None)
    hook(ConfigError, ConfigError("--coap-port: expected an integer"), None)
    other = RuntimeError("bug")
    hook(RuntimeError, other, None)
    assert out.getvalue() == (
        "coap-gateway: error: port 1 is in use: free it\n"
        "coap-gateway: error: --coap-port: expected an integer\n"
    )
    assert passed == [other]


def test_install_wraps_the_excepthook_once() -> None:
    """Installing twice wraps sys.excepthook in the one-line hook once."""
    saved = sys.excepthook
    sys.excepthook = sys.__excepthook__
    try:
        install_excepthook()
        first = sys.excepthook
        install_excepthook()
        assert sys.excepthook is first
        assert isinstance(first, OneLineHook)
    finally:
        sys.excepthook = saved
