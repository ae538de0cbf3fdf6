# -*- test-case-name: tests.upstream.test_retention -*-
"""
L{Retention}: the events kept locally are pruned by age and count, oldest
first, so an outbox nobody drains stays bounded.
"""

from __future__ import annotations

from typing import Any, Optional

from twisted.application.service import Service
from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from gateway.store.interfaces import IOutbox

__all__ = ["Retention"]

log = Logger()


class Retention(Service):
    """
    Every C{interval} seconds, prune events received more than C{retention}
    seconds ago and the oldest beyond C{keep}.
    """

    def __init__(
        self,
        outbox: IOutbox,
        clock: IReactorTime,
        retention: float,
        keep: int,
        interval: float = 10.0,
    ) -> None:
        self._outbox = outbox
        self._clock = clock
        self._retention = retention
        self._keep = keep
        self._interval = interval
        self._loop: Optional[LoopingCall] = None
        self._running: Optional[Deferred[None]] = None

    def report(self) -> dict[str, Any]:
        """Nothing forwards: events stay here (C{GET /api/v1/upstream})."""
        return {"forwarding": False, "url": None, "mode": None}

    def startService(self) -> None:
        super().startService()
        self._loop = LoopingCall(self._prune)
        self._loop.clock = self._clock
        self._loop.start(self._interval, now=True)

    def _prune(self) -> "Deferred[None]":
        cutoff = int((self._clock.seconds() - self._retention) * 1000)
        d = self._outbox.prune(cutoff, self._keep)

        def pruned(count: int) -> None:
            if count:
                log.info("pruned {count} events kept locally", count=count)

        def failed(failure: Any) -> None:
            # Logged, and tried again at the next interval.
            log.failure("pruning the outbox failed", failure)

        running = d.addCallbacks(pruned, failed)
        self._running = running

        def done(result: None) -> None:
            self._running = None

        running.addBoth(done)
        return running

    def stopService(self) -> "Deferred[None]":
        super().stopService()
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        self._loop = None
        # The store closes after this: let a prune in flight finish first.
        running, self._running = self._running, None
        if running is None:
            return succeed(None)
        out: Deferred[None] = Deferred()
        running.addBoth(lambda _: out.callback(None))
        return out
