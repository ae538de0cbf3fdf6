# -*- test-case-name: tests.dialects.test_drogue_query -*-
"""
The path and query of a Drogue publish (reference A.1).

The channel is the segment after C{v1}; later segments are the subject
suffix (kept, where Drogue drops it).  Every Uri-Query option is read and
percent-decoded, each one holding one parameter or several joined by C{&}
(Drogue reads only the first option); a parameter given twice keeps the
last.  Anything that does not parse is a 4.00 with the reason: Drogue
ignores it on C{/v1/{channel}} and sends no answer at all with a suffix.
"""

from __future__ import annotations

from typing import Optional, Sequence
from urllib.parse import unquote_plus

import attrs

from gateway.coap import errors

__all__ = ["PublishOptions", "parse_path", "parse_query"]

#: The parameters read, with C{commandTimeout} an alias of C{ct}.
_NAMES = {
    "application": "application",
    "device": "device",
    "data_schema": "data_schema",
    "as": "as_",
    "ct": "ct",
    "commandTimeout": "ct",
}


@attrs.frozen
class PublishOptions:
    """A publish's query parameters (C{as_} is Drogue's C{as}; C{ct} in seconds)."""

    application: Optional[str] = None
    device: Optional[str] = None
    data_schema: Optional[str] = None
    as_: Optional[str] = None
    ct: Optional[int] = None


def _text(segment: bytes, what: str) -> str:
    try:
        return segment.decode("utf-8")
    except UnicodeDecodeError:
        raise errors.BadRequest(f"Invalid data: {what} is not UTF-8") from None


def parse_path(segments: Sequence[bytes]) -> tuple[str, Optional[str]]:
    """The channel and subject suffix of the segments after C{v1}."""
    if not segments or not segments[0]:
        raise errors.BadRequest("Invalid data: Error parsing path: no channel")
    channel = _text(segments[0], "the channel")
    rest = [_text(s, "the path") for s in segments[1:]]
    return channel, "/".join(rest) if rest else None


def parse_query(options: Sequence[bytes]) -> PublishOptions:
    """The parameters of every Uri-Query option; unknown names are ignored."""
    found: dict[str, object] = {}
    for option in options:
        for pair in _text(option, "a Uri-Query option").split("&"):
            if not pair:
                continue
            name, eq, value = pair.partition("=")
            if not eq:
                raise errors.BadRequest(f"Invalid data: query parameter {name!r} has no value")
            field = _NAMES.get(unquote_plus(name))
            if field is None:
                continue
            text = unquote_plus(value)
            if field == "ct":
                if not text.isascii() or not text.isdigit() or len(text) > 18:
                    raise errors.BadRequest("Invalid data: ct must be whole seconds")
                found[field] = int(text)
            else:
                found[field] = text
    return PublishOptions(**found)  # type: ignore[arg-type]
