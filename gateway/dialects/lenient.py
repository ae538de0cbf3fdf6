# -*- test-case-name: tests.dialects.test_lenient -*-
"""
Device JSON read the way ThingsBoard reads it: with Gson's lenient
C{JsonParser}.

Firmware written against ThingsBoard (and ThingsBoard's own guide, with
C{-e "{temperature:25}"}) sends what strict JSON refuses.  L{decode} accepts
what that parser accepts:

 - names and strings unquoted or in single quotes (C{{temperature:25}},
   C{{'a':'b'}}).  An unquoted value is a number when it is one, C{true},
   C{false} or C{null} in any letter case, and a string otherwise
   (C{{t:25C}} is C{{"t":"25C"}}).  An unquoted word ends at whitespace or
   at one of C{/ \\ ; # = { } [ ] : ,};
 - comments: C{//} and C{#} to the end of the line, C{/* ... */};
 - C{=} or C{=>} instead of C{:}, C{;} instead of C{,};
 - an element missing from an array is C{null}: C{[1,,2]}, C{[1,]}, C{[,]};
 - the non-execute prefix C{)]}'} and a newline, and a byte order mark;
 - the escapes C{\\'} and backslash-newline, and raw control characters
   inside strings.

What it refuses stays refused: an unterminated string or comment, a
missing name or colon, C{{"a":1,}}, an unknown escape, C{\\u} without four
hex digits, anything after the value.  The error's C{pos} is the offset of
the offending character in the decoded text, counted from 0.

Strict JSON reads the same both ways, so L{decode} tries the strict decoder
first and only what that refuses is translated (L{translate}) into strict
JSON text for the same strict decoder, which keeps all its checks: the
nesting limit, the refusal of C{NaN} and infinities, whatever it does with
numbers and escapes.  Deliberate differences from Gson:

 - an unquoted C{NaN}, C{Infinity}, C{+Infinity} or C{-Infinity} is handed
   on as the constant, which the strict decoder refuses: Gson would read a
   string there, but the device meant a number, which the store cannot
   hold;
 - a number literal stays a number however long (Gson reads one of 1024
   characters or more as a string);
 - C{null} followed by more text is refused (Gson's C{JsonParser} ignores
   what follows a top-level C{null}).
"""

from __future__ import annotations

import json
import re
from typing import Callable, NoReturn

from gateway.domain.model import JSONValue

__all__ = ["LenientJSONError", "decode", "translate"]


class LenientJSONError(json.JSONDecodeError):
    """Text that even the lenient reading refuses; C{pos} is where."""


#: A strict decoder: C{json.loads} with the dialect's checks.
Decoder = Callable[[str], JSONValue]

_SPACE = " \t\r\n"
#: The characters that end an unquoted word (Gson's C{isLiteral} is false).
_BREAK = "/\\;#={}[]:, \t\f\r\n"
_WORD = re.compile(r"[^/\\;#={}\[\]:, \t\f\r\n]+")
_NUMBER = re.compile(r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?")
_HEX4 = re.compile(r"[0-9a-fA-F]{4}")
_EOL = re.compile(r"[\r\n]")
#: What ends a run of plain characters inside a string of each quote.
_STRING_STOP = {'"': re.compile(r'["\\]'), "'": re.compile(r"['\\]")}
_KEYWORDS = ("true", "false", "null")
#: Unquoted words Java's Double.parseDouble reads as non-finite numbers.
_CONSTANTS = {"NaN": "NaN", "Infinity": "Infinity", "+Infinity": "Infinity",
              "-Infinity": "-Infinity"}
#: Escapes after a backslash, as strict JSON writes them.
_ESCAPES = {
    "t": "\\t", "b": "\\b", "n": "\\n", "r": "\\r", "f": "\\f", '"': '\\"', "\\": "\\\\",
    "/": "/", "'": "'", "\n": "\\n",
}
_PREFIX = ")]}'\n"


def decode(text: str, strict: Decoder) -> JSONValue:
    """
    Decode C{text} with C{strict}, or else its lenient reading with
    C{strict}; L{LenientJSONError} when neither reads it.
    """
    try:
        return strict(text)
    except json.JSONDecodeError:
        pass
    return strict(translate(text))


def translate(text: str) -> str:
    """The strict JSON text of C{text} read leniently."""
    return _Translator(text).run()


def _quoted(raw: str) -> str:
    return json.dumps(raw, ensure_ascii=False)


class _Translator:
    """One pass over the text, with a stack instead of recursion."""

    def __init__(self, text: str) -> None:
        self._text = text
        self._pos = 1 if text.startswith("\ufeff") else 0
        self._out: list[str] = []
        #: The open containers, "[" or "{".
        self._open: list[str] = []

    def _fail(self, why: str, pos: int | None = None) -> NoReturn:
        raise LenientJSONError(why, self._text, self._pos if pos is None else pos)

    def run(self) -> str:
        self._skip()
        if self._text.startswith(_PREFIX, self._pos):
            self._pos += len(_PREFIX)
        self._value()
        while self._open:
            if self._open[-1] == "[":
                self._array()
            else:
                self._object()
        if self._peek():
            self._fail("more text after the JSON value")
        return "".join(self._out)

    # -- characters ------------------------------------------------------------

    def _skip(self) -> None:
        """Skip whitespace and comments."""
        text = self._text
        while self._pos < len(text):
            c = text[self._pos]
            if c in _SPACE:
                self._pos += 1
            elif c == "#" or text.startswith("//", self._pos):
                eol = _EOL.search(text, self._pos)
                self._pos = len(text) if eol is None else eol.end()
            elif text.startswith("/*", self._pos):
                close = text.find("*/", self._pos + 2)
                if close < 0:
                    self._fail("unterminated comment")
                self._pos = close + 2
            else:
                return

    def _peek(self) -> str:
        """The next character that is no whitespace or comment; "" at the end."""
        self._skip()
        return self._text[self._pos] if self._pos < len(self._text) else ""

    # -- structure ---------------------------------------------------------------

    def _value(self) -> None:
        """Translate one value, or open its container."""
        c = self._peek()
        if c in ("[", "{"):
            self._out.append(c)
            self._open.append(c)
            self._pos += 1
        elif c in ('"', "'"):
            self._out.append(self._string(c))
        elif c == "" or c in _BREAK:
            self._fail("expected a value")
        else:
            self._out.append(self._scalar())

    def _close(self, c: str) -> None:
        self._out.append(c)
        self._open.pop()
        self._pos += 1

    def _array(self) -> None:
        """After C{[} or an element: the next element, or the end."""
        first = self._out[-1] == "["
        c = self._peek()
        if c == "]":
            self._close(c)
            return
        if not first:
            if c not in (",", ";"):
                self._fail("expected ',' or ']'")
            self._out.append(",")
            self._pos += 1
            c = self._peek()
        if c in (",", ";", "]"):
            # An omitted element: null, its separator left for next time.
            self._out.append("null")
        else:
            self._value()

    def _object(self) -> None:
        """After C{{} or a member: the next member (up to its value), or the end."""
        c = self._peek()
        if c == "}":
            self._close(c)
            return
        if self._out[-1] != "{":
            if c not in (",", ";"):
                self._fail("expected ',' or '}'")
            self._out.append(",")
            self._pos += 1
            c = self._peek()
        if c in ('"', "'"):
            name = self._string(c)
        elif c and c not in _BREAK:
            name = _quoted(self._word())
        else:
            self._fail("expected a name")
        self._out.append(name)
        c = self._peek()
        if c == ":":
            self._pos += 1
        elif c == "=":
            self._pos += 2 if self._text.startswith("=>", self._pos) else 1
        else:
            self._fail("expected ':' after the name")
        self._out.append(":")
        self._value()

    # -- scalars -----------------------------------------------------------------

    def _word(self) -> str:
        match = _WORD.match(self._text, self._pos)
        assert match is not None, "called on a word character"
        self._pos = match.end()
        return match.group()

    def _scalar(self) -> str:
        """An unquoted value: keyword, number, or else a string."""
        text, start = self._text, self._pos
        for keyword in _KEYWORDS:
            end = start + len(keyword)
            candidate = text[start:end]
            if len(candidate) == len(keyword) and all(
                ch in (k, k.upper()) for ch, k in zip(candidate, keyword, strict=True)
            ) and (end == len(text) or text[end] in _BREAK):
                self._pos = end
                return keyword
        number = _NUMBER.match(text, start)
        if number is not None and (number.end() == len(text) or text[number.end()] in _BREAK):
            self._pos = number.end()
            return number.group()
        word = self._word()
        return _CONSTANTS.get(word) or _quoted(word)

    def _string(self, quote: str) -> str:
        """A quoted string (the quote at C{pos}) as a strict JSON string."""
        text, start = self._text, self._pos
        pos = start + 1
        parts = ['"']
        stop = _STRING_STOP[quote]
        while True:
            found = stop.search(text, pos)
            if found is None:
                self._fail("unterminated string", start)
            end = found.start()
            parts.append(_quoted(text[pos:end])[1:-1])
            if text[end] == quote:
                self._pos = end + 1
                parts.append('"')
                return "".join(parts)
            escaped = text[end + 1 : end + 2]
            if escaped == "u":
                if _HEX4.fullmatch(text, end + 2, end + 6) is None:
                    self._fail("\\u needs four hex digits", end)
                parts.append(text[end : end + 6])
                pos = end + 6
            elif escaped in _ESCAPES:
                parts.append(_ESCAPES[escaped])
                pos = end + 2
            else:
                self._fail("invalid escape sequence", end)
