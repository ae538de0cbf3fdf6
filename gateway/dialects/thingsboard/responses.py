"""
Building ThingsBoard responses and mapping service failures to CoAP codes.
"""

from __future__ import annotations

import json
from typing import Any, Optional

from twisted.python.failure import Failure
from txthings import coap as tx

from gateway.coap import errors
from gateway.coap import numbers as n
from gateway.service import errors as service_errors
from gateway.service.model import JSONValue

__all__ = ["created", "json_response", "service_failure", "dumps"]


def dumps(value: JSONValue) -> bytes:
    """Compact JSON, as ThingsBoard sends it."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def created() -> Any:
    """2.01 with an empty body: an accepted uplink."""
    return tx.Message(code=n.CREATED)


def json_response(
    request: Any, value: JSONValue, code: int = n.CONTENT, content_format: Optional[int] = -1
) -> Any:
    """
    A JSON response.  Its Content-Format echoes the request's, else 50
    (ThingsBoard's rule for JSON profiles); C{None} sets none.
    """
    response = tx.Message(code=code, payload=dumps(value))
    if content_format == -1:
        asked = request.opt.content_format
        content_format = n.JSON if asked is None else asked
    if content_format is not None:
        response.opt.content_format = content_format
    return response


def service_failure(failure: Failure) -> Any:
    """
    Turn deliberate service errors into CoAP errors: a device gone since
    authentication is 4.01, an invalid argument 4.00.  Anything else passes
    on (the engine answers 5.00 and logs it).
    """
    if failure.check(service_errors.NotFound):
        raise errors.Unauthorized("unknown device")
    if failure.check(service_errors.InvalidArgument):
        raise errors.BadRequest(str(failure.value))
    return failure
