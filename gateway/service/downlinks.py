# -*- test-case-name: tests.service.test_downlinks -*-
"""
Shared-attribute updates held while a device sleeps.

A dialect's subscription to a device's shared attributes goes through
L{HeldAttributes}: while the power-saving scheduler says the device is
awake, each change passes at once; while it sleeps, changes are merged
(L{AttributeMerge}: the later value of a key wins, a deletion is kept and
cancelled by a later set) and the merge goes out as one notification when
the device wakes: C{{"k": v, ..., "deleted": ["x", ...]}}, the shape of
ThingsBoard's C{AttributeUpdateNotificationMsg} as JSON.  (ThingsBoard
drops the deletions it merged; here they are kept.)
"""

from __future__ import annotations

from typing import Optional

import attrs

from gateway.domain.model import JSONValue
from gateway.service.interfaces import AttributeCallback, IAttributeService, Unsubscribe
from gateway.service.scheduler import PowerScheduler

__all__ = ["AttributeMerge", "HeldAttributes"]


@attrs.define
class AttributeMerge:
    """Changes of shared attributes merged into one."""

    updated: dict[str, JSONValue] = attrs.field(factory=dict)
    deleted: dict[str, None] = attrs.field(factory=dict)  # ordered set

    def add(self, change: dict[str, JSONValue]) -> None:
        """Merge one notification (C{{"k": v, ...}} or C{{"deleted": [...]}})."""
        deleted = change.get("deleted")
        if len(change) == 1 and isinstance(deleted, list):
            for key in deleted:
                self.updated.pop(key, None)
                self.deleted[key] = None
            return
        for key, value in change.items():
            self.deleted.pop(key, None)
            self.updated[key] = value

    def __bool__(self) -> bool:
        return bool(self.updated or self.deleted)

    def notification(self) -> dict[str, JSONValue]:
        """The merged changes as one notification."""
        out: dict[str, JSONValue] = dict(self.updated)
        if self.deleted:
            out["deleted"] = list(self.deleted)
        return out


@attrs.define
class _Held:
    callback: AttributeCallback
    merge: AttributeMerge = attrs.field(factory=AttributeMerge)


@attrs.define
class HeldAttributes:
    """Subscriptions to shared attributes that wait for the device to wake."""

    _attributes: IAttributeService
    _scheduler: PowerScheduler
    #: Subscriptions holding changes, by device.
    _held: dict[str, list[_Held]] = attrs.field(factory=dict)
    _unsubscribe: Optional[Unsubscribe] = None

    def start(self) -> None:
        self._unsubscribe = self._scheduler.subscribe(self._reachability)

    def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None

    def subscribe(self, device_id: str, callback: AttributeCallback) -> Unsubscribe:
        """As L{IAttributeService.subscribe}, holding changes while the device sleeps."""
        held = _Held(callback)

        def changed(change: dict[str, JSONValue]) -> None:
            if self._scheduler.awake(device_id) and not held.merge:
                callback(change)
                return
            if not held.merge:
                self._held.setdefault(device_id, []).append(held)
            held.merge.add(change)
            if self._scheduler.awake(device_id):
                self._flush(device_id)

        stop = self._attributes.subscribe(device_id, changed)

        def unsubscribe() -> None:
            stop()
            self._drop(device_id, held)

        return unsubscribe

    def _drop(self, device_id: str, held: _Held) -> None:
        waiting = self._held.get(device_id)
        if waiting is not None and held in waiting:
            waiting.remove(held)
            if not waiting:
                del self._held[device_id]

    def _reachability(self, device_id: str, awake: bool) -> None:
        if awake and device_id in self._held:
            self._flush(device_id)

    def _flush(self, device_id: str) -> None:
        for held in self._held.pop(device_id, []):
            notification = held.merge.notification()
            held.merge = AttributeMerge()
            held.callback(notification)
