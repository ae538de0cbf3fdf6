# -*- test-case-name: tests.service.test_telemetry -*-
"""
Telemetry uplinks: records of (ts ms or None, {key: value}); a missing ts
is taken from the injected clock, and one batch holds at most
C{max_keys_per_request} data points (L{ServiceLimits}).  The latest value
per key is kept in the store, and each uplink becomes one CloudEvent in the
durable outbox, in the same unit of work: the caller hears of success only
once both are durable.  The event's time is the device's first ts when it
sent one.
"""

from __future__ import annotations

from typing import Mapping, Optional, Sequence

import attrs
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.interfaces import IReactorTime
from zope.interface import implementer

from gateway.domain.errors import InvalidArgument, NotFound
from gateway.domain.model import JSONValue, TelemetryPoint, TelemetryRecord
from gateway.service.attributes import now_ms
from gateway.service.credentials import CredentialCache
from gateway.service.interfaces import ITelemetryService
from gateway.service.limits import ServiceLimits
from gateway.service.uplinks import RetryAfter, commit_uplink, fixed_retry_after
from gateway.store.interfaces import IStore
from gateway.store.unit import AppendTelemetry, UnitOfWork
from gateway.upstream.events import EventFactory

__all__ = ["TelemetryService"]


def _normalise(
    records: Sequence[TelemetryRecord], now: int
) -> tuple[list[tuple[int, Mapping[str, JSONValue]]], Optional[int]]:
    """The records with every ts filled in, and the device's own first ts."""
    out: list[tuple[int, Mapping[str, JSONValue]]] = []
    device_ms: Optional[int] = None
    for record in records:
        try:
            ts, values = record
        except (TypeError, ValueError):
            raise InvalidArgument("a telemetry record is (ts, {key: value})") from None
        sent = ts is not None
        if ts is None:
            ts = now
        elif isinstance(ts, bool) or not isinstance(ts, int) or ts < 0:
            raise InvalidArgument("telemetry ts must be non-negative integer ms")
        if not isinstance(values, Mapping):
            raise InvalidArgument("telemetry values must be an object")
        for k in values:
            if not isinstance(k, str) or not k:
                raise InvalidArgument("telemetry keys must be non-empty strings")
        if values:
            if not out and sent:
                device_ms = ts
            out.append((ts, dict(values)))
    return out, device_ms


@implementer(ITelemetryService)
@attrs.define
class TelemetryService:
    _store: IStore
    _cache: CredentialCache
    _clock: IReactorTime
    _events: EventFactory
    _retry_after: RetryAfter = fixed_retry_after
    _limits: ServiceLimits = attrs.field(factory=ServiceLimits)

    def record(
        self, device_id: str, records: Sequence[TelemetryRecord], dialect: str = "api"
    ) -> "Deferred[None]":
        # Plain calls, no coroutine: this is every telemetry uplink's path.
        try:
            device = self._cache.device(device_id)
            if device is None:
                raise NotFound(f"no device {device_id!r}")
            now = now_ms(self._clock)
            batch, device_ms = _normalise(records, now)
            self._limits.check_keys(sum(len(values) for _, values in batch), "data points")
            if not batch:
                return succeed(None)
            write = AppendTelemetry(device_id, batch)
            event = self._events.telemetry(device, dialect, now, write, device_ms)
        except Exception:
            return fail()
        d = commit_uplink(self._store, UnitOfWork((write, event)), self._retry_after)
        return d.addCallback(lambda _: None)

    def latest(
        self, device_id: str, keys: Optional[Sequence[str]] = None
    ) -> "Deferred[list[TelemetryPoint]]":
        async def run() -> list[TelemetryPoint]:
            if self._cache.device(device_id) is None:
                raise NotFound(f"no device {device_id!r}")
            return await self._store.get_latest_telemetry(device_id, keys)

        return Deferred.fromCoroutine(run())
