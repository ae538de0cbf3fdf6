# -*- test-case-name: tests.api.test_site -*-
"""
L{ApiSite}: the API's C{Site}, logging each request as one structured
C{twisted.logger} event instead of twisted.web's legacy access-log line,
and refusing bodies before they are read.

twisted.web spools every request body (to a temporary file above 100 kB)
before the resource sees the request.  L{GuardedRequest} asks the router
(L{gateway.api.router.Router.refuse_body}) as soon as the headers are in,
and counts a chunked body as it comes: a body without the bearer key is a
401, one over the limit a 413, answered at once on a connection that is
then closed, so nothing of the body is kept and no handler runs.
"""

from __future__ import annotations

from io import BytesIO
from typing import Any, Optional

from twisted.logger import Logger
from twisted.web.server import Request, Site

from gateway.api.jsonio import ApiError, dumps
from gateway.api.router import MAX_BODY, Router, body_too_large

__all__ = ["ApiSite", "GuardedRequest"]

_access = Logger(namespace="gateway.api.access")


class _Discard(BytesIO):
    """Where the rest of a refused body goes: nowhere (it stays empty)."""

    def write(self, data: Any) -> int:
        return len(data)


class GuardedRequest(Request):
    """A request whose body is refused, if it must be, before it is read."""

    _refused = False
    _received = 0
    _limit = MAX_BODY

    def _router(self) -> Optional[Router]:
        # The site's resource is the router once the gateway has started.
        router = getattr(getattr(self.channel, "site", None), "resource", None)
        return router if isinstance(router, Router) else None

    def gotLength(self, length: Optional[int]) -> None:
        router = self._router()
        refusal = None
        if router is not None:
            # The request line is still only the channel's: method and URI
            # (twisted.web's HTTP/1.x channel; without them the 1 MiB default applies).
            method = getattr(self.channel, "_command", b"")
            self._limit = router.body_limit(method, getattr(self.channel, "_path", b""))
            refusal = router.refuse_body(self.requestHeaders, length, self._limit)
        if refusal is None:
            super().gotLength(length)
        else:
            self._refuse(refusal)

    def handleContentChunk(self, data: bytes) -> None:
        self._received += len(data)
        if not self._refused and self._received > self._limit:
            self._refuse(body_too_large(self._limit))
        super().handleContentChunk(data)

    def process(self) -> None:
        if not self._refused:
            super().process()

    def _refuse(self, error: ApiError) -> None:
        self._refused = True
        content, self.content = self.content, _Discard()  # type: ignore[assignment]
        if content is not None:
            content.close()
        # No "100 Continue" after this answer.
        self.requestHeaders.removeHeader(b"expect")
        body = dumps({"error": error.message}) + b"\n"
        reason = {401: b"Unauthorized", 413: b"Content Too Large"}.get(error.status, b"Error")
        head = [
            b"HTTP/1.1 %d %s" % (error.status, reason),
            b"Content-Type: application/json",
            b"Content-Length: %d" % len(body),
            b"Connection: close",
        ]
        if error.status == 401:
            head.append(b'WWW-Authenticate: Bearer realm="coap-gateway"')
        channel = self.channel
        if channel.transport is not None:
            channel.transport.write(b"\r\n".join(head) + b"\r\n\r\n" + body)
        channel.loseConnection()
        _access.debug(
            "body refused with {code} from {client}",
            code=error.status,
            client=getattr(self.getClientAddress(), "host", None),
        )


class ApiSite(Site):
    """A C{Site} whose access log is a debug-level structured event per request."""

    def __init__(self, resource: Any) -> None:
        super().__init__(resource, requestFactory=GuardedRequest)
        self.displayTracebacks = False

    def log(self, request: Any) -> None:
        _access.debug(
            "{method} {uri} {code} from {client}",
            method=request.method.decode("ascii", "replace"),
            uri=request.uri.decode("ascii", "replace"),
            code=request.code,
            client=getattr(request.getClientAddress(), "host", None),
        )
