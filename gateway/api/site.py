# -*- test-case-name: tests.api.test_site -*-
"""
L{ApiSite}: the API's C{Site}, logging each request as one structured
C{twisted.logger} event instead of twisted.web's legacy access-log line.
"""

from __future__ import annotations

from typing import Any

from twisted.logger import Logger
from twisted.web.server import Site

__all__ = ["ApiSite"]

_access = Logger(namespace="gateway.api.access")


class ApiSite(Site):
    """A C{Site} whose access log is a debug-level structured event per request."""

    def __init__(self, resource: Any) -> None:
        super().__init__(resource)
        self.displayTracebacks = False

    def log(self, request: Any) -> None:
        _access.debug(
            "{method} {uri} {code} from {client}",
            method=request.method.decode("ascii", "replace"),
            uri=request.uri.decode("ascii", "replace"),
            code=request.code,
            client=getattr(request.getClientAddress(), "host", None),
        )
