"""
The tokeniser of the proto3 parser: identifiers, numbers, strings and
punctuation, each with its line; comments and white space are dropped.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import attrs

from gateway.protobuf.errors import SchemaError

__all__ = ["Token", "tokenise"]

_TOKEN = re.compile(
    r"""
    (?P<space>[ \t\r\f\v]+)
  | (?P<newline>\n)
  | (?P<line_comment>//[^\n]*)
  | (?P<block_comment>/\*.*?\*/)
  | (?P<number>0[xX][0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<string>"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')
  | (?P<symbol>[{}\[\]()<>;=,.:+\-])
    """,
    re.VERBOSE | re.DOTALL,
)

_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'", "0": "\0"}


@attrs.frozen
class Token:
    """One token: its C{kind} (ident, number, string, symbol, end), text and line."""

    kind: str
    text: str
    line: int

    @property
    def value(self) -> str:
        """A string token's contents, its common escapes decoded."""
        body = self.text[1:-1]
        return re.sub(r"\\(.)", lambda m: _ESCAPES.get(m.group(1), m.group(1)), body)


def tokenise(text: str, file: str) -> Iterator[Token]:
    """Yield the tokens of C{text}, then one C{end} token."""
    line = 1
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            if text.startswith("/*", pos):
                raise SchemaError("unterminated comment", file=file, line=line)
            if text[pos] in "\"'":
                raise SchemaError("unterminated string", file=file, line=line)
            raise SchemaError(f"unexpected character {text[pos]!r}", file=file, line=line)
        kind = match.lastgroup
        assert kind is not None
        if kind in ("ident", "number", "string", "symbol"):
            yield Token(kind, match.group(), line)
        line += match.group().count("\n")
        pos = match.end()
    yield Token("end", "", line)
