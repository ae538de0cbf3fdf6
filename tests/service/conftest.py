"""
Fixtures: the service layer over the in-memory store, driven by a Clock.
Every Deferred of the in-memory layer has fired by the time a call returns,
so tests read results with L{result} and L{failure} instead of a reactor.
"""

from __future__ import annotations

from typing import Any, TypeVar

from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

from gateway.service.passwords import PasswordHasher

T = TypeVar("T")

#: Cheap scrypt parameters for tests.
FAST_HASHER = PasswordHasher(n=2**4)


def result(d: "Deferred[T]") -> T:
    """The result of an already-fired Deferred (fails the test otherwise)."""
    out: list[Any] = []
    d.addBoth(out.append)
    assert out, "Deferred has not fired"
    if isinstance(out[0], Failure):
        out[0].raiseException()
    return out[0]  # type: ignore[no-any-return]


def failure(d: "Deferred[Any]", *errors: type[BaseException]) -> Failure:
    """The Failure of an already-failed Deferred, checked against C{errors}."""
    out: list[Any] = []
    d.addBoth(out.append)
    assert out, "Deferred has not fired"
    assert isinstance(out[0], Failure), f"expected a failure, got {out[0]!r}"
    assert out[0].check(*errors), out[0]
    return out[0]
