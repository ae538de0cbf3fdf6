# -*- test-case-name: tests.dtls.test_ratelimit -*-
"""
L{HandshakeBudget}: handshakes per source host, a token bucket on the
injected clock.  Each host starts with C{budget} handshakes and earns them
all back in C{refill} seconds; memory is bounded by C{max_sources}, the host
seen longest ago forgotten first.  Only cookie-verified ClientHellos are
charged, so a spoofed address cannot spend a real device's budget.
"""

from __future__ import annotations

from collections import OrderedDict

from twisted.internet.interfaces import IReactorTime

__all__ = ["HandshakeBudget"]


class HandshakeBudget:
    def __init__(
        self, clock: IReactorTime, budget: int, refill: float, max_sources: int
    ) -> None:
        self._clock = clock
        self._budget = float(budget)
        self._rate = budget / refill
        self._max_sources = max_sources
        self._hosts: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._hosts)

    def take(self, host: str) -> bool:
        """Spend one handshake of C{host}; C{False} if it has none left."""
        now = self._clock.seconds()
        tokens, at = self._hosts.pop(host, (self._budget, now))
        tokens = min(self._budget, tokens + (now - at) * self._rate)
        allowed = tokens >= 1
        if allowed:
            tokens -= 1
        if len(self._hosts) >= self._max_sources:
            self._hosts.popitem(last=False)
        self._hosts[host] = (tokens, now)
        return allowed
