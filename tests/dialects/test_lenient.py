"""
Gson-lenient JSON: what ThingsBoard's parser reads is read to the same
values, what it refuses is refused with the offset, and the strict decoder
keeps the last word.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.dialects.lenient import LenientJSONError, decode, translate


def strict(text: str) -> Any:
    def refuse(name: str) -> Any:
        raise ValueError(f"{name} refused")

    return json.loads(text, parse_constant=refuse)


def lenient(text: str) -> Any:
    return decode(text, strict)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("{temperature:25}", {"temperature": 25}),
        ("{'a':'b\"c', \"d\":'e'}", {"a": 'b"c', "d": "e"}),
        ("{t:25C, w:hello-world, q:it's}", {"t": "25C", "w": "hello-world", "q": "it's"}),
        ("{a:TRUE, b:False, c:nULL, d:truthy, e:nullx}",
         {"a": True, "b": False, "c": None, "d": "truthy", "e": "nullx"}),
        ("{a:-0, b:1.5e3, c:01, d:1., e:.5, f:+1, g:0x1f, h:-}",
         {"a": 0, "b": 1500.0, "c": "01", "d": "1.", "e": ".5", "f": "+1", "g": "0x1f", "h": "-"}),
        ("{a=1; b=>2, 3:x}", {"a": 1, "b": 2, "3": "x"}),
        ("[1,,2]", [1, None, 2]),
        ("[1,]", [1, None]),
        ("[,]", [None, None]),
        ("[1;2]", [1, 2]),
        ("// first\n{a:1 /* here */, # there\r b:2} // last", {"a": 1, "b": 2}),
        (")]}'\n{a:1}", {"a": 1}),
        ("\ufeff{a:1}", {"a": 1}),
        ("{a:'\\u00e9\\'\\/\\\n', b:'tab\there'}", {"a": "é'/\n", "b": "tab\there"}),
        ("{true:1, null:2}", {"true": 1, "null": 2}),
        ("{a:1, a:2}", {"a": 2}),
        ("hello", "hello"),
        ("{a:123456789012345678901234567890}", {"a": 123456789012345678901234567890}),
        ("{a:'\\ud83d\\ude00'}", {"a": "\U0001f600"}),
    ],
)
def test_accepted_as_gson_reads_it(text: str, value: Any) -> None:
    """Unquoted or single-quoted names and strings, comments and Gson's separators read as Gson."""
    assert lenient(text) == value


@pytest.mark.parametrize(
    ("text", "pos", "why"),
    [
        ("{a:1,}", 5, "expected a name"),
        ("{a", 2, "expected ':' after the name"),
        ("{'a':1", 6, "expected ',' or '}'"),
        ("[1 2]", 3, "expected ',' or ']'"),
        ("{a:}", 3, "expected a value"),
        ("{a:,}", 3, "expected a value"),
        ("{a:'x}", 3, "unterminated string"),
        ("{a:'\\x'}", 4, "invalid escape sequence"),
        ("{a:'\\u12'}", 4, "\\u needs four hex digits"),
        ("/* never closed", 0, "unterminated comment"),
        ("{a:1} {b:2}", 6, "more text after the JSON value"),
        ("null x", 5, "more text after the JSON value"),
        ("{a:1};", 5, "more text after the JSON value"),
        ("  ", 2, "expected a value"),
    ],
)
def test_refused_with_offset(text: str, pos: int, why: str) -> None:
    """What Gson refuses is refused, with the offset (from 0) of the offending character."""
    with pytest.raises(LenientJSONError) as raised:
        lenient(text)
    assert (raised.value.pos, raised.value.msg) == (pos, why)


def test_non_finite_numbers_go_to_the_strict_refusal() -> None:
    """Unquoted NaN and infinities reach the strict decoder as constants, which it refuses."""
    assert translate("{a:NaN, b:Infinity, c:+Infinity, d:-Infinity}") == (
        '{"a":NaN,"b":Infinity,"c":Infinity,"d":-Infinity}'
    )
    with pytest.raises(ValueError, match="NaN refused"):
        lenient("{a:NaN}")


def test_strict_json_is_decoded_strictly_once() -> None:
    """Text the strict decoder reads is not translated: the strict decoder runs once, on it."""
    seen: list[str] = []

    def spy(text: str) -> Any:
        seen.append(text)
        return strict(text)

    assert decode('{"a": [1, "x"]}', spy) == {"a": [1, "x"]}
    assert seen == ['{"a": [1, "x"]}']
    assert decode("{a:1}", spy) == {"a": 1}
    assert seen[1:] == ["{a:1}", '{"a":1}']


def test_deep_nesting_translates_without_recursion() -> None:
    """A very deep document is translated in one pass; the depth is left to the strict decoder."""
    depth = 100_000
    assert translate("[" * depth + "]" * depth) == "[" * depth + "]" * depth


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    max_leaves=20,
)


@given(_JSON)
def test_strict_json_translates_to_itself(value: Any) -> None:
    """Strict JSON read leniently is the same value: the strict-first shortcut changes nothing."""
    assert strict(translate(json.dumps(value))) == value
    assert strict(translate(json.dumps(value, indent=1, ensure_ascii=False))) == value


@given(st.text(alphabet="{}[]:,;='\"\\/#*\n\t aZ0-1.eE+uNI>)", max_size=40))
def test_any_text_is_refused_or_valid_json(text: str) -> None:
    """Any text translates to valid strict JSON or is refused with an offset within it."""
    try:
        out = translate(text)
    except LenientJSONError as e:
        assert 0 <= e.pos <= len(text)
    else:
        json.loads(out, parse_constant=float)
