# -*- test-case-name: tests.dialects.test_jsonio -*-
"""
JSON in and out for the dialects.

 - L{parse_json}, L{parse_object}: decode a UTF-8 JSON payload, strict or
   as leniently as Gson (L{gateway.dialects.lenient}); anything that is not
   (an empty payload, bad UTF-8, bad JSON, C{NaN} or C{Infinity}, nesting
   too deep, an integer longer than Python converts, a non-object where one
   is wanted) raises L{PayloadError}, a 4.00 carrying a short diagnostic
   ("invalid JSON at character N: why", N counted from 0 in the decoded
   text).
 - L{check_text}: what the decoded text must be besides valid JSON (no
   lone surrogate escape, which no store or response could encode), checked
   for every dialect whatever parser reads the text.
 - L{json_response}, L{created}: the responses; L{dumps}: compact JSON.
"""

from __future__ import annotations

import json
import sys
from typing import Any, NoReturn, Optional

from txthings import coap as tx

from gateway.coap import errors
from gateway.coap import numbers as n
from gateway.dialects.lenient import decode as decode_lenient
from gateway.domain.model import JSONValue
from gateway.domain.text import lone_surrogate

__all__ = [
    "PayloadError",
    "check_text",
    "parse_json",
    "parse_object",
    "dumps",
    "json_response",
    "created",
]


class PayloadError(errors.BadRequest):
    """A payload that breaks a dialect's rules: answered with 4.00 and the rule's text."""


def _refuse_constant(name: str) -> NoReturn:
    raise PayloadError(f"{name} is not valid JSON")


#: One decoder for every payload: json.loads builds a new one per call when given options.
_DECODER = json.JSONDecoder(parse_constant=_refuse_constant)


def parse_json(payload: bytes, lenient: bool = False) -> JSONValue:
    """
    Decode a UTF-8 JSON payload; an empty one is an error.  With C{lenient},
    what Gson's lenient parser reads is read too.
    """
    if not payload.strip():
        raise PayloadError("empty payload")
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        raise PayloadError("payload is not UTF-8") from None
    check_text(text)
    decode = _DECODER.decode
    try:
        return decode_lenient(text, decode) if lenient else decode(text)
    except json.JSONDecodeError as e:
        raise PayloadError(f"invalid JSON at character {e.pos}: {e.msg}") from None
    except RecursionError:
        raise PayloadError("JSON nested too deeply") from None
    except ValueError:  # int() refuses what its digit limit forbids
        raise PayloadError(
            f"integer with more than {sys.get_int_max_str_digits()} digits"
        ) from None


def check_text(text: str) -> None:
    """Refuse JSON text whose strings could not be stored or answered."""
    at = lone_surrogate(text)
    if at is not None:
        raise PayloadError(f"invalid Unicode: lone surrogate at character {at}")


def parse_object(
    payload: bytes, what: str = "payload", lenient: bool = False
) -> dict[str, JSONValue]:
    """Decode a JSON object; C{what} names it in the diagnostic otherwise."""
    data = parse_json(payload, lenient)
    if not isinstance(data, dict):
        raise PayloadError(f"{what} must be a JSON object")
    return data


def dumps(value: JSONValue) -> bytes:
    """Compact UTF-8 JSON (non-ASCII characters sent as they are)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def json_response(
    value: JSONValue, code: int = n.CONTENT, content_format: Optional[int] = n.JSON
) -> Any:
    """A response carrying C{value} as JSON; C{content_format} C{None} sets none."""
    response = tx.Message(code=code, payload=dumps(value))
    if content_format is not None:
        response.opt.content_format = content_format
    return response


def created() -> Any:
    """2.01 with an empty body: an accepted uplink."""
    return tx.Message(code=n.CREATED)
