"""
Errors a resource raises to answer with a CoAP error code.

The dispatcher renders any L{CoAPError} as a response carrying its code and
a short diagnostic payload (RFC 7252 §5.5.2); anything else becomes 5.00.
"""

from __future__ import annotations

from typing import ClassVar

from . import numbers as n


class CoAPError(Exception):
    """An error response: C{code} plus an optional diagnostic payload."""

    code: ClassVar[int] = n.INTERNAL_SERVER_ERROR

    def __init__(self, diagnostic: str = "", **options: int) -> None:
        super().__init__(diagnostic)
        self.diagnostic = diagnostic
        #: Extra uint options for the response, e.g. C{size1=...}, C{max_age=...}.
        self.options = options


class BadRequest(CoAPError):
    code = n.BAD_REQUEST


class Unauthorized(CoAPError):
    code = n.UNAUTHORIZED


class BadOption(CoAPError):
    code = n.BAD_OPTION


class Forbidden(CoAPError):
    code = n.FORBIDDEN


class NotFound(CoAPError):
    code = n.NOT_FOUND


class MethodNotAllowed(CoAPError):
    code = n.METHOD_NOT_ALLOWED


class NotAcceptable(CoAPError):
    code = n.NOT_ACCEPTABLE


class RequestEntityIncomplete(CoAPError):
    code = n.REQUEST_ENTITY_INCOMPLETE


class RequestEntityTooLarge(CoAPError):
    code = n.REQUEST_ENTITY_TOO_LARGE


class UnsupportedContentFormat(CoAPError):
    code = n.UNSUPPORTED_CONTENT_FORMAT


class InternalServerError(CoAPError):
    code = n.INTERNAL_SERVER_ERROR


class ServiceUnavailable(CoAPError):
    code = n.SERVICE_UNAVAILABLE


class ProxyingNotSupported(CoAPError):
    code = n.PROXYING_NOT_SUPPORTED
