"""L{gateway.domain.text.lone_surrogate}: lone surrogate escapes in JSON text."""

from __future__ import annotations

import json

import pytest

from gateway.domain.text import lone_surrogate


@pytest.mark.parametrize(
    ("text", "at"),
    [
        ('{"s":"\\ud800"}', 6),
        ('"\\uDC00"', 1),
        ('"\\ud83d\\ud83d\\ude00"', 1),  # a high one, then a pair
        ('"\\\\\\ud800"', 3),  # an escaped backslash, then the escape
        ('"ok","\\udbff x"', 6),
    ],
)
def test_lone_surrogates_found_at_their_position(text: str, at: int) -> None:
    """The position of the first escape that decodes to a lone surrogate is given."""
    assert lone_surrogate(text) == at
    decoded = json.loads(text if text.startswith("{") else f"[{text}]")
    with pytest.raises(UnicodeEncodeError):
        json.dumps(decoded, ensure_ascii=False).encode("utf-8")


@pytest.mark.parametrize(
    "text", ['"plain"', '"\\ud83d\\ude00"', '"\\\\ud800"', '"\\u00e9\\n"', '"\U0001f600"']
)
def test_valid_text_has_none(text: str) -> None:
    """Pairs, an escaped backslash before 'ud800' and other escapes are valid text."""
    assert lone_surrogate(text) is None
    json.dumps(json.loads(text), ensure_ascii=False).encode("utf-8")
