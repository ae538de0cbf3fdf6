# -*- test-case-name: tests.service.test_attributes -*-
"""
Device attributes (client, shared, server scopes) and the push of
shared-attribute changes to subscribers (a dialect's Observe on
C{/attributes}, the power-saving scheduler).

Writes are bounded by L{ServiceLimits}: keys per request, and what one
scope of a device may hold (keys, bytes of JSON).  A device's writes of one
scope are checked and committed one at a time, so concurrent writes cannot
together pass a bound that each of them alone respects.

Subscribers hear of a change only after it is durable, with
C{{"k": v, ...}} for updates or C{{"deleted": ["k", ...]}} for deletions
(ThingsBoard's notification shapes).  A failing subscriber is logged and does
not affect the others or the caller.
"""

from __future__ import annotations

from typing import Mapping, Optional, Sequence

import attrs
from twisted.internet.defer import Deferred, DeferredLock
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from zope.interface import implementer

from gateway.domain.errors import InvalidArgument, NotFound
from gateway.domain.model import Attribute, AttributeScope, Device, JSONValue
from gateway.service.credentials import CredentialCache
from gateway.service.interfaces import (
    AttributeCallback,
    IAttributeService,
    Unsubscribe,
)
from gateway.service.limits import ServiceLimits
from gateway.service.uplinks import RetryAfter, commit_uplink, fixed_retry_after
from gateway.store.interfaces import IStore
from gateway.store.unit import SetAttributes, UnitOfWork
from gateway.store.values import encode_json
from gateway.upstream.events import EventFactory, UplinkKind, json_object

__all__ = ["AttributeService", "now_ms"]

log = Logger()


def now_ms(clock: IReactorTime) -> int:
    """The clock's time in integer milliseconds."""
    return int(clock.seconds() * 1000)


def _check_keys(keys: Sequence[str]) -> None:
    for k in keys:
        if not isinstance(k, str) or not k:
            raise InvalidArgument("attribute keys must be non-empty strings")


@implementer(IAttributeService)
@attrs.define
class AttributeService:
    _store: IStore
    _cache: CredentialCache
    _clock: IReactorTime
    _events: EventFactory
    _retry_after: RetryAfter = fixed_retry_after
    _limits: ServiceLimits = attrs.field(factory=ServiceLimits)
    _subscribers: dict[str, list[AttributeCallback]] = attrs.field(factory=dict)
    #: The lock of each (device, scope) being written.
    _writing: dict[tuple[str, AttributeScope], DeferredLock] = attrs.field(factory=dict)

    def _require(self, device_id: str) -> Device:
        device = self._cache.device(device_id)
        if device is None:
            raise NotFound(f"no device {device_id!r}")
        return device

    def _notify(self, device_id: str, message: dict[str, JSONValue]) -> None:
        for callback in list(self._subscribers.get(device_id, ())):
            try:
                callback(dict(message))
            except Exception:
                log.failure(
                    "attribute subscriber of {device_id} failed",
                    device_id=device_id,
                )

    def get_attributes(
        self,
        device_id: str,
        scope: AttributeScope,
        keys: Optional[Sequence[str]] = None,
    ) -> "Deferred[list[Attribute]]":
        async def run() -> list[Attribute]:
            self._require(device_id)
            return await self._store.get_attributes(device_id, scope, keys)

        return Deferred.fromCoroutine(run())

    def set_attributes(
        self,
        device_id: str,
        scope: AttributeScope,
        values: Mapping[str, JSONValue],
        dialect: Optional[str] = None,
    ) -> "Deferred[None]":
        async def run() -> None:
            device = self._require(device_id)
            _check_keys(list(values))
            if not values:
                return
            self._limits.check_keys(len(values))
            snapshot = dict(values)
            key = (device_id, scope)
            lock = self._writing.setdefault(key, DeferredLock())
            await lock.acquire()
            try:
                await self._check_room(device_id, scope, snapshot)
                now = now_ms(self._clock)
                if dialect is None:
                    await self._store.set_attributes(device_id, scope, snapshot, now)
                else:
                    write = SetAttributes(device_id, scope, snapshot, now)
                    data = json_object(write.values)
                    event = self._events.event(UplinkKind.ATTRIBUTES, device, dialect, now, data)
                    await commit_uplink(
                        self._store, UnitOfWork((write, event)), self._retry_after
                    )
            finally:
                # Releasing may run the next writer, which may drop the lock.
                lock.release()
                if not lock.locked and self._writing.get(key) is lock:
                    del self._writing[key]
            if scope is AttributeScope.SHARED:
                self._notify(device_id, snapshot)

        return Deferred.fromCoroutine(run())

    async def _check_room(
        self, device_id: str, scope: AttributeScope, values: Mapping[str, JSONValue]
    ) -> None:
        merged = {a.key: a.value for a in await self._store.get_attributes(device_id, scope)}
        merged.update(values)
        size = sum(len(k.encode("utf-8")) + len(encode_json(v)) for k, v in merged.items())
        self._limits.check_attributes(scope.value, len(merged), size)

    def delete_attributes(
        self, device_id: str, scope: AttributeScope, keys: Sequence[str]
    ) -> "Deferred[list[str]]":
        async def run() -> list[str]:
            self._require(device_id)
            _check_keys(keys)
            gone = await self._store.delete_attributes(device_id, scope, keys)
            if gone and scope is AttributeScope.SHARED:
                self._notify(device_id, {"deleted": list(gone)})
            return gone

        return Deferred.fromCoroutine(run())

    # -- changes made through other nodes ----------------------------------

    def shared_elsewhere(self, device_id: str, ts: int) -> "Deferred[None]":
        """
        Another node set shared attributes of the device, stamped C{ts}:
        its subscribers here hear those still stamped so (a key written
        again since is heard with that later write).
        """

        async def run() -> None:
            if not self._subscribers.get(device_id):
                return
            found = await self._store.get_attributes(device_id, AttributeScope.SHARED)
            message: dict[str, JSONValue] = {
                a.key: a.value for a in found if a.last_update_ts == ts
            }
            if message:
                self._notify(device_id, message)

        return Deferred.fromCoroutine(run())

    def unshared_elsewhere(self, device_id: str, keys: Sequence[str]) -> None:
        """Another node deleted shared attributes of the device."""
        if keys:
            self._notify(device_id, {"deleted": list(keys)})

    def subscribe(self, device_id: str, callback: AttributeCallback) -> Unsubscribe:
        callbacks = self._subscribers.setdefault(device_id, [])
        callbacks.append(callback)
        done = False

        def unsubscribe() -> None:
            nonlocal done
            if done:
                return
            done = True
            callbacks.remove(callback)
            if not callbacks and self._subscribers.get(device_id) is callbacks:
                del self._subscribers[device_id]

        return unsubscribe

    def subscriber_count(self, device_id: str) -> int:
        """How many subscribers a device has (for tests and metrics)."""
        return len(self._subscribers.get(device_id, ()))
