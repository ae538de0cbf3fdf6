"""ClientHello parsing and the packing of flights into datagrams."""

from __future__ import annotations

from gateway.dtls.records import pack, parse_client_hello, records, single_record

from .support import PSK_ID, PSK_KEY, MemoryClient


def _hello() -> bytes:
    [hello] = MemoryClient(psk=(PSK_ID, PSK_KEY)).start()
    return hello


def test_client_hello_fields_are_read() -> None:
    """A real first ClientHello yields its random, an empty cookie and the offered suites."""
    hello = parse_client_hello(_hello())
    assert hello is not None
    assert len(hello.random) == 32 and hello.cookie == b""
    assert hello.suites is not None and 0x00A8 in hello.suites  # PSK-AES128-GCM-SHA256


def test_anything_else_is_not_a_client_hello() -> None:
    """Garbage, truncations, other record types and other epochs are not ClientHellos."""
    hello = _hello()
    other_epoch = hello[:3] + b"\0\1" + hello[5:]
    application = bytes([23]) + hello[1:]
    for data in (b"", b"\x16", b"\x40\x01\x00\x01", hello[:40], other_epoch, application,
                 bytes(200)):
        assert parse_client_hello(data) is None, data[:8]


def test_fragmented_hello_has_unknown_suites() -> None:
    """A ClientHello cut into fragments is still one, with its suites unknown."""
    hello = bytearray(_hello())
    body_length = int.from_bytes(hello[14:17], "big")
    fragment = body_length - 10
    hello[22:25] = fragment.to_bytes(3, "big")
    hello[11:13] = (12 + fragment).to_bytes(2, "big")
    parsed = parse_client_hello(bytes(hello[: 13 + 12 + fragment]))
    assert parsed is not None and parsed.suites is None


def test_flights_are_packed_at_record_boundaries() -> None:
    """Records are kept whole, in order, and packed into datagrams of at most the MTU."""
    record = lambda size: bytes([22, 0xFE, 0xFD]) + bytes(8) + size.to_bytes(2, "big") + bytes(size)  # noqa: E731
    flight = record(500) + record(500) + record(100) + record(900)
    datagrams = pack(flight, 1152)
    assert [len(d) for d in datagrams] == [3 * 13 + 500 + 500 + 100, 13 + 900]
    assert b"".join(datagrams) == flight
    assert list(records(datagrams[0])) == [record(500), record(500), record(100)]
    assert pack(b"", 1152) == [] and pack(record(10), 1152) == [record(10)]


def test_single_record_recognised() -> None:
    """A datagram is one record exactly when its length is the header's plus one record."""
    one = bytes([23, 0xFE, 0xFD]) + bytes(8) + (5).to_bytes(2, "big") + bytes(5)
    assert single_record(one)
    assert not single_record(one + one) and not single_record(one[:-1]) and not single_record(b"")
