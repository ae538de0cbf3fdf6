"""
Strict RFC 7252 §3 codec between datagrams and C{txthings.coap.Message}.

C{decode} rejects every message format error with L{MessageFormatError};
C{encode} is the inverse for the messages the engine builds.  Option values
that break their format's length bounds, and repeats of non-repeatable
options, are not format errors (RFC 7252 §5.4.3, §5.4.5): elective ones are
dropped, critical ones are listed in C{message.invalid_options} so the
request gets 4.02.
"""

from __future__ import annotations

from typing import Any

from txthings.coap import BlockOption, Message, OpaqueOption, StringOption, UintOption

from . import numbers as n
from .options import table as option_table

_BlockTuple = BlockOption.BlockwiseTuple


class MessageFormatError(ValueError):
    """
    A datagram that is not a well-formed CoAP message.

    @ivar mtype: the message type if the header could be read, else L{None}.
    @ivar mid: the message ID if the header could be read, else L{None}.
    """

    def __init__(self, reason: str, mtype: int | None = None, mid: int | None = None):
        super().__init__(reason)
        self.reason = reason
        self.mtype = mtype
        self.mid = mid


class TooManyOptions(MessageFormatError):
    """A well-formed message with more options than the engine takes."""


def _uint(raw: bytes) -> int:
    return int.from_bytes(raw, "big")


def _make_option(number: int, fmt: str, raw: bytes) -> Any:
    if fmt == n.UINT:
        option = UintOption(number, _uint(raw))
    elif fmt == n.BLOCK:
        value = _uint(raw)
        option = BlockOption(number)
        option.value = _BlockTuple(value >> 4, bool(value & 0x08), value & 0x07)
    elif fmt == n.STRING:
        option = StringOption(number, raw)
    else:
        option = OpaqueOption(number, raw)
    return option


def decode_header(data: bytes) -> tuple[int, int, bytes, int]:
    """
    C{(mtype, mid, token, code)} of a datagram, reading nothing past the
    token (for one too large to parse whole).

    @raise MessageFormatError: when the header or token is malformed.
    """
    if len(data) < 4 or data[0] >> 6 != 1:
        raise MessageFormatError("no CoAP header")
    mtype = (data[0] >> 4) & 3
    tkl = data[0] & 0x0F
    mid = (data[2] << 8) | data[3]
    if tkl > 8 or 4 + tkl > len(data):
        raise MessageFormatError("bad token length", mtype, mid)
    return mtype, mid, data[4 : 4 + tkl], data[1]


def decode(data: bytes, max_options: int = 1 << 16) -> Any:
    """
    Parse one datagram into a C{txthings.coap.Message}.

    @raise MessageFormatError: for any RFC 7252 §3 format error.
    @raise TooManyOptions: past C{max_options} options (each costs an object,
        so thousands of one-byte options would cost far more than their bytes).
    """
    size = len(data)
    if size < 4:
        raise MessageFormatError("shorter than the 4-byte header")
    first = data[0]
    if first >> 6 != 1:
        raise MessageFormatError("unknown version")
    mtype = (first >> 4) & 3
    tkl = first & 0x0F
    code = data[1]
    mid = (data[2] << 8) | data[3]
    if tkl > 8:
        raise MessageFormatError("token length 9-15 is reserved", mtype, mid)
    pos = 4 + tkl
    if pos > size:
        raise MessageFormatError("truncated token", mtype, mid)
    cls = code >> 5
    if cls in (1, 6, 7):
        raise MessageFormatError("reserved code class", mtype, mid)
    if code == n.EMPTY and size != 4:
        raise MessageFormatError("empty message with token, options or payload", mtype, mid)

    message = Message(mtype=mtype, mid=mid, code=code, token=data[4:pos])
    options = option_table(message)
    invalid: list[int] = []
    count = 0
    number = 0
    payload = b""
    while pos < size:
        byte = data[pos]
        pos += 1
        if byte == 0xFF:
            if pos == size:
                raise MessageFormatError("payload marker with empty payload", mtype, mid)
            payload = data[pos:]
            break
        count += 1
        if count > max_options:
            raise TooManyOptions(f"more than {max_options} options", mtype, mid)
        delta = byte >> 4
        length = byte & 0x0F
        # Delta and length are decoded inline, not by a shared helper: this
        # loop runs for every option of every datagram.
        if delta == 13:
            if pos >= size:
                raise MessageFormatError("truncated option delta", mtype, mid)
            delta = data[pos] + 13
            pos += 1
        elif delta == 14:
            if pos + 2 > size:
                raise MessageFormatError("truncated option delta", mtype, mid)
            delta = ((data[pos] << 8) | data[pos + 1]) + 269
            pos += 2
        elif delta == 15:
            raise MessageFormatError("option delta nibble 15", mtype, mid)
        if length == 13:
            if pos >= size:
                raise MessageFormatError("truncated option length", mtype, mid)
            length = data[pos] + 13
            pos += 1
        elif length == 14:
            if pos + 2 > size:
                raise MessageFormatError("truncated option length", mtype, mid)
            length = ((data[pos] << 8) | data[pos + 1]) + 269
            pos += 2
        elif length == 15:
            raise MessageFormatError("option length nibble 15", mtype, mid)
        number += delta
        if number > 0xFFFF:
            raise MessageFormatError("option number over 65535", mtype, mid)
        end = pos + length
        if end > size:
            raise MessageFormatError("truncated option value", mtype, mid)
        raw = data[pos:end]
        pos = end
        spec = n.OPTION_FORMATS.get(number)
        if spec is None:
            options.setdefault(number, []).append(OpaqueOption(number, raw))
            continue
        fmt, low, high, repeatable = spec
        if not low <= length <= high or (not repeatable and number in options):
            if number & 1:
                invalid.append(number)
            continue
        option = _make_option(number, fmt, raw)
        existing = options.get(number)
        if existing is None:
            options[number] = [option]
        else:
            existing.append(option)
    message.payload = payload
    message.invalid_options = invalid
    return message


def _option_value(option: Any) -> bytes:
    value = option.value
    if isinstance(option, BlockOption):
        number, more, szx = value
        value = (number << 4) | (0x08 if more else 0) | szx
    if isinstance(value, int):
        return value.to_bytes((value.bit_length() + 7) // 8, "big")
    if isinstance(value, str):
        return value.encode("utf-8")
    return bytes(value)


def _extended(value: int) -> tuple[int, bytes]:
    if value < 13:
        return value, b""
    if value < 269:
        return 13, bytes((value - 13,))
    return 14, (value - 269).to_bytes(2, "big")


def _encode_options(table: dict[int, list[Any]]) -> bytes:
    out = bytearray()
    previous = 0
    for number in sorted(table):
        for option in table[number]:
            raw = _option_value(option)
            delta, delta_ext = _extended(number - previous)
            length, length_ext = _extended(len(raw))
            out.append((delta << 4) | length)
            out += delta_ext
            out += length_ext
            out += raw
            previous = number
    return bytes(out)


def encode(message: Any) -> bytes:
    """Serialise a C{txthings.coap.Message}; the inverse of L{decode}."""
    token = message.token or b""
    if len(token) > 8:
        raise ValueError("token longer than 8 bytes")
    head = bytes(
        (
            0x40 | (message.mtype << 4) | len(token),
            message.code,
            (message.mid >> 8) & 0xFF,
            message.mid & 0xFF,
        )
    )
    payload = message.payload
    if isinstance(payload, str):
        payload = payload.encode("utf-8")
    table = option_table(message)
    options = _encode_options(table) if table else b""
    if payload:
        return b"".join((head, token, options, b"\xff", payload))
    return head + token + options


def empty(mtype: int, mid: int) -> bytes:
    """An empty ACK or RST (or ping) for C{mid}: no token, no options."""
    return bytes((0x40 | (mtype << 4), 0, (mid >> 8) & 0xFF, mid & 0xFF))
