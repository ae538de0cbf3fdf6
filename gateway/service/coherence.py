# -*- test-case-name: tests.service.test_coherence -*-
"""
Keeping one node's memory in step with what every node sharing the store
commits (L{gateway.store.interfaces.IChangeFeed}):

 - a device, its settings or credentials changed: the credential cache
   holds what the store has of it now, so a token revoked anywhere is
   refused here (the scheduler's resolved power settings follow, as they
   are keyed by the cached records);
 - a profile changed: likewise;
 - shared attributes set or deleted, an RPC queued or changed through
   another node: the subscribers and the RPC queue here hear of it, so a
   device observing here gets them (this node's own changes were delivered
   when they were made);
 - a device heard by another node: the scheduler counts its windows from
   then;
 - RESYNC: everything is read again.

Reads of one device's changes are queued on the store in the order the
changes arrive, so the last read holds the last state.
"""

from __future__ import annotations

from typing import Optional

import attrs
from twisted.internet.defer import Deferred, succeed
from twisted.logger import Logger

from gateway.service.attributes import AttributeService
from gateway.service.credentials import CredentialCache
from gateway.service.heard import HeardRecorder
from gateway.service.rpc import RpcService
from gateway.service.scheduler import PowerScheduler
from gateway.store.changes import Change, ChangeKind
from gateway.store.interfaces import IStore

__all__ = ["Coherence"]

log = Logger()


@attrs.define
class Coherence:
    """Subscribe L{changed} to the store's change feed."""

    _store: IStore
    _cache: CredentialCache
    _scheduler: PowerScheduler
    _attributes: AttributeService
    _rpc: RpcService
    _heard: Optional[HeardRecorder] = None

    def changed(self, change: Change) -> None:
        """A L{gateway.store.changes.ChangeListener}."""
        d = self._follow(change)
        if d is None:
            return
        if not change.local:
            d.addCallback(lambda _: log.debug(
                "followed the {kind} change of {key!r} made on another node",
                kind=change.kind.value, key=change.key,
            ))
        d.addErrback(
            lambda f: log.failure("could not follow the change {change!r}", f, change=change)
        )

    def _follow(self, change: Change) -> "Optional[Deferred[None]]":
        """Apply C{change} here; C{None} when there is nothing to do."""
        match change.kind:
            case ChangeKind.DEVICE:
                return Deferred.fromCoroutine(self._device(change.key))
            case ChangeKind.PROFILE:
                return Deferred.fromCoroutine(self._profile(change.key))
            case ChangeKind.RESYNC:
                return Deferred.fromCoroutine(self._resync())
            case _ if change.local:
                return None
            case ChangeKind.SHARED:
                return self._attributes.shared_elsewhere(change.key, change.ts)
            case ChangeKind.UNSHARED:
                self._attributes.unshared_elsewhere(change.key, change.keys)
            case ChangeKind.RPC:
                return self._rpc.changed_elsewhere(change.key, change.rpc_id)
            case ChangeKind.HEARD:
                self._scheduler.heard_elsewhere(change.key, change.ts / 1000)
        return succeed(None)

    async def _device(self, device_id: str) -> None:
        device = await self._store.get_device(device_id)
        credentials = [] if device is None else await self._store.get_credentials(device_id)
        self._cache.replace_device(device_id, device, credentials)
        if device is None:
            self._scheduler.forget(device_id)

    async def _profile(self, name: str) -> None:
        profile = await self._store.get_profile(name)
        if profile is None:
            self._cache.remove_profile(name)
        else:
            self._cache.put_profile(profile)

    async def _resync(self) -> None:
        log.info("reading every device, credential and profile again")
        await self._cache.reload(self._store)
        await self._rpc.resync()
        if self._heard is not None:
            await self._heard.restore()
