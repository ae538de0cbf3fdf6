"""The store refuses values no reader could encode (issue 15, item 5)."""

from __future__ import annotations

import pytest

from gateway.domain.errors import InvalidArgument
from gateway.domain.model import AttributeScope
from gateway.store.unit import AppendTelemetry, SetAttributes
from gateway.store.values import decode_json, encode_json


@pytest.mark.parametrize("value", ["\ud800", ["ok", {"k": "x\udfff"}], {"\udc00": 1}])
def test_lone_surrogates_refused_below_the_door(value: object) -> None:
    """A lone surrogate anywhere in a JSON value is an InvalidArgument for every operation."""
    with pytest.raises(InvalidArgument, match="lone surrogate"):
        encode_json(value)
    with pytest.raises(InvalidArgument):
        SetAttributes("d", AttributeScope.SHARED, {"k": value}, 1)
    with pytest.raises(InvalidArgument):
        AppendTelemetry("d", [(1, {"k": value})])


def test_other_characters_round_trip() -> None:
    """Characters beyond the BMP and escaped backslashes are stored and read back as given."""
    value = {"e": "\U0001f600", "b": "\\ud800", "é": "ü"}
    assert decode_json(encode_json(value)) == value


@pytest.mark.parametrize("build", [
    lambda: SetAttributes("d", AttributeScope.SHARED, {"k\x00": 1}, 1),
    lambda: AppendTelemetry("d\x00", [(1, {"k": 1})]),
])
def test_nul_in_text_refused_for_every_backend(build: object) -> None:
    """A NUL character in stored text is an InvalidArgument before any backend sees it."""
    with pytest.raises(InvalidArgument, match="NUL"):
        build()  # type: ignore[operator]


def test_nul_inside_a_json_value_is_kept() -> None:
    """A NUL inside a JSON value travels escaped, so it is stored and read back."""
    assert decode_json(encode_json({"k": "a\x00b"})) == {"k": "a\x00b"}
