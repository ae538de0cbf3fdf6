"""
Hostile payloads and paths over the ThingsBoard dialect (issue 15, items 5,
6, 7 and 9): each refused with a 4.xx and a reason, nothing stored, nothing
logged above debug.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import pytest
from twisted.internet.task import Clock
from twisted.logger import LogLevel, globalLogPublisher

from gateway.coap import numbers as n
from gateway.dialects.failures import TOO_MANY_REQUESTS
from gateway.dialects.thingsboard import ThingsBoardDialect
from gateway.dialects.thingsboard.payload import MAX_MS
from gateway.domain.model import AttributeScope, ProvisionStrategy
from gateway.service.build import Services, memory_services
from gateway.service.limits import ServiceLimits
from tests.coap.support import PEER, option
from tests.service.conftest import FAST_HASHER, result

from .conftest import TOKEN, Harness

TELEMETRY = f"api/v1/{TOKEN}/telemetry"
ATTRIBUTES = f"api/v1/{TOKEN}/attributes"
CLAIM = f"api/v1/{TOKEN}/claim"
DIGITS = sys.get_int_max_str_digits()
OTHER = ("127.0.0.9", 40001)


@pytest.fixture
def logged() -> Iterator[list[dict[str, Any]]]:
    """Every log event at info or above while the test runs."""
    events: list[dict[str, Any]] = []

    def observe(event: dict[str, Any]) -> None:
        if event.get("log_level", LogLevel.info) >= LogLevel.info:
            events.append(event)

    globalLogPublisher.addObserver(observe)
    yield events
    globalLogPublisher.removeObserver(observe)


def stored(tb: Harness) -> tuple[list[Any], list[Any]]:
    """The device's latest telemetry and client attributes."""
    return (
        result(tb.services.telemetry.latest(tb.device_id)),
        result(tb.services.attributes.get_attributes(tb.device_id, AttributeScope.CLIENT)),
    )


def limited(clock: Clock, **limits: Any) -> Harness:
    services = result(memory_services(clock, FAST_HASHER, ServiceLimits(**limits)))
    return Harness(clock, services, ThingsBoardDialect())


def test_lone_surrogate_refused_everywhere(tb: Harness, logged: list[Any]) -> None:
    """A lone surrogate escape in a value or key is 4.00 naming its position, for every route."""
    for path, body in (
        (TELEMETRY, b'{"s":"\\ud800"}'),
        (TELEMETRY, b'[{"ts":1,"values":{"s":"x\\udc00"}}]'),
        (ATTRIBUTES, b'{"s":"\\ud800"}'),
        (ATTRIBUTES, b'{"\\udfff":1}'),
        (CLAIM, b'{"secretKey":"\\ud800"}'),
        ("api/v1/provision", b'{"provisionDeviceKey":"\\ud800","provisionDeviceSecret":"s"}'),
    ):
        response = tb.ask(n.POST, path, body)
        assert response.code == n.BAD_REQUEST, (path, body)
        assert response.payload.startswith(b"invalid Unicode: lone surrogate at character "), body
    assert stored(tb) == ([], [])
    assert logged == []


def test_surrogate_pairs_and_escaped_backslashes_are_kept(tb: Harness) -> None:
    """A valid surrogate pair and an escaped backslash before 'ud800' are ordinary text."""
    body = b'{"emoji":"\\ud83d\\ude00","text":"\\\\ud800"}'
    assert tb.ask(n.POST, TELEMETRY, body).code == n.CREATED
    values = {p.key: p.value for p in stored(tb)[0]}
    assert values == {"emoji": "\U0001f600", "text": "\\ud800"}


def test_numbers_past_the_digit_limit_are_400(tb: Harness, logged: list[Any]) -> None:
    """Integers and numeric strings at Python's digit limit are kept; one digit more is 4.00."""
    at_limit = b"9" * DIGITS
    assert tb.ask(n.POST, TELEMETRY, b'{"i":' + at_limit + b"}").code == n.CREATED
    assert tb.ask(n.POST, TELEMETRY, b'{"s":"' + at_limit + b'"}').code == n.CREATED
    for body in (
        b'{"i":' + at_limit + b"9}",
        b'{"s":"' + at_limit + b'9"}',
        b'{"provisionDeviceKey":' + at_limit + b"9}",
    ):
        path = "api/v1/provision" if b"provision" in body else TELEMETRY
        response = tb.ask(n.POST, path, body)
        assert response.code == n.BAD_REQUEST, body[:20]
        assert f"more than {DIGITS} digits".encode() in response.payload
    assert {p.key for p in stored(tb)[0]} == {"i", "s"}
    assert logged == []


@pytest.mark.parametrize(
    "ts", [str(MAX_MS + 1), str(2**70), "1e308", f'"{2**70}"', '"1' + "0" * 5000 + '"', "-1",
           '"\u00b2"', "1.5"]
)
def test_timestamps_out_of_range_are_400(tb: Harness, logged: list[Any], ts: str) -> None:
    """A ts past 9999-12-31, huge, negative or not an integer is 4.00 with the range, not 5.00."""
    body = b'{"ts":%s,"values":{"a":1}}' % ts.encode()
    response = tb.ask(n.POST, TELEMETRY, body)
    assert response.code == n.BAD_REQUEST
    assert response.payload == f"ts must be an integer number of ms from 0 to {MAX_MS}".encode()
    assert stored(tb) == ([], [])
    assert logged == []


def test_timestamp_at_the_range_end_is_kept(tb: Harness) -> None:
    """The last millisecond of the year 9999 is a valid ts, as a number or a string."""
    assert tb.ask(n.POST, TELEMETRY, b'{"ts":%d,"values":{"a":1}}' % MAX_MS).code == n.CREATED
    assert tb.ask(n.POST, TELEMETRY, b'{"ts":"%d","values":{"b":1}}' % MAX_MS).code == n.CREATED
    assert {p.key: p.ts for p in stored(tb)[0]} == {"a": MAX_MS, "b": MAX_MS}


def test_claim_durations_are_range_checked(tb: Harness, logged: list[Any]) -> None:
    """durationMs up to the range end is accepted; 2**70 and 1e308 are 4.00, not 5.00."""
    assert tb.ask(n.POST, CLAIM, b'{"durationMs":%d}' % MAX_MS).code == n.CREATED
    for duration in (b"%d" % (MAX_MS + 1), b"%d" % 2**70, b"1e308"):
        response = tb.ask(n.POST, CLAIM, b'{"durationMs":' + duration + b"}")
        assert response.code == n.BAD_REQUEST
        assert response.payload.startswith(b"durationMs must be an integer number of ms")
    assert logged == []


def test_invalid_utf8_path_is_400_not_a_replaced_token(clock: Clock, services: Services) -> None:
    """Two different invalid byte strings are 4.00, never the token their replacement spells."""
    tb = Harness(clock, services, ThingsBoardDialect())
    result(services.registry.create_device("replaced", access_token="\ufffd\ufffd"))
    for raw in (b"\xff\xfe", b"\x80\x80"):
        response = tb.ask(n.POST, "", b'{"a":1}', options=(
            (n.URI_PATH, b"api"), (n.URI_PATH, b"v1"), (n.URI_PATH, raw),
            (n.URI_PATH, b"telemetry"),
        ))
        assert (response.code, response.payload) == (n.BAD_REQUEST, b"invalid UTF-8 in Uri-Path")


def test_keys_per_request_bound(clock: Clock, logged: list[Any]) -> None:
    """A request with as many keys as the bound is stored; one more is 4.00 naming the bound."""
    tb = limited(clock, max_keys_per_request=3)
    logged.clear()
    assert tb.ask(n.POST, ATTRIBUTES, b'{"a":1,"b":2,"c":3}').code == n.CREATED
    assert tb.ask(n.POST, TELEMETRY, b'[{"a":1,"b":2},{"ts":1,"values":{"c":3}}]').code == (
        n.CREATED
    )
    over = tb.ask(n.POST, ATTRIBUTES, b'{"w":1,"x":2,"y":3,"z":4}')
    assert (over.code, over.payload) == (n.BAD_REQUEST, b"4 keys in one request, at most 3")
    over = tb.ask(n.POST, TELEMETRY, b'[{"w":1,"x":2},{"ts":1,"values":{"y":3,"z":4}}]')
    assert (over.code, over.payload) == (n.BAD_REQUEST, b"4 data points in one request, at most 3")
    telemetry, attributes = stored(tb)
    assert {p.key for p in telemetry} == {"a", "b", "c"}
    assert {a.key for a in attributes} == {"a", "b", "c"}
    assert logged == []


def test_attributes_per_device_bound(clock: Clock) -> None:
    """A device fills its client attributes up to the bound; a new key past it is 4.00."""
    tb = limited(clock, max_attributes_per_device=2)
    assert tb.ask(n.POST, ATTRIBUTES, b'{"a":1}').code == n.CREATED
    assert tb.ask(n.POST, ATTRIBUTES, b'{"b":1}').code == n.CREATED
    assert tb.ask(n.POST, ATTRIBUTES, b'{"a":2,"b":2}').code == n.CREATED  # replacing is fine
    over = tb.ask(n.POST, ATTRIBUTES, b'{"c":1}')
    assert (over.code, over.payload) == (
        n.BAD_REQUEST, b"the device would hold 3 client attributes, at most 2"
    )
    assert {a.key: a.value for a in stored(tb)[1]} == {"a": 2, "b": 2}


def test_attribute_bytes_bound_the_get_response(clock: Clock) -> None:
    """Attributes up to the byte bound are stored and read back whole; a byte more is 4.00."""
    tb = limited(clock, max_attributes_size=20)
    # "a" + '"' + 16 x + '"' = 1 + 18 bytes; "b" + "1" = 2 bytes: 21 > 20.
    assert tb.ask(n.POST, ATTRIBUTES, b'{"a":"%s"}' % (b"x" * 17)).code == n.CREATED
    over = tb.ask(n.POST, ATTRIBUTES, b'{"b":1}')
    assert (over.code, over.payload) == (
        n.BAD_REQUEST, b"the device's client attributes would take 22 bytes, at most 20"
    )
    response = tb.ask(n.GET, ATTRIBUTES)
    assert (response.code, response.payload) == (n.CONTENT, b'{"client":{"a":"%s"}}' % (b"x" * 17))


def test_wrong_tokens_throttle_only_their_source(clock: Clock, logged: list[Any]) -> None:
    """
    A source gets 4.01 for each wrong token within its budget, then 4.29 with
    Max-Age (its right tokens too) until the clock refills it, while another
    source's device is served throughout.
    """
    tb = limited(clock, wrong_credentials_per_source=3, wrong_credentials_refill=30.0)
    logged.clear()
    for _ in range(3):
        assert tb.ask(n.POST, "api/v1/WRONG/telemetry", b'{"a":1}').code == n.UNAUTHORIZED
    throttled = tb.ask(n.POST, TELEMETRY, b'{"a":1}')
    assert (throttled.code, throttled.payload) == (
        TOO_MANY_REQUESTS, b"too many wrong credentials from this address"
    )
    assert option(throttled, n.MAX_AGE) == 10
    assert tb.ask(n.POST, TELEMETRY, b'{"b":2}', peer=OTHER).code == n.CREATED
    clock.advance(10)
    assert tb.ask(n.POST, TELEMETRY, b'{"c":3}').code == n.CREATED
    assert {p.key for p in stored(tb)[0]} == {"b", "c"}
    [status] = tb.services.guard.sources()
    assert (status.source, status.wrong, status.throttled) == (PEER[0], 3, 1)
    # The one line saying so, at info; no line per request.
    assert [e["source"] for e in logged] == [PEER[0]]


def test_wrong_provisioning_secrets_count_as_wrong_credentials(clock: Clock) -> None:
    """Guessing a provisioning secret spends the source's budget like a wrong token."""
    tb = limited(clock, wrong_credentials_per_source=2)
    result(tb.services.registry.create_profile(_provisioning_profile()))
    body = b'{"provisionDeviceKey":"key","provisionDeviceSecret":"guess","deviceName":"d"}'
    for _ in range(2):
        assert tb.ask(n.POST, "api/v1/provision", body).code == n.BAD_REQUEST
    assert tb.ask(n.POST, "api/v1/provision", body).code == TOO_MANY_REQUESTS
    assert tb.services.guard.wrong_total == 2


def _provisioning_profile() -> Any:
    from gateway.domain.model import Profile

    return Profile(
        "provisioned", provisioning=ProvisionStrategy.ALLOW_CREATE_NEW,
        provision_key="key", provision_secret="secret",
    )
