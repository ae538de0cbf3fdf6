# -*- test-case-name: tests.service.test_guard -*-
"""
L{CredentialGuard}: wrong credentials counted and rate-limited per source
address, as ThingsBoard's transport does with C{max_wrong_credentials_per_ip}
and C{ip_block_timeout}, but as a token bucket on the injected clock.

Each source starts with C{budget} tokens; each failed authentication takes
one, and the whole budget is earned back in C{refill} seconds.  A source
with less than one token is throttled: every authentication it asks for is
refused (a right guess too, so throttling slows guessing) until it has one
again.  Only the failing address is throttled: a device at another address
never waits for anybody's failures.  Devices behind one NAT address share a
budget; a site with such a fleet raises it (or sets 0: no limit, counted
still).

Memory is bounded: at most C{max_sources} addresses are remembered, the one
that failed longest ago forgotten first.  A source is logged once each time
it becomes throttled, never per request.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from typing import Optional

import attrs
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from zope.interface import implementer

from gateway.service.interfaces import ICredentialGuard, SourceStatus

__all__ = ["CredentialGuard"]

log = Logger()


@attrs.define
class _Bucket:
    tokens: float
    at: float
    wrong: int = 0
    throttled: int = 0


@implementer(ICredentialGuard)
@attrs.define
class CredentialGuard:
    """
    @ivar wrong_total: failed authentications counted since start.
    @ivar throttled_total: requests refused because their source was throttled.
    """

    _clock: IReactorTime
    _budget: int = 10
    _refill: float = 60.0
    _max_sources: int = 10_000
    _sources: "OrderedDict[str, _Bucket]" = attrs.field(factory=OrderedDict)
    wrong_total: int = 0
    throttled_total: int = 0

    def _fill(self, bucket: _Bucket) -> None:
        now = self._clock.seconds()
        earned = (now - bucket.at) * self._budget / self._refill
        bucket.tokens = min(float(self._budget), bucket.tokens + earned)
        bucket.at = now

    def _wait(self, bucket: _Bucket) -> Optional[int]:
        if not self._budget or bucket.tokens >= 1:
            return None
        return max(1, math.ceil((1 - bucket.tokens) * self._refill / self._budget))

    def throttled(self, source: str) -> Optional[int]:
        bucket = self._sources.get(source)
        if bucket is None:
            return None
        self._fill(bucket)
        wait = self._wait(bucket)
        if wait is not None:
            bucket.throttled += 1
            self.throttled_total += 1
        return wait

    def failed(self, source: str) -> None:
        self.wrong_total += 1
        bucket = self._sources.pop(source, None)
        if bucket is None:
            if len(self._sources) >= self._max_sources:
                self._sources.popitem(last=False)
            bucket = _Bucket(float(self._budget), self._clock.seconds())
        else:
            self._fill(bucket)
        self._sources[source] = bucket
        bucket.wrong += 1
        if not self._budget:
            return
        was_open = bucket.tokens >= 1
        bucket.tokens = max(0.0, bucket.tokens - 1)
        if was_open and bucket.tokens < 1:
            log.info(
                "Source {source} throttled for {seconds} s after {wrong} wrong credentials",
                source=source,
                seconds=self._wait(bucket),
                wrong=bucket.wrong,
            )

    def sources(self) -> list[SourceStatus]:
        out = []
        for source, bucket in self._sources.items():
            self._fill(bucket)
            out.append(SourceStatus(source, bucket.wrong, bucket.throttled, self._wait(bucket)))
        return out
