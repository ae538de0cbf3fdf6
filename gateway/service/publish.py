# -*- test-case-name: tests.service.test_publish -*-
"""
Messages a device publishes on a channel of its own naming (Drogue's
C{/v1/{channel}}): no telemetry keys are kept, the message only becomes
one event in the durable outbox, and the caller hears of success once it
is durable (a full outbox is L{Unavailable} with the time to come back).
"""

from __future__ import annotations

import attrs
from twisted.internet.defer import Deferred, fail
from twisted.internet.interfaces import IReactorTime

from gateway.domain.errors import NotFound
from gateway.service.attributes import now_ms
from gateway.service.credentials import CredentialCache
from gateway.service.interfaces import Publication
from gateway.service.uplinks import RetryAfter, commit_uplink, fixed_retry_after
from gateway.store.interfaces import IStore
from gateway.store.unit import UnitOfWork
from gateway.upstream.events import EventFactory

__all__ = ["PublishService"]


@attrs.define
class PublishService:
    _store: IStore
    _cache: CredentialCache
    _clock: IReactorTime
    _events: EventFactory
    _retry_after: RetryAfter = fixed_retry_after

    def publish(
        self, device_id: str, publication: Publication, dialect: str = "api"
    ) -> "Deferred[None]":
        """Commit the publication's event; L{NotFound} for an unknown device."""
        device = self._cache.device(device_id)
        if device is None:
            return fail(NotFound(f"no device {device_id!r}"))
        event = self._events.publish_event(
            device, dialect, now_ms(self._clock), publication.payload,
            publication.content_type, publication.channel, publication.extensions,
        )
        d = commit_uplink(self._store, UnitOfWork.of(event), self._retry_after)
        return d.addCallback(lambda _: None)
