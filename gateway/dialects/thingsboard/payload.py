# -*- test-case-name: tests.dialects.test_thingsboard_payload -*-
"""
ThingsBoard's JSON payload rules (reference section 3), as pure functions.

Every rule violation raises L{PayloadError} (L{gateway.dialects.jsonio}'s,
like the JSON decoding), a 4.00 with the error's short text.  Each rule
takes a payload (C{telemetry_records}, ...) or what was decoded already
(C{telemetry_of}, ...: protobuf printed as JSON follows the same rules).

 - Telemetry: a flat object (stamped with server time), an object with both
   C{ts} and C{values} (the client's timestamp), or an array mixing both.
 - Attributes and claims: an object.
 - Values: strings, booleans and numbers are kept; nested objects and arrays
   are kept as they are; C{null} is skipped.  Integers of any size are kept
   as the same Python int (ThingsBoard turns integers wider than a long into
   strings; we keep the number).  Numeric strings are cast to numbers when
   C{type_cast} is on (ThingsBoard's C{JSON_TYPE_CAST_ENABLED}, default on).
 - C{max_string_length} (ThingsBoard's C{JSON_MAX_STRING_VALUE_LENGTH}, 0 =
   unlimited): a longer string is a 4.00.  ThingsBoard checks only top-level
   values, so a nested string escapes the limit; we check nested strings too.
 - JSON is strict, or with C{lenient} read as ThingsBoard's Gson parser
   reads it (L{gateway.dialects.lenient}: C{{temperature:25}} and the like).
 - C{NaN} and C{Infinity} are refused, unquoted in lenient JSON too (the
   store would refuse them anyway).
 - Timestamps (C{ts}) and durations (C{durationMs}) are integer ms from 0
   to L{MAX_MS}, the last millisecond of the year 9999: every ts is a date
   and every expiry fits the store's 64 bits.  Beyond that is a 4.00.
 - A numeric string too long for Python's int conversion (over
   C{sys.get_int_max_str_digits()} digits, 4,300 by default) is a 4.00, as
   is an integer literal that long (L{gateway.dialects.jsonio}).

Deliberate differences from ThingsBoard's known bugs:

 - C{"ts": "abc"} is a 5.00 there (an unchecked exception); here a bad
   C{ts} is a 4.00.
 - Telemetry C{[]} is never answered there; here it is accepted (2.01) and
   stores nothing.
"""

from __future__ import annotations

import re
import sys
from typing import Any, Mapping, Optional

import attrs

from gateway.dialects.jsonio import PayloadError, parse_json, parse_object
from gateway.domain.model import JSONValue, TelemetryRecord
from gateway.service.interfaces import ProvisionRequest

__all__ = [
    "PayloadError",
    "JSONRules",
    "MAX_MS",
    "parse_json",
    "telemetry_records",
    "telemetry_of",
    "attribute_values",
    "attributes_of",
    "claim_request",
    "claim_of",
    "client_rpc_request",
    "client_rpc_of",
    "rpc_reply",
    "provision_request",
    "provision_of",
    "attribute_query",
]

#: The largest ts or duration in ms: 9999-12-31T23:59:59.999Z.
MAX_MS = 253_402_300_799_999

#: ThingsBoard's NumberUtils.isParsable: optional minus, digits, one point.
_NUMERIC = re.compile(r"-?(?:\d+(?:\.\d+)?|\.\d+)\Z")


@attrs.frozen
class JSONRules:
    """How JSON values are checked and converted."""

    max_string_length: int = attrs.field(default=0, validator=attrs.validators.ge(0))
    type_cast: bool = attrs.field(default=True, validator=attrs.validators.instance_of(bool))


def _check_strings(value: JSONValue, limit: int, key: str) -> None:
    if isinstance(value, str):
        if len(value) > limit:
            raise PayloadError(f"string value of {key!r} longer than {limit}")
    elif isinstance(value, dict):
        for item in value.values():
            _check_strings(item, limit, key)
    elif isinstance(value, list):
        for item in value:
            _check_strings(item, limit, key)


def _cast(value: str, key: str) -> JSONValue:
    if not _NUMERIC.match(value):
        return value
    if "." in value:
        return float(value)
    if len(value) > sys.get_int_max_str_digits():
        raise PayloadError(
            f"numeric string of {key!r} has more than"
            f" {sys.get_int_max_str_digits()} digits"
        )
    return int(value)


def _values(obj: Mapping[str, Any], rules: JSONRules) -> dict[str, JSONValue]:
    out: dict[str, JSONValue] = {}
    for key, value in obj.items():
        if value is None:
            continue
        if not key:
            raise PayloadError("empty key")
        if rules.max_string_length:
            _check_strings(value, rules.max_string_length, key)
        if rules.type_cast and isinstance(value, str):
            value = _cast(value, key)
        out[key] = value
    return out


def _milliseconds(value: Any, name: str, strings: bool = False) -> int:
    """C{value} as integer ms from 0 to L{MAX_MS}, or a 4.00 naming it."""
    refusal = PayloadError(f"{name} must be an integer number of ms from 0 to {MAX_MS}")
    if isinstance(value, bool):
        raise refusal
    # Sixteen digits hold MAX_MS; a longer string is out of range unparsed.
    if strings and isinstance(value, str) and value.isascii() and value.isdigit():
        if len(value) > 16:
            raise refusal
        value = int(value)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int) or not 0 <= value <= MAX_MS:
        raise refusal
    return value


def _timestamp(ts: Any) -> int:
    return _milliseconds(ts, "ts", strings=True)


def _record(item: Any, rules: JSONRules) -> TelemetryRecord:
    if not isinstance(item, dict):
        raise PayloadError("telemetry must be an object or an array of objects")
    if "ts" in item and "values" in item:
        values = item["values"]
        if not isinstance(values, dict):
            raise PayloadError("telemetry values must be an object")
        return (_timestamp(item["ts"]), _values(values, rules))
    return (None, _values(item, rules))


def telemetry_records(
    payload: bytes, rules: JSONRules, lenient: bool = False
) -> list[TelemetryRecord]:
    """The telemetry records of a payload; ts C{None} means server time."""
    return telemetry_of(parse_json(payload, lenient), rules)


def telemetry_of(data: JSONValue, rules: JSONRules) -> list[TelemetryRecord]:
    """The telemetry records of decoded JSON (or protobuf printed as JSON)."""
    items = data if isinstance(data, list) else [data]
    return [record for record in (_record(item, rules) for item in items) if record[1]]


def attribute_values(
    payload: bytes, rules: JSONRules, lenient: bool = False
) -> dict[str, JSONValue]:
    """Client attributes: a JSON object."""
    return attributes_of(parse_object(payload, "attributes", lenient), rules)


def attributes_of(data: Mapping[str, Any], rules: JSONRules) -> dict[str, JSONValue]:
    """Client attributes of a decoded object."""
    return _values(data, rules)


def claim_request(payload: bytes, lenient: bool = False) -> tuple[str, int]:
    """C{(secretKey, durationMs)}; an empty payload gives C{("", 0)}."""
    if not payload.strip():
        return "", 0
    return claim_of(parse_object(payload, "claim", lenient))


def claim_of(data: Mapping[str, Any]) -> tuple[str, int]:
    """C{(secretKey, durationMs)} of a decoded claim request."""
    secret = data.get("secretKey")
    secret = "" if secret is None else secret
    if not isinstance(secret, str):
        raise PayloadError("secretKey must be a string")
    duration = data.get("durationMs")
    return secret, _milliseconds(0 if duration is None else duration, "durationMs")


def client_rpc_request(payload: bytes, lenient: bool = False) -> tuple[str, JSONValue]:
    """C{(method, params)} of a client-side RPC; C{method} is a required string."""
    return client_rpc_of(parse_object(payload, "an RPC request", lenient))


def client_rpc_of(data: Mapping[str, Any]) -> tuple[str, JSONValue]:
    """C{(method, params)} of a decoded client-side RPC."""
    method = data.get("method")
    if not isinstance(method, str) or not method:
        raise PayloadError("method is required (a non-empty string)")
    return method, data.get("params")


def rpc_reply(payload: bytes, lenient: bool = False) -> dict[str, JSONValue]:
    """A device's reply to a server-side RPC: a JSON object (ThingsBoard's rule)."""
    return parse_object(payload, "an RPC reply", lenient)


def _optional_str(data: Mapping[str, Any], key: str) -> Optional[str]:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise PayloadError(f"{key} must be a string")
    return value


def provision_request(payload: bytes, lenient: bool = False) -> ProvisionRequest:
    """A provisioning request; the key and secret are required strings."""
    return provision_of(parse_object(payload, "provisioning request", lenient))


def provision_of(data: Mapping[str, Any]) -> ProvisionRequest:
    """A decoded provisioning request."""
    key = _optional_str(data, "provisionDeviceKey")
    secret = _optional_str(data, "provisionDeviceSecret")
    if key is None or secret is None:
        raise PayloadError("provisionDeviceKey and provisionDeviceSecret are required")
    gateway = data.get("gateway", False)
    if not isinstance(gateway, bool):
        raise PayloadError("gateway must be a boolean")
    return ProvisionRequest(
        provision_key=key,
        provision_secret=secret,
        device_name=_optional_str(data, "deviceName"),
        credentials_type=_optional_str(data, "credentialsType") or "ACCESS_TOKEN",
        token=_optional_str(data, "token"),
        client_id=_optional_str(data, "clientId"),
        username=_optional_str(data, "username"),
        password=_optional_str(data, "password"),
        hash=_optional_str(data, "hash"),
        gateway=gateway,
    )


def attribute_query(queries: list[bytes]) -> tuple[frozenset[str], frozenset[str]]:
    """
    C{(clientKeys, sharedKeys)} of a GET attributes request's Uri-Query
    options: an element counts only as C{name=value} with exactly one C{=};
    the last occurrence wins; values are comma-separated keys.
    """
    found: dict[str, frozenset[str]] = {}
    for raw in queries:
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
        parts = text.split("=")
        if len(parts) != 2 or not parts[1]:
            continue
        found[parts[0]] = frozenset(key for key in parts[1].split(",") if key)
    return found.get("clientKeys", frozenset()), found.get("sharedKeys", frozenset())
