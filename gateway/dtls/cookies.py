# -*- test-case-name: tests.dtls.test_cookies -*-
"""
Stateless cookies for the HelloVerifyRequest (RFC 6347 §4.2.1).

A cookie is HMAC-SHA256(secret, "host|port") cut to 16 bytes, so a client
proves it receives datagrams at its source address before the server keeps
anything for it.  The secret rotates every C{rotation} seconds of the
injected clock; the previous secret is still accepted, so a cookie stays
good for between one and two periods.  Secrets are made when first needed,
never by a timer.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from typing import Any, Callable

from twisted.internet.interfaces import IReactorTime

__all__ = ["CookieSecrets", "COOKIE_SIZE"]

COOKIE_SIZE = 16


def _text(address: Any) -> bytes:
    return f"{address[0]}|{address[1]}".encode()


class CookieSecrets:
    """
    @param rotation: seconds each secret is the current one.
    @param random: makes a new secret of the given size (tests pass their own).
    """

    def __init__(
        self,
        clock: IReactorTime,
        rotation: float = 60.0,
        random: Callable[[int], bytes] = os.urandom,
    ) -> None:
        self._clock = clock
        self._rotation = rotation
        self._random = random
        self._epoch = -1
        self._current = b""
        self._previous = b""

    def _secrets(self) -> tuple[bytes, bytes]:
        epoch = int(self._clock.seconds() // self._rotation)
        if epoch != self._epoch:
            # Only the period just before stays valid: after a longer
            # silence the old secret is as stale as any.
            self._previous = self._current if epoch == self._epoch + 1 else b""
            self._current = self._random(32)
            self._epoch = epoch
        return self._current, self._previous

    def make(self, address: Any) -> bytes:
        """The cookie for a client at C{address}, (host, port)."""
        current, _ = self._secrets()
        return hmac.new(current, _text(address), hashlib.sha256).digest()[:COOKIE_SIZE]

    def check(self, address: Any, cookie: bytes) -> bool:
        """Whether C{cookie} was made for C{address} in this period or the one before."""
        if len(cookie) != COOKIE_SIZE:
            return False
        text = _text(address)
        for secret in self._secrets():
            if secret and hmac.compare_digest(
                hmac.new(secret, text, hashlib.sha256).digest()[:COOKIE_SIZE], cookie
            ):
                return True
        return False
