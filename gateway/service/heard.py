# -*- test-case-name: tests.service.test_heard -*-
"""
When power-saving devices were last heard, shared by the nodes of one
store (L{gateway.store.interfaces.IHeardLog}), so every node knows their
windows: this node's sightings are recorded at most once per C{delay}
seconds for all devices together (the latest time of each), and the
scheduler starts from the recorded times.  An always-reachable device is
not recorded: it has no windows.
"""

from __future__ import annotations

from typing import Optional

import attrs
from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger

from gateway.service.interfaces import ActivityEvent, DeviceSeen
from gateway.service.scheduler import PowerScheduler
from gateway.store.interfaces import IHeardLog

__all__ = ["HeardRecorder"]

log = Logger()


@attrs.define
class HeardRecorder:
    """Subscribe L{activity} to the device activity."""

    _log: IHeardLog
    _scheduler: PowerScheduler
    _clock: IReactorTime
    delay: float = 1.0
    _pending: dict[str, int] = attrs.field(factory=dict)
    _flush: Optional[IDelayedCall] = None

    def restore(self) -> "Deferred[None]":
        """Give the scheduler every recorded time (at start, after a RESYNC)."""

        async def run() -> None:
            for device_id, at in (await self._log.last_heard()).items():
                self._scheduler.heard_elsewhere(device_id, at / 1000)

        return Deferred.fromCoroutine(run())

    def activity(self, event: ActivityEvent) -> None:
        """An L{gateway.service.interfaces.ActivityListener}."""
        if not isinstance(event, DeviceSeen):
            return
        settings = self._scheduler.settings(event.device_id)
        if settings is None or settings.always_reachable:
            return
        self._pending[event.device_id] = int(event.at * 1000)
        if self._flush is None:
            self._flush = self._clock.callLater(self.delay, self._record)

    def _record(self) -> None:
        self._flush = None
        heard, self._pending = self._pending, {}
        self._log.record_heard(heard).addErrback(
            lambda f: log.failure("could not record when {count} devices were heard", f,
                                  count=len(heard))
        )

    def stop(self) -> "Deferred[None]":
        """Record what is pending now (the gateway stops)."""
        if self._flush is not None:
            self._flush.cancel()
            self._flush = None
        heard, self._pending = self._pending, {}
        return self._log.record_heard(heard) if heard else succeed(None)
