# -*- test-case-name: tests.service.test_uplink_events -*-
"""
Committing a device's uplink with its event: a full outbox is reported with
the time the upstream side expects to have room again (the Max-Age a
refused device gets).
"""

from __future__ import annotations

from typing import Any, Callable

from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

from gateway.domain.errors import Unavailable
from gateway.store.interfaces import IStore
from gateway.store.unit import UnitOfWork

__all__ = ["RetryAfter", "commit_uplink", "fixed_retry_after"]

#: Seconds until the outbox is expected to have room.
RetryAfter = Callable[[], int]


def fixed_retry_after() -> int:
    """Nothing better known: the default of L{Unavailable}."""
    return 30


def commit_uplink(store: IStore, unit: UnitOfWork, retry_after: RetryAfter) -> "Deferred[Any]":
    """C{store.commit(unit)}, a full outbox's L{Unavailable} carrying C{retry_after()}."""

    # A plain callback chain: this runs for every uplink, a coroutine costs more.
    def full(failure: Failure) -> Failure:
        e = failure.value
        if isinstance(e, Unavailable):
            return Failure(Unavailable(e.message, retry_after()))
        return failure

    return store.commit(unit).addErrback(full)
