"""
ThingsBoard JSON payload rules, without the engine.
"""

from __future__ import annotations

import pytest

from gateway.dialects.thingsboard.payload import (
    JSONRules,
    PayloadError,
    attribute_query,
    attribute_values,
    claim_request,
    parse_json,
    provision_request,
    telemetry_records,
)
from gateway.dialects.thingsboard.routes import Route, parse_route

RULES = JSONRules()


def test_telemetry_shapes() -> None:
    """Flat, ts/values and arrays of both give (ts or None, values) records."""
    assert telemetry_records(b'{"a":1}', RULES) == [(None, {"a": 1})]
    assert telemetry_records(b'{"ts":7,"values":{"a":1}}', RULES) == [(7, {"a": 1})]
    assert telemetry_records(b'[{"a":1},{"ts":"8","values":{"b":2}}]', RULES) == [
        (None, {"a": 1}),
        (8, {"b": 2}),
    ]


def test_ts_without_values_is_a_value() -> None:
    """An object with ts but no values is flat telemetry that includes ts."""
    assert telemetry_records(b'{"ts":7,"a":1}', RULES) == [(None, {"ts": 7, "a": 1})]


def test_records_left_empty_by_nulls_are_dropped() -> None:
    """A record whose values are all null stores nothing."""
    assert telemetry_records(b'[{"a":null},{"b":1}]', RULES) == [(None, {"b": 1})]


@pytest.mark.parametrize(
    "body",
    [b"", b"  ", b"nul", b"true", b"[[1]]", b'{"ts":-1,"values":{}}', b'{"ts":true,"values":{}}',
     b'{"a":Infinity}', b'{"":1}'],
)
def test_telemetry_refused(body: bytes) -> None:
    """Empty, malformed or wrongly shaped telemetry raises PayloadError."""
    with pytest.raises(PayloadError):
        telemetry_records(body, RULES)


def test_big_integers_and_floats() -> None:
    """Integers of any size stay ints and decimals stay floats."""
    assert attribute_values(b'{"b":123456789012345678901234567890,"f":0.5}', RULES) == {
        "b": 123456789012345678901234567890,
        "f": 0.5,
    }


def test_type_cast_off_keeps_strings() -> None:
    """With type_cast off, numeric strings stay strings."""
    assert attribute_values(b'{"a":"12"}', JSONRules(type_cast=False)) == {"a": "12"}


def test_type_cast_only_plain_numbers() -> None:
    """Only plain decimal numbers are cast, never exponents, signs or hex."""
    got = attribute_values(b'{"a":"-3","b":".5","c":"1e3","d":"+1","e":"0x1","f":"1."}', RULES)
    assert got == {"a": -3, "b": 0.5, "c": "1e3", "d": "+1", "e": "0x1", "f": "1."}


def test_max_string_length_checks_before_cast() -> None:
    """The string limit counts characters of the value as sent, nested included."""
    rules = JSONRules(max_string_length=2)
    assert attribute_values(b'{"a":"12","b":"\\u00e9\\u00e9"}', rules) == {"a": 12, "b": "éé"}
    with pytest.raises(PayloadError):
        attribute_values(b'{"a":"123"}', rules)
    with pytest.raises(PayloadError):
        attribute_values(b'{"a":["xyz"]}', rules)


def test_parse_json_refuses_bad_utf8() -> None:
    """A payload that is not UTF-8 is refused."""
    with pytest.raises(PayloadError):
        parse_json(b'{"a":"\xff"}')


def test_claim_request() -> None:
    """Claims default to an empty secret and duration 0."""
    assert claim_request(b"") == ("", 0)
    assert claim_request(b"{}") == ("", 0)
    assert claim_request(b'{"secretKey":"k","durationMs":5}') == ("k", 5)


def test_provision_request_fields() -> None:
    """Every ThingsBoard provisioning field is read; credentialsType defaults to ACCESS_TOKEN."""
    request = provision_request(
        b'{"provisionDeviceKey":"k","provisionDeviceSecret":"s","deviceName":"d","token":"t",'
        b'"gateway":true}'
    )
    assert (request.provision_key, request.provision_secret) == ("k", "s")
    assert (request.device_name, request.token, request.gateway) == ("d", "t", True)
    assert request.credentials_type == "ACCESS_TOKEN"


def test_attribute_query() -> None:
    """Query elements need exactly one '=', the last wins and keys split on commas."""
    assert attribute_query([b"clientKeys=a,b", b"sharedKeys=c"]) == (
        frozenset({"a", "b"}),
        frozenset({"c"}),
    )
    assert attribute_query([b"clientKeys=a", b"clientKeys=b", b"x=y=z", b"clientKeys="]) == (
        frozenset({"b"}),
        frozenset(),
    )


@pytest.mark.parametrize(
    ("segments", "route"),
    [
        ([b"tok", b"telemetry"], Route("tok", "telemetry")),
        ([b"provision"], Route(None, "provision")),
        ([b"rpc", b"12"], Route(None, "rpc", "12")),
        ([b"tok", b"rpc", b"12"], Route("tok", "rpc", "12")),
        ([b"x", b"provision"], Route("x", "provision")),
        ([], Route(None, None)),
    ],
)
def test_parse_route(segments: list[bytes], route: Route) -> None:
    """Paths after /api/v1 are parsed by position as ThingsBoard does."""
    assert parse_route(segments) == route
