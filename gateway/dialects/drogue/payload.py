# -*- test-case-name: tests.dialects.test_drogue_payload -*-
"""
A publish's payload as Drogue reads it (reference A.4): the Content-Format
names a media type; a JSON-like one (C{application/json*}, C{text/json*},
C{*+json}) must hold JSON (else 4.06 with the reason, not Drogue's echo of
the payload) and goes on as C{application/json}; others pass as bytes.
Without a Content-Format, JSON is tried, then C{application/octet-stream}.
"""

from __future__ import annotations

from typing import Optional

from gateway.coap import errors
from gateway.dialects import jsonio

__all__ = ["MEDIA_TYPES", "content_format", "media_type", "read_payload"]

#: Content-Format numbers and their media types (coap-lite's table).
MEDIA_TYPES = {
    0: "text/plain; charset=utf-8",
    16: "application/cose; cose-type=\"cose-encrypt0\"",
    40: "application/link-format",
    41: "application/xml",
    42: "application/octet-stream",
    47: "application/exi",
    50: "application/json",
    51: "application/json-patch+json",
    52: "application/merge-patch+json",
    60: "application/cbor",
    61: "application/cwt",
    110: "application/senml+json",
    111: "application/sensml+json",
    112: "application/senml+cbor",
    113: "application/sensml+cbor",
    310: "application/senml+xml",
    311: "application/sensml+xml",
}


def media_type(content_format: Optional[int]) -> Optional[str]:
    """The media type of a Content-Format; C{None} for none or an unknown one."""
    return None if content_format is None else MEDIA_TYPES.get(content_format)


def _base(media: str) -> str:
    return media.split(";", 1)[0].strip().lower()


#: Media types (without parameters) back to their Content-Format.
_FORMATS = {_base(media): number for number, media in MEDIA_TYPES.items()}


def content_format(media: Optional[str]) -> Optional[int]:
    """The Content-Format of a media type (parameters aside); C{None} if it has none."""
    return None if media is None else _FORMATS.get(_base(media))


def _json_like(media: str) -> bool:
    base = _base(media)
    return base.startswith(("application/json", "text/json")) or base.endswith("+json")


def read_payload(payload: bytes, content_format: Optional[int]) -> tuple[bytes, Optional[str]]:
    """
    The payload to publish and its media type, C{None} for JSON (then the
    payload is compact JSON text).
    """
    media = media_type(content_format)
    if media is None:
        try:
            return jsonio.dumps(jsonio.parse_json(payload)), None
        except jsonio.PayloadError:
            return payload, "application/octet-stream"
    if _json_like(media):
        try:
            return jsonio.dumps(jsonio.parse_json(payload)), None
        except jsonio.PayloadError as e:
            raise errors.NotAcceptable(f"Rejected: {e.diagnostic}") from None
    return payload, media
