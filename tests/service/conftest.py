"""
Fixtures: the service layer over the in-memory store, driven by a Clock.
Every Deferred of the in-memory layer has fired by the time a call returns,
so tests read results with L{result} and L{failure} instead of a reactor.
"""

from __future__ import annotations

from typing import Any, TypeVar

import attrs
import pytest
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.python.failure import Failure

from gateway.service.build import Services, build_services
from gateway.service.passwords import PasswordHasher
from gateway.store.memory import MemoryStore
from gateway.store.unit import UnitOfWork

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


@attrs.define
class RecordingStore(MemoryStore):
    """A MemoryStore that records every unit committed (single writes too)."""

    units: list[UnitOfWork] = attrs.field(factory=list)

    def commit(self, unit: UnitOfWork) -> "Deferred[list[Any]]":
        self.units.append(unit)
        return super().commit(unit)

    def kinds(self) -> list[list[str]]:
        """The operation class names of each unit, in commit order."""
        return [[type(op).__name__ for op in unit.operations] for unit in self.units]


@pytest.fixture
def recording() -> RecordingStore:
    return RecordingStore()


@pytest.fixture
def recorded(recording: RecordingStore, clock: Clock) -> Services:
    """The service layer over L{recording}."""
    return result(build_services(recording, clock, FAST_HASHER))
