# -*- test-case-name: tests.service.test_activity -*-
"""
Device activity: "seen" (an authenticated request, the ACK of a confirmable
notification) and "unreachable" (a confirmable notification timed out),
published by the dialects through L{gateway.service.devices.DeviceServices}
and heard by whoever decides when a device can be reached.

Events are stamped with the injected clock and delivered synchronously, in
subscription order; they are not stored.
"""

from __future__ import annotations

import attrs
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from zope.interface import implementer

from gateway.service.interfaces import (
    ActivityEvent,
    ActivityListener,
    DeviceSeen,
    DeviceUnreachable,
    IDeviceActivity,
    SeenVia,
    UnreachableReason,
    Unsubscribe,
)

__all__ = ["DeviceActivity"]

log = Logger()


@implementer(IDeviceActivity)
@attrs.define
class DeviceActivity:
    _clock: IReactorTime
    _listeners: list[ActivityListener] = attrs.field(factory=list)

    def seen(self, device_id: str, via: SeenVia) -> None:
        if self._listeners:  # every uplink comes here: no event nobody hears
            self._publish(DeviceSeen(device_id, self._clock.seconds(), via))

    def unreachable(self, device_id: str, reason: UnreachableReason) -> None:
        self._publish(DeviceUnreachable(device_id, self._clock.seconds(), reason))

    def subscribe(self, listener: ActivityListener) -> Unsubscribe:
        self._listeners.append(listener)
        done = False

        def unsubscribe() -> None:
            nonlocal done
            if not done:
                done = True
                self._listeners.remove(listener)

        return unsubscribe

    def _publish(self, event: ActivityEvent) -> None:
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:
                log.failure("activity listener failed on {event!r}", event=event)
