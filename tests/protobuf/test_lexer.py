"""L{gateway.protobuf.lexer}: proto3 text into tokens with their lines."""

from __future__ import annotations

import pytest

from gateway.protobuf.errors import SchemaError
from gateway.protobuf.lexer import tokenise


def test_tokens_carry_kind_text_and_line() -> None:
    """Comments and white space vanish; each token keeps the line it starts on."""
    text = 'syntax = "proto3"; // a comment\n/* two\nlines */ message A { int32 x = 0x1F; }'
    tokens = list(tokenise(text, "a.proto"))
    assert [(t.kind, t.text, t.line) for t in tokens[:5]] == [
        ("ident", "syntax", 1),
        ("symbol", "=", 1),
        ("string", '"proto3"', 1),
        ("symbol", ";", 1),
        ("ident", "message", 3),
    ]
    assert ("number", "0x1F") in [(t.kind, t.text) for t in tokens]
    assert tokens[-1].kind == "end" and tokens[-1].line == 3


def test_string_values_decode_escapes() -> None:
    """A string token's value drops its quotes and decodes backslash escapes."""
    (token, _) = tokenise(r"'a\'b\\c'", "a.proto")
    assert token.value == "a'b\\c"


@pytest.mark.parametrize(
    ("text", "reason", "line"),
    [
        ("message A {\n  int32 x = 1; # no\n}", "unexpected character '#'", 2),
        ('syntax = "proto3', "unterminated string", 1),
        ("\n\n/* never closed", "unterminated comment", 3),
    ],
)
def test_bad_text_is_refused_with_its_line(text: str, reason: str, line: int) -> None:
    """Characters outside the language, open strings and open comments are refused."""
    with pytest.raises(SchemaError) as caught:
        list(tokenise(text, "a.proto"))
    assert (caught.value.reason, caught.value.line) == (reason, line)
    assert str(caught.value) == f"a.proto, line {line}: {reason}"
