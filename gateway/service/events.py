# -*- test-case-name: tests.service.test_events -*-
"""
L{EventLog}: the outbox as operators see it: events kept (or waiting) as
CloudEvents JSON, its depth and oldest age, and the dead letters.
"""

from __future__ import annotations

import json
from typing import Any, Optional, Sequence

import attrs
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime

from gateway.domain.errors import InvalidArgument
from gateway.store.interfaces import IOutbox
from gateway.store.unit import DeadLetter, OutboxEvent
from gateway.upstream.events import structured

__all__ = ["EventLog", "MAX_PAGE"]

#: The most events or dead letters one call returns.
MAX_PAGE = 1000


def _event(e: OutboxEvent) -> dict[str, Any]:
    return {"position": e.position, "event": json.loads(structured(e))}


def _dead(d: DeadLetter) -> dict[str, Any]:
    return {**_event(d.event), "status": d.status, "reason": d.reason, "failed": d.failed_ms}


def _page(after: int, limit: int) -> None:
    for name, value in (("after", after), ("limit", limit)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise InvalidArgument(f"{name} must be a non-negative integer")
    if not 1 <= limit <= MAX_PAGE:
        raise InvalidArgument(f"limit must be from 1 to {MAX_PAGE}")


@attrs.define
class EventLog:
    _outbox: IOutbox
    _clock: IReactorTime

    def events(
        self,
        device_id: Optional[str] = None,
        type: Optional[str] = None,
        after: int = 0,
        limit: int = 100,
    ) -> "Deferred[list[dict[str, Any]]]":
        """Held events (of one device, of one type) after position C{after}, oldest first."""

        async def run() -> list[dict[str, Any]]:
            _page(after, limit)
            return [_event(e) for e in await self._outbox.query(device_id, type, after, limit)]

        return Deferred.fromCoroutine(run())

    def depth(self) -> "Deferred[dict[str, Any]]":
        """C{{"depth": events held, "oldest_age": seconds since the oldest came, or None}}."""

        async def run() -> dict[str, Any]:
            size = await self._outbox.size()
            oldest = await self._outbox.peek(1)
            age = None
            if oldest:
                age = max(self._clock.seconds() - oldest[0].received_ms / 1000, 0.0)
            return {"depth": size, "oldest_age": age}

        return Deferred.fromCoroutine(run())

    def dead_letters(self, after: int = 0, limit: int = 100) -> "Deferred[list[dict[str, Any]]]":
        """Dead letters after position C{after}, oldest first, with the upstream's answer."""

        async def run() -> list[dict[str, Any]]:
            _page(after, limit)
            return [_dead(d) for d in await self._outbox.dead_letters(limit, after)]

        return Deferred.fromCoroutine(run())

    def replay(self, positions: Optional[Sequence[int]] = None) -> "Deferred[int]":
        """Send these dead letters (all if C{None}) again; how many."""
        return self._outbox.replay(positions)

    def discard(self, positions: Optional[Sequence[int]] = None) -> "Deferred[int]":
        """Delete these dead letters (all if C{None}); how many."""
        return self._outbox.discard(positions)
