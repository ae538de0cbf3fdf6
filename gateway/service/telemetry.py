# -*- test-case-name: tests.service.test_telemetry -*-
"""
Telemetry uplinks: records of (ts ms or None, {key: value}); a missing ts
is taken from the injected clock, and one batch holds at most
C{max_keys_per_request} data points (L{ServiceLimits}).  The latest value
per key is kept in the store.  (The durable outbox entry for each uplink will be written in the
same group commit once L{gateway.store.interfaces.IOutbox} exists.)
"""

from __future__ import annotations

from typing import Mapping, Optional, Sequence

import attrs
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from zope.interface import implementer

from gateway.domain.errors import InvalidArgument, NotFound
from gateway.domain.model import JSONValue, TelemetryPoint, TelemetryRecord
from gateway.service.attributes import now_ms
from gateway.service.credentials import CredentialCache
from gateway.service.interfaces import ITelemetryService
from gateway.service.limits import ServiceLimits
from gateway.store.interfaces import IStore

__all__ = ["TelemetryService"]


def _normalise(
    records: Sequence[TelemetryRecord], now: int
) -> list[tuple[int, Mapping[str, JSONValue]]]:
    out: list[tuple[int, Mapping[str, JSONValue]]] = []
    for record in records:
        try:
            ts, values = record
        except (TypeError, ValueError):
            raise InvalidArgument("a telemetry record is (ts, {key: value})") from None
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
            out.append((ts, dict(values)))
    return out


@implementer(ITelemetryService)
@attrs.define
class TelemetryService:
    _store: IStore
    _cache: CredentialCache
    _clock: IReactorTime
    _limits: ServiceLimits = attrs.field(factory=ServiceLimits)

    def record(
        self, device_id: str, records: Sequence[TelemetryRecord]
    ) -> "Deferred[None]":
        async def run() -> None:
            if self._cache.device(device_id) is None:
                raise NotFound(f"no device {device_id!r}")
            batch = _normalise(records, now_ms(self._clock))
            self._limits.check_keys(sum(len(values) for _, values in batch), "data points")
            if batch:
                await self._store.append_telemetry(device_id, batch)

        return Deferred.fromCoroutine(run())

    def latest(
        self, device_id: str, keys: Optional[Sequence[str]] = None
    ) -> "Deferred[list[TelemetryPoint]]":
        async def run() -> list[TelemetryPoint]:
            if self._cache.device(device_id) is None:
                raise NotFound(f"no device {device_id!r}")
            return await self._store.get_latest_telemetry(device_id, keys)

        return Deferred.fromCoroutine(run())
