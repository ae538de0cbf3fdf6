# -*- test-case-name: tests.coap.test_deadlines -*-
"""
Short waits that are usually called off, on one reactor timer.

Every request whose handler answers later starts a wait for its empty ACK,
and nearly every such wait is cancelled a few milliseconds later by the
answer.  A reactor C{callLater} and C{cancel} per request cost more than
the rest of the request's bookkeeping, so the waits live in one heap here:
adding is a push, cancelling only marks the entry, and one timer, set for
the earliest entry, runs what is due and drops what was cancelled.
"""

from __future__ import annotations

import heapq
import itertools
from typing import Any, Callable, Optional

from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger

__all__ = ["Deadline", "Deadlines"]

log = Logger()


class Deadline:
    """One wait: L{cancel} it and its call never runs."""

    __slots__ = ("due", "order", "call", "arg")

    def __init__(self, due: float, order: int, call: Callable[[Any], object], arg: Any) -> None:
        self.due = due
        self.order = order
        self.call: Optional[Callable[[Any], object]] = call
        self.arg = arg

    def __lt__(self, other: "Deadline") -> bool:
        return (self.due, self.order) < (other.due, other.order)

    def cancel(self) -> None:
        self.call = None
        self.arg = None

    def run_now(self) -> None:
        """Run the call at once instead of when due (if not cancelled)."""
        call, arg = self.call, self.arg
        if call is not None:
            self.cancel()
            call(arg)


class Deadlines:
    """Calls C{call(arg)} after C{delay} seconds (L{add}) unless cancelled."""

    def __init__(self, clock: IReactorTime) -> None:
        self._clock = clock
        self._heap: list[Deadline] = []
        self._order = itertools.count()
        self._timer: Optional[IDelayedCall] = None
        self._timer_due = 0.0

    def __len__(self) -> int:
        """The waits not yet run or dropped (cancelled ones included until due)."""
        return len(self._heap)

    def add(self, delay: float, call: Callable[[Any], object], arg: Any) -> Deadline:
        deadline = Deadline(self._clock.seconds() + delay, next(self._order), call, arg)
        heapq.heappush(self._heap, deadline)
        if self._timer is None or deadline.due < self._timer_due:
            self._arm()
        return deadline

    def clear(self) -> None:
        """Drop every wait and the timer (the transport is closing)."""
        self._heap.clear()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _arm(self) -> None:
        # Drop what was cancelled at the front: it never needs the timer.
        heap = self._heap
        while heap and heap[0].call is None:
            heapq.heappop(heap)
        if not heap:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            return
        due = heap[0].due
        delay = max(due - self._clock.seconds(), 0.0)
        if self._timer is None:
            self._timer = self._clock.callLater(delay, self._fire)
        else:
            self._timer.reset(delay)
        self._timer_due = due

    def _fire(self) -> None:
        self._timer = None
        heap = self._heap
        now = self._clock.seconds()
        while heap and heap[0].due <= now:
            deadline = heapq.heappop(heap)
            call, arg = deadline.call, deadline.arg
            if call is not None:
                deadline.cancel()
                try:
                    call(arg)
                except Exception:
                    # As a reactor timer would: log it, and the others still run.
                    log.failure("Unexpected error in a deadline's call")
        self._arm()
