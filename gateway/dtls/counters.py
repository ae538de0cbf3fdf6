# -*- test-case-name: tests.dtls.test_transport -*-
"""
L{DTLSCounters}: what the DTLS layer counts, for C{GET /api/v1/dtls}.
Only counted on the hot path, never logged per datagram.
"""

from __future__ import annotations

from typing import Any

import attrs

__all__ = ["DTLSCounters", "MODES", "OUTCOMES"]

#: How a client authenticates: PSK, a client certificate, or none (it
#: checks the server's certificate only).
MODES = ("psk", "x509", "one_way")
OUTCOMES = ("ok", "failed", "timeout")


def _table() -> dict[str, dict[str, int]]:
    return {mode: dict.fromkeys(OUTCOMES, 0) for mode in MODES}


@attrs.define
class DTLSCounters:
    #: Finished handshakes by mode and outcome.
    handshakes: dict[str, dict[str, int]] = attrs.field(factory=_table)
    #: HelloVerifyRequests sent (ClientHellos without a valid cookie).
    hello_verify_requests: int = 0
    #: ClientHellos whose cookie was present but wrong or expired.
    cookie_rejections: int = 0
    #: Datagrams from addresses without a session that were no ClientHello.
    not_client_hello: int = 0
    #: Verified ClientHellos dropped: the source's handshake budget was spent.
    rate_limited: int = 0
    #: Verified ClientHellos dropped: the session table was full.
    session_limit: int = 0
    #: Sessions replaced by a new handshake from the same address.
    replaced: int = 0
    #: Sessions closed after the inactivity timeout.
    idle_timeouts: int = 0
    #: Sessions the client closed (close_notify) or ended with an alert.
    closed_by_client: int = 0

    def handshake(self, mode: str, outcome: str) -> None:
        self.handshakes[mode][outcome] += 1

    def report(self) -> dict[str, Any]:
        return {
            "handshakes": {mode: dict(outcomes) for mode, outcomes in self.handshakes.items()},
            "hello_verify_requests": self.hello_verify_requests,
            "cookie_rejections": self.cookie_rejections,
            "not_client_hello": self.not_client_hello,
            "rate_limited": self.rate_limited,
            "session_limit": self.session_limit,
            "replaced": self.replaced,
            "idle_timeouts": self.idle_timeouts,
            "closed_by_client": self.closed_by_client,
        }
