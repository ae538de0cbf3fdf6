"""ThingsBoard's JSON responses: the Content-Format echo."""

from __future__ import annotations

from typing import Any

from gateway.coap import numbers as n
from gateway.dialects import jsonio
from gateway.domain.model import JSONValue

__all__ = ["json_response"]


def json_response(request: Any, value: JSONValue, code: int = n.CONTENT) -> Any:
    """
    A JSON response whose Content-Format echoes the request's, else 50
    (ThingsBoard's rule for JSON profiles).
    """
    asked = request.opt.content_format
    return jsonio.json_response(value, code, n.JSON if asked is None else asked)
