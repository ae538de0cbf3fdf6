# -*- test-case-name: tests.dtls.test_records -*-
"""
DTLS 1.2 record framing (RFC 6347 §4.1, §4.2.2), read in Python before
OpenSSL sees a byte.

 - L{parse_client_hello}: the fields of an epoch-0 ClientHello that the
   stateless front end needs (its random, cookie and cipher suites), or
   C{None} for anything else, so garbage from unknown peers costs no
   OpenSSL object;
 - L{pack}: OpenSSL's memory BIO hands out a whole flight at once; it is
   split at record boundaries and packed into datagrams of at most the MTU
   (a record is never split: OpenSSL sizes them by C{set_ciphertext_mtu}).
"""

from __future__ import annotations

from typing import Iterator, Optional

import attrs

__all__ = ["ClientHello", "parse_client_hello", "records", "pack", "single_record"]

RECORD_HEADER = 13
HANDSHAKE_HEADER = 12
CONTENT_HANDSHAKE = 22
CLIENT_HELLO = 1


@attrs.frozen
class ClientHello:
    """
    @ivar random: the client's 32-byte random: a retransmission carries the
        same one, a client that started over a new one.
    @ivar cookie: the cookie it returns (empty on the first ClientHello).
    @ivar suites: the offered cipher suites (IANA numbers); C{None} when the
        message is fragmented and they could not be read.
    """

    random: bytes
    cookie: bytes
    suites: Optional[tuple[int, ...]]


def parse_client_hello(data: bytes) -> Optional[ClientHello]:
    """The ClientHello starting C{data}, or C{None} if it does not start with one."""
    if len(data) < RECORD_HEADER + HANDSHAKE_HEADER + 2 + 32 + 2:
        return None
    if data[0] != CONTENT_HANDSHAKE or data[1] != 0xFE or data[3:5] != b"\0\0":
        return None
    length = int.from_bytes(data[11:13], "big")
    if RECORD_HEADER + length > len(data):
        return None
    body = data[RECORD_HEADER : RECORD_HEADER + length]
    if body[0] != CLIENT_HELLO:
        return None
    message_length = int.from_bytes(body[1:4], "big")
    offset = int.from_bytes(body[6:9], "big")
    fragment = int.from_bytes(body[9:12], "big")
    if offset != 0 or fragment + HANDSHAKE_HEADER > len(body):
        return None
    hello = body[HANDSHAKE_HEADER : HANDSHAKE_HEADER + fragment]
    random = hello[2:34]
    at = 34
    try:
        at += 1 + hello[at]  # session id
        cookie = hello[at + 1 : at + 1 + hello[at]]
        if len(cookie) != hello[at]:
            return None
        at += 1 + hello[at]
    except IndexError:
        return None
    suites: Optional[tuple[int, ...]] = None
    if fragment == message_length and at + 2 <= len(hello):
        count = int.from_bytes(hello[at : at + 2], "big")
        raw = hello[at + 2 : at + 2 + count]
        if count % 2 == 0 and len(raw) == count:
            suites = tuple(int.from_bytes(raw[i : i + 2], "big") for i in range(0, count, 2))
    return ClientHello(bytes(random), bytes(cookie), suites)


def records(data: bytes) -> Iterator[bytes]:
    """The records of a flight, in order; a truncated tail is yielded as it is."""
    at = 0
    end = len(data)
    while at < end:
        size = RECORD_HEADER + int.from_bytes(data[at + 11 : at + 13], "big")
        yield data[at : at + size]
        at += size


def single_record(data: bytes) -> bool:
    """Whether a datagram holds exactly one record (the usual application datagram)."""
    return len(data) >= RECORD_HEADER and len(data) == RECORD_HEADER + int.from_bytes(
        data[11:13], "big"
    )


def pack(flight: bytes, mtu: int) -> list[bytes]:
    """The records of C{flight} packed, in order, into datagrams of at most C{mtu} bytes."""
    if len(flight) <= mtu:
        return [flight] if flight else []
    datagrams: list[bytes] = []
    current = b""
    for record in records(flight):
        if current and len(current) + len(record) > mtu:
            datagrams.append(current)
            current = b""
        current += record
    if current:
        datagrams.append(current)
    return datagrams
