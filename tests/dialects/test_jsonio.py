"""
The dialects' JSON helpers: decoding refuses with a 4.00 diagnostic,
responses are compact JSON with a Content-Format.
"""

from __future__ import annotations

import pytest

from gateway.coap import errors
from gateway.coap import numbers as n
from gateway.dialects.jsonio import (
    PayloadError,
    created,
    json_response,
    parse_json,
    parse_object,
)
from tests.coap.support import option


def test_payload_error_is_a_bad_request() -> None:
    """A payload error is answered by the engine as 4.00 with its text."""
    error = PayloadError("bad")
    assert isinstance(error, errors.BadRequest)
    assert (error.code, error.diagnostic) == (n.BAD_REQUEST, "bad")


def test_parse_object_names_what_it_wanted() -> None:
    """A JSON value that is not an object is refused, naming what was expected."""
    assert parse_object(b'{"a":[1]}') == {"a": [1]}
    with pytest.raises(PayloadError, match="^reading must be a JSON object$"):
        parse_object(b"[1]", "reading")
    for bad in (b"", b"{", b"\xff", b'{"a":Infinity}'):
        with pytest.raises(PayloadError):
            parse_object(bad)


def test_invalid_json_names_the_character_offset() -> None:
    """A JSON error says it is at a character offset (from 0) and why."""
    with pytest.raises(PayloadError) as raised:
        parse_json(b"{temperature:25}")
    assert raised.value.diagnostic == (
        "invalid JSON at character 1: Expecting property name enclosed in double quotes"
    )


def test_lenient_reads_what_gson_reads() -> None:
    """Leniently, ThingsBoard's guide payload is an object; its errors name the offset too."""
    assert parse_object(b"{temperature:25}", lenient=True) == {"temperature": 25}
    assert parse_json("{n:'caf\u00e9', m:'é'}".encode(), lenient=True) == {"n": "café", "m": "é"}
    with pytest.raises(PayloadError) as raised:
        parse_object(b"{temperature:25,}", lenient=True)
    assert raised.value.diagnostic == "invalid JSON at character 16: expected a name"


def test_lenient_keeps_the_strict_guards() -> None:
    """Leniently too NaN and infinities, deep nesting, bad UTF-8 and empty bodies are refused."""
    for body, why in (
        (b"{a:NaN}", "NaN is not valid JSON"),
        (b"{a:-Infinity}", "-Infinity is not valid JSON"),
        (b"[" * 100_000 + b"]" * 100_000, "JSON nested too deeply"),
        (b"{a:'\xff'}", "payload is not UTF-8"),
        (b" ", "empty payload"),
    ):
        with pytest.raises(PayloadError) as raised:
            parse_json(body, lenient=True)
        assert raised.value.diagnostic == why, body


def test_json_response_is_compact_with_content_format() -> None:
    """A JSON response is compact UTF-8 marked 50, or unmarked when asked."""
    response = json_response({"é": [1, 2]}, n.CHANGED)
    assert (response.code, response.payload) == (n.CHANGED, '{"é":[1,2]}'.encode())
    assert option(response, n.CONTENT_FORMAT) == n.JSON
    assert option(json_response(None, content_format=None), n.CONTENT_FORMAT) is None


def test_created_is_an_empty_201() -> None:
    """An accepted uplink is a 2.01 with no body."""
    response = created()
    assert (response.code, response.payload) == (n.CREATED, b"")
