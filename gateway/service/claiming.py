# -*- test-case-name: tests.service.test_claiming -*-
"""
Device claiming (ThingsBoard C{/claim}): a device records a secret and a
duration; until it expires, an operator (through the API) may claim the
device by presenting the same secret.  A claim can be used once.
C{durationMs} 0 means the server's default duration.  A claim request is
an uplink: its CloudEvent (C{data} C{{"expiresAt": ms}}, never the secret)
is committed with it.
"""

from __future__ import annotations

import hmac
from typing import Optional

import attrs
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from zope.interface import implementer

from gateway.domain.errors import InvalidArgument, NotFound
from gateway.domain.model import Claim, Device
from gateway.service.attributes import now_ms
from gateway.service.credentials import CredentialCache
from gateway.service.interfaces import IClaimingService
from gateway.service.uplinks import RetryAfter, commit_uplink, fixed_retry_after
from gateway.store.interfaces import IStore
from gateway.store.unit import PutClaim, UnitOfWork
from gateway.upstream.events import EventFactory, UplinkKind

__all__ = ["ClaimingService", "DEFAULT_CLAIM_DURATION_MS"]

#: ThingsBoard's C{security.claim.duration} default: one day.
DEFAULT_CLAIM_DURATION_MS = 86_400_000


@implementer(IClaimingService)
@attrs.define
class ClaimingService:
    _store: IStore
    _cache: CredentialCache
    _clock: IReactorTime
    _events: EventFactory
    _retry_after: RetryAfter = fixed_retry_after
    default_duration_ms: int = DEFAULT_CLAIM_DURATION_MS

    def _require(self, device_id: str) -> Device:
        device = self._cache.device(device_id)
        if device is None:
            raise NotFound(f"no device {device_id!r}")
        return device

    def request_claim(
        self, device_id: str, secret_key: str = "", duration_ms: int = 0, dialect: str = "api"
    ) -> "Deferred[Claim]":
        async def run() -> Claim:
            device = self._require(device_id)
            if not isinstance(secret_key, str):
                raise InvalidArgument("secretKey must be a string")
            if (
                isinstance(duration_ms, bool)
                or not isinstance(duration_ms, int)
                or duration_ms < 0
            ):
                raise InvalidArgument("durationMs must be a non-negative integer")
            now = now_ms(self._clock)
            claim = Claim(
                device_id,
                secret_key,
                now + (duration_ms or self.default_duration_ms),
                now,
            )
            # The secret stays here: upstream hears only that a claim is open.
            event = self._events.event(
                UplinkKind.CLAIM, device, dialect, now, '{"expiresAt":%d}' % claim.expires_at
            )
            unit = UnitOfWork((PutClaim(claim), event))
            await commit_uplink(self._store, unit, self._retry_after)
            return claim

        return Deferred.fromCoroutine(run())

    def get_claim(self, device_id: str) -> "Deferred[Optional[Claim]]":
        async def run() -> Optional[Claim]:
            self._require(device_id)
            claim = await self._store.get_claim(device_id)
            if claim is None or claim.expires_at <= now_ms(self._clock):
                return None
            return claim

        return Deferred.fromCoroutine(run())

    def claim(self, device_id: str, secret_key: str) -> "Deferred[bool]":
        async def run() -> bool:
            claim = await self.get_claim(device_id)
            if claim is None or not hmac.compare_digest(
                claim.secret_key.encode("utf-8"), secret_key.encode("utf-8")
            ):
                return False
            await self._store.delete_claim(device_id)
            return True

        return Deferred.fromCoroutine(run())
