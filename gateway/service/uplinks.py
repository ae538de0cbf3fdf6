# -*- test-case-name: tests.service.test_uplink_events -*-
"""
Committing a device's uplink with its event: a full outbox is reported with
the time the upstream side expects to have room again (the Max-Age a
refused device gets).
"""

from __future__ import annotations

from typing import Any, Callable

from twisted.internet.defer import Deferred

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

    async def run() -> Any:
        try:
            return await store.commit(unit)
        except Unavailable as e:
            raise Unavailable(e.message, retry_after()) from None

    return Deferred.fromCoroutine(run())
