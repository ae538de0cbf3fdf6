"""Building ThingsBoard responses."""

from __future__ import annotations

import json
from typing import Any, Optional

from txthings import coap as tx

from gateway.coap import numbers as n
from gateway.domain.model import JSONValue

__all__ = ["created", "json_response", "dumps"]


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
