# -*- test-case-name: tests.api.test_app -*-
"""
A small router over twisted.web: a table of L{Route}s (method, path template,
async handler, and what the OpenAPI document says of them) served by one
leaf L{Router} resource.

The router owns the HTTP conventions of the API: bearer authentication,
JSON bodies (415 for another content type, 400 for bad JSON, JSON nested too
deeply or holding a lone surrogate escape, 413 above L{MAX_BODY}), unknown
query parameters (400), 404 for an unknown path, 405 with C{Allow} for a
known path and another method, service errors mapped to their status, and
500 for anything else (logged once) - a response that cannot be written
(say, a stored value JSON cannot encode) included: every request is
finished.  Every error body is C{{"error": "..."}}.

L{Router.refuse_body} is asked by the site (L{gateway.api.site}) as soon as
a request's headers are in, before its body is read: a body without the
bearer key, or longer than L{MAX_BODY}, is refused there.
"""

from __future__ import annotations

import hmac
import json
from typing import Any, Awaitable, Callable, Mapping, Optional, Sequence, cast
from urllib.parse import unquote

import attrs
from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.http_headers import Headers
from twisted.web.iweb import IRequest
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request

from gateway.api.failures import http_status, retry_after
from gateway.api.jsonio import ApiError, dumps
from gateway.domain.errors import ServiceError
from gateway.domain.text import lone_surrogate

__all__ = ["Call", "Reply", "Param", "Route", "Router", "MAX_BODY", "body_too_large"]

log = Logger()

#: Largest request body accepted, in bytes.
MAX_BODY = 1024 * 1024

#: Methods whose requests carry a body.
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})


@attrs.frozen
class Call:
    """
    What a handler gets: path parameters, query parameters (the last value
    of each) and the decoded JSON body (C{None} when the route takes none).
    """

    params: Mapping[str, str]
    query: Mapping[str, str]
    body: Any = None


@attrs.frozen
class RawBody:
    """The body of a route that takes any content (L{Route.raw_body}), as sent."""

    data: bytes
    content_type: Optional[str] = None


@attrs.frozen
class Reply:
    """A handler's answer; C{body=None} sends no content."""

    status: int
    body: Any = None
    headers: Mapping[str, str] = attrs.field(factory=dict)


Handler = Callable[[Call], Awaitable[Reply]]


@attrs.frozen
class Param:
    """A query parameter a route accepts (documented in OpenAPI)."""

    name: str
    description: str
    required: bool = False


@attrs.frozen
class Route:
    """
    One operation.  C{path} is a template such as
    C{/api/v1/devices/{id}}; each C{{name}} matches one path segment.

    @ivar request: JSON schema of the body, or C{None} for no body.
    @ivar response: JSON schema of the success body (C{None}: no content).
    @ivar public: served without the bearer key.
    @ivar raw_body: the body is any content, handed over as a L{RawBody}.
    @ivar max_body: the longest body it takes, in bytes (an OTA package's
        is longer than L{MAX_BODY}).
    """

    method: str
    path: str
    handler: Handler
    summary: str
    tag: str
    status: int = 200
    query: Sequence[Param] = ()
    request: Optional[Mapping[str, Any]] = None
    response: Optional[Mapping[str, Any]] = None
    public: bool = False
    raw_body: bool = False
    max_body: int = MAX_BODY

    @property
    def segments(self) -> tuple[str, ...]:
        return tuple(self.path.strip("/").split("/"))

    @property
    def path_params(self) -> list[str]:
        return [s[1:-1] for s in self.segments if s.startswith("{")]

    def match(self, segments: Sequence[str]) -> Optional[dict[str, str]]:
        """The path parameters if C{segments} fit this route's template."""
        template = self.segments
        if len(template) != len(segments):
            return None
        params: dict[str, str] = {}
        for pattern, value in zip(template, segments, strict=True):
            if pattern.startswith("{"):
                if not value:
                    return None
                params[pattern[1:-1]] = value
            elif pattern != value:
                return None
        return params


def _segments(path: bytes) -> Optional[list[str]]:
    try:
        text = path.decode("ascii")
        parts = [unquote(p, errors="strict") for p in text.strip("/").split("/")]
    except UnicodeError:
        return None
    return parts


def _is_json(content_type: Optional[bytes]) -> bool:
    if content_type is None:
        return False
    media = content_type.split(b";", 1)[0].strip().lower()
    return media == b"application/json" or media.endswith(b"+json")


@attrs.define
class _Matched:
    route: Route
    params: dict[str, str]


class Router(Resource):
    """
    Serve C{routes}, requiring C{Authorization: Bearer <key>} on every route
    not marked public.
    """

    isLeaf = True

    def __init__(self, routes: Sequence[Route], key: str) -> None:
        super().__init__()
        if not key:
            raise ValueError("the API needs a non-empty key")
        self.routes = list(routes)
        self._key = key.encode("utf-8")

    # -- dispatch ------------------------------------------------------------

    def render(self, request: IRequest) -> int:
        return self._render(cast(Request, request))

    def _render(self, request: Request) -> int:
        finished = False

        def gone(_: object) -> None:
            nonlocal finished
            finished = True

        request.notifyFinish().addBoth(gone)

        def send(reply: Reply) -> None:
            if finished:
                return
            body = None if reply.body is None else dumps(reply.body) + b"\n"
            request.setResponseCode(reply.status)
            for name, value in reply.headers.items():
                request.setHeader(name, value)
            if body is not None:
                request.setHeader("Content-Type", "application/json")
                request.write(body)
            request.finish()

        def unexpected(failure: Failure) -> None:
            log.failure(
                "API response to {method} {path} failed",
                failure,
                method=request.method.decode("ascii", "replace"),
                path=request.path.decode("ascii", "replace"),
            )
            if finished:
                return
            if request.startedWriting:  # too late for a status: cut it short
                request.loseConnection()
                return
            send(_error(500, "internal error"))

        d = Deferred.fromCoroutine(self._answer(request))
        d.addCallback(send)
        d.addErrback(unexpected)
        d.addErrback(self._lost, request)
        return NOT_DONE_YET

    @staticmethod
    def _lost(failure: Failure, request: Request) -> None:
        log.failure("API request {method} could not be finished", failure, method=request.method)

    async def _answer(self, request: Request) -> Reply:
        method = request.method.decode("ascii", "replace")
        try:
            return await self._dispatch(request, method)
        except ApiError as e:
            return _error(e.status, e.message)
        except ServiceError as e:
            reply = _error(http_status(e), e.message)
            seconds = retry_after(e)
            if seconds is not None:
                reply = attrs.evolve(reply, headers={"Retry-After": str(seconds)})
            return reply
        except Exception:
            log.failure(
                "API request {method} {path} failed",
                method=method,
                path=request.path.decode("ascii", "replace"),
            )
            return _error(500, "internal error")

    def find(self, method: str, path: bytes) -> _Matched:
        """The route for C{method} and C{path}; L{ApiError} 404 or 405."""
        segments = _segments(path)
        if segments is None:
            raise ApiError(404, "no such route")
        allowed: list[str] = []
        for route in self.routes:
            params = route.match(segments)
            if params is None:
                continue
            if route.method == method:
                return _Matched(route, params)
            allowed.append(route.method)
        if allowed:
            raise _MethodNotAllowed(allowed)
        raise ApiError(404, "no such route")

    async def _dispatch(self, request: Request, method: str) -> Reply:
        try:
            matched = self.find(method, request.path)
        except _MethodNotAllowed as e:
            self._authenticate(request)
            reply = _error(405, f"method {method} not allowed")
            return attrs.evolve(reply, headers={"Allow": ", ".join(sorted(e.allowed))})
        except ApiError:
            self._authenticate(request)
            raise
        route = matched.route
        if not route.public:
            self._authenticate(request)
        body = self._body(request, route)
        query = self._query(request, route)
        return await route.handler(Call(matched.params, query, body))

    # -- request parts -------------------------------------------------------

    def body_limit(self, method: bytes, uri: bytes) -> int:
        """The longest body the route of C{method} and C{uri} takes (L{MAX_BODY} if none)."""
        try:
            route = self.find(method.decode("ascii", "replace"), uri.split(b"?", 1)[0]).route
        except (ApiError, _MethodNotAllowed):
            return MAX_BODY
        return route.max_body

    def refuse_body(
        self, headers: Headers, length: Optional[int], limit: int = MAX_BODY
    ) -> Optional[ApiError]:
        """
        The error answering a request as soon as its headers are in, before
        its body (of C{length} bytes, C{None}: chunked) is read: a body
        without the bearer key (no public route takes one), or one longer
        than C{limit} (its route's, L{body_limit}).  C{None}: read on.
        """
        if length == 0:
            return None
        header = headers.getRawHeaders(b"authorization", [b""])[0]
        if not self._key_matches(header):
            return _Unauthorized()
        if length is not None and length > limit:
            return body_too_large(limit)
        return None

    def _key_matches(self, header: bytes) -> bool:
        scheme, _, presented = header.partition(b" ")
        return scheme.lower() == b"bearer" and hmac.compare_digest(presented.strip(), self._key)

    def _authenticate(self, request: Request) -> None:
        if not self._key_matches(request.getHeader(b"authorization") or b""):
            raise _Unauthorized()

    def _query(self, request: Request, route: Route) -> dict[str, str]:
        known = {p.name for p in route.query}
        query: dict[str, str] = {}
        args: dict[bytes, list[bytes]] = request.args or {}
        for raw, values in args.items():
            try:
                name = raw.decode("utf-8")
                value = values[-1].decode("utf-8") if values else ""
            except UnicodeError:
                raise ApiError(400, "query parameters must be UTF-8") from None
            if name not in known:
                raise ApiError(400, f"unknown query parameter {name!r}")
            query[name] = value
        for p in route.query:
            if p.required and p.name not in query:
                raise ApiError(400, f"missing query parameter {p.name!r}")
        return query

    def _body(self, request: Request, route: Route) -> Any:
        if route.request is None or route.method not in _BODY_METHODS:
            return None
        content = request.content
        raw = content.read(route.max_body + 1) if content is not None else b""
        if len(raw) > route.max_body:
            raise body_too_large(route.max_body)
        if route.raw_body:
            content_type = request.getHeader(b"content-type")
            return RawBody(raw, None if content_type is None else content_type.decode("latin-1"))
        if not _is_json(request.getHeader(b"content-type")):
            raise ApiError(415, "the body must be application/json")
        try:
            text = raw.decode("utf-8")
            value = json.loads(text)
        except (UnicodeError, ValueError) as e:
            raise ApiError(400, f"the body is not valid JSON: {e}") from None
        except RecursionError:
            raise ApiError(400, "the body is not valid JSON: nested too deeply") from None
        at = lone_surrogate(text)
        if at is not None:
            raise ApiError(400, f"invalid Unicode: lone surrogate at character {at}")
        return value


class _MethodNotAllowed(Exception):
    def __init__(self, allowed: list[str]) -> None:
        super().__init__("method not allowed")
        self.allowed = allowed


class _Unauthorized(ApiError):
    def __init__(self) -> None:
        super().__init__(401, "a valid 'Authorization: Bearer <key>' header is required")


def body_too_large(limit: int = MAX_BODY) -> ApiError:
    """The 413 for a body over C{limit} bytes."""
    return ApiError(413, f"the body is larger than {limit} bytes")


def _error(status: int, message: str) -> Reply:
    headers = {"WWW-Authenticate": 'Bearer realm="coap-gateway"'} if status == 401 else {}
    return Reply(status, {"error": message}, headers)
