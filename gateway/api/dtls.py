# -*- test-case-name: tests.api.test_dtls -*-
"""
C{GET /api/v1/dtls}: the DTLS listener's sessions and counters (handshakes
by mode and outcome, cookie rejections, timeouts, rate-limit drops).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from gateway.api.router import Call, Reply, Route
from gateway.api.schemas import ref

__all__ = ["dtls_routes", "DtlsReport", "dtls_off"]

#: The DTLS listener's state: C{enabled}, then (when it is) the transport's
#: report (L{gateway.dtls.transport.DTLSTransport.report}).
DtlsReport = Callable[[], Mapping[str, Any]]


def dtls_off() -> Mapping[str, Any]:
    """The report when DTLS is not served."""
    return {"enabled": False}


def dtls_routes(report: DtlsReport) -> list[Route]:
    async def status(call: Call) -> Reply:
        return Reply(200, dict(report()))

    return [
        Route("GET", "/api/v1/dtls", status, "DTLS sessions and handshake counters", "dtls",
              response=ref("DtlsStatus")),
    ]
