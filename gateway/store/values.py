# -*- test-case-name: tests.store.test_contract -*-
"""
What every backend accepts, checked the same way for all of them.

The rules are what a real database keeps without surprises: text is valid
Unicode (no lone surrogates, which UTF-8 cannot encode) without NUL
characters (PostgreSQL's text cannot hold them), integer fields
(timestamps, timers) fit in 64 bits, numbers are finite, and JSON values are
what C{json.dumps} writes without NaN or Infinity (integers of any size
included) and hold valid Unicode only.  Every violation is an L{InvalidArgument}.
JSON values travel as compact JSON text, so a backend stores (and the
memory store copies) exactly what a database column would hold.
"""

from __future__ import annotations

import json
import math
from typing import Iterable

from gateway.domain.errors import InvalidArgument
from gateway.domain.model import JSONValue
from gateway.domain.text import lone_surrogate

__all__ = [
    "INT64_MAX",
    "INT64_MIN",
    "check_finite",
    "check_int64",
    "check_text",
    "check_texts",
    "decode_json",
    "encode_json",
]

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1


def check_text(what: str, value: object) -> str:
    """C{value} if it is a string a database can store."""
    if not isinstance(value, str):
        raise InvalidArgument(f"{what} must be a string, not {type(value).__name__}")
    # PostgreSQL's text cannot hold NUL: no backend takes it.
    if "\x00" in value:
        raise InvalidArgument(f"{what} holds a NUL character")
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidArgument(f"{what} is not valid Unicode") from None
    return value


def check_texts(what: str, values: Iterable[object]) -> tuple[str, ...]:
    """The strings of C{values}, each checked, in order and without repeats."""
    return tuple(dict.fromkeys(check_text(what, v) for v in values))


def check_int64(what: str, value: object) -> int:
    """C{value} if it is an integer (not a bool) of at most 64 bits."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or not INT64_MIN <= value <= INT64_MAX
    ):
        raise InvalidArgument(f"{what} must be a 64-bit integer, got {value!r}")
    return value


def check_finite(what: str, value: object) -> float:
    """C{value} as a float if it is a finite number (not a bool)."""
    if not isinstance(value, bool) and isinstance(value, (int, float)):
        try:
            number = float(value)
        except OverflowError:  # an int beyond any float
            pass
        else:
            if math.isfinite(number):
                return number
    raise InvalidArgument(f"{what} must be a finite number, got {value!r}")


#: One encoder for every value: json.dumps builds a new one per call when
#: given options, and this runs for every value a device sends.
_ENCODER = json.JSONEncoder(separators=(",", ":"), allow_nan=False)


def encode_json(value: JSONValue) -> str:
    """C{value} as compact JSON text (ASCII: other characters escaped)."""
    # Devices send mostly plain numbers: write those as the encoder would,
    # without building its machinery for one value.
    kind = type(value)
    if kind is float:
        if math.isfinite(value):
            return float.__repr__(value)
    elif kind is int and -_FAST_INT <= value <= _FAST_INT:
        return int.__repr__(value)
    try:
        text = _ENCODER.encode(value)
    except (TypeError, ValueError, RecursionError) as e:
        raise InvalidArgument(f"not a JSON value: {e}") from None
    # A lone surrogate would be stored as its escape and break every reader.
    if lone_surrogate(text) is not None:
        raise InvalidArgument("a JSON value is not valid Unicode (a lone surrogate)")
    return text


#: Integers written directly; longer ones meet the encoder's digit limit.
_FAST_INT = 2**64


def decode_json(text: str) -> JSONValue:
    """The value of JSON text written by L{encode_json}."""
    return json.loads(text)
