# -*- test-case-name: tests.api.test_app -*-
"""
Request and response helpers: the API's error type and checks on decoded
JSON bodies and query strings.  Every check raises L{ApiError} (400) with a
message naming the field at fault.
"""

from __future__ import annotations

import json
from typing import Any, Collection, Mapping, Optional

__all__ = [
    "ApiError",
    "dumps",
    "expect_object",
    "optional_str",
    "optional_bool",
    "optional_int",
    "require_str",
    "split_keys",
]


class ApiError(Exception):
    """A failure the API answers with C{status} and C{{"error": message}}."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def dumps(value: Any) -> bytes:
    """Compact UTF-8 JSON."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def expect_object(
    value: Any,
    allowed: Collection[str],
    required: Collection[str] = (),
    what: str = "body",
) -> dict[str, Any]:
    """
    C{value} as a JSON object holding only C{allowed} keys and every
    C{required} one.
    """
    if not isinstance(value, dict):
        raise ApiError(400, f"{what} must be a JSON object")
    unknown = sorted(set(value) - set(allowed))
    if unknown:
        raise ApiError(400, f"{what}: unknown field {unknown[0]!r}")
    for key in required:
        if key not in value:
            raise ApiError(400, f"{what}: missing field {key!r}")
    return value


def require_str(obj: Mapping[str, Any], key: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value:
        raise ApiError(400, f"{key!r} must be a non-empty string")
    return value


def optional_str(obj: Mapping[str, Any], key: str) -> Optional[str]:
    if obj.get(key) is None:
        return None
    return require_str(obj, key)


def optional_bool(obj: Mapping[str, Any], key: str) -> Optional[bool]:
    value = obj.get(key)
    if value is not None and not isinstance(value, bool):
        raise ApiError(400, f"{key!r} must be true or false")
    return value


def optional_int(obj: Mapping[str, Any], key: str) -> Optional[int]:
    value = obj.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ApiError(400, f"{key!r} must be a non-negative integer")
    return value


def split_keys(text: Optional[str]) -> Optional[list[str]]:
    """C{"a,b"} as C{["a", "b"]}; C{None} (no filter) when absent."""
    if text is None:
        return None
    keys = [k.strip() for k in text.split(",") if k.strip()]
    if not keys:
        raise ApiError(400, "'keys' must list at least one key")
    return keys
