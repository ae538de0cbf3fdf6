"""The strict codec: every RFC 7252 §3 format rule, and round trips."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from txthings import coap as tx

from gateway.coap import codec
from gateway.coap import numbers as n


def test_minimal_get_decodes() -> None:
    """A CON GET with a token and one Uri-Path decodes to its fields."""
    message = codec.decode(bytes.fromhex("42010102abcdb474657374"))
    assert (message.mtype, message.code, message.mid, message.token) == (0, 1, 0x0102, b"\xab\xcd")
    assert message.opt.uri_path == [b"test"]
    assert message.payload == b""


@pytest.mark.parametrize(
    "hexdata, reason",
    [
        ("", "shorter"),
        ("400100", "shorter"),
        ("00000000", "version"),
        ("80010000", "version"),
        ("49010000" + "00" * 9, "token length"),
        ("4f010000" + "00" * 15, "token length"),
        ("48010000aabbcc", "truncated token"),
        ("40010000ff", "payload marker"),
        ("40010000f0", "nibble 15"),
        ("400100000f", "nibble 15"),
        ("400100001d", "truncated option length"),
        ("40010000d0", "truncated option delta"),
        ("40010000e000", "truncated option delta"),
        ("40000000e0", "empty message"),
        ("40010000b3aa", "truncated option value"),
        ("40200000", "reserved code class"),
        ("40c00000", "reserved code class"),
        ("40e00000", "reserved code class"),
        ("40000000ff41", "empty message"),
        ("41000000aa", "empty message"),
        ("40010000e0ffff", "option number over"),
    ],
)
def test_format_errors_are_rejected(hexdata: str, reason: str) -> None:
    """Each RFC 7252 §3 format error raises MessageFormatError with a reason."""
    with pytest.raises(codec.MessageFormatError) as info:
        codec.decode(bytes.fromhex(hexdata))
    assert reason in info.value.reason


def test_format_error_keeps_header_for_rst() -> None:
    """A malformed CON still reports its type and MID so it can be reset."""
    with pytest.raises(codec.MessageFormatError) as info:
        codec.decode(bytes.fromhex("4001abcdf0"))
    assert (info.value.mtype, info.value.mid) == (n.CON, 0xABCD)


def test_unknown_version_is_not_resettable() -> None:
    """A message of another version carries no header to answer (it is ignored)."""
    with pytest.raises(codec.MessageFormatError) as info:
        codec.decode(bytes.fromhex("80010000"))
    assert info.value.mid is None


def test_bad_length_critical_option_is_listed() -> None:
    """A critical option of the wrong length is kept aside for a 4.02."""
    # Uri-Port (7, critical) with 3 bytes: over its 0-2 byte bound.
    message = codec.decode(bytes.fromhex("40010001" + "73010203"))
    assert message.invalid_options == [7]
    assert message.opt.getOption(7) is None


def test_bad_length_elective_option_is_dropped() -> None:
    """An elective option of the wrong length is ignored (RFC 7252 §5.4.3)."""
    # Content-Format (12) with 3 bytes.
    message = codec.decode(bytes.fromhex("40010001" + "c3010203"))
    assert message.invalid_options == []
    assert message.opt.getOption(12) is None


def test_repeated_non_repeatable_critical_option_is_listed() -> None:
    """A second Uri-Host (critical, not repeatable) is treated as unrecognised."""
    message = codec.decode(bytes.fromhex("40010001" + "3161" + "0162"))
    assert message.invalid_options == [3]


def test_block_option_decodes_to_tuple() -> None:
    """Block2 values of one and three bytes decode to (num, more, szx)."""
    short = codec.decode(bytes.fromhex("40010001" + "d10a03"))
    assert short.opt.block2 == (0, False, 3)
    long = codec.decode(bytes.fromhex("40010001" + "d30a01234e"))
    assert long.opt.block2 == (0x1234, True, 6)


def test_block_option_over_three_bytes_is_invalid() -> None:
    """A four-byte Block1 (the audit's struct.error crash) is a bad critical option."""
    message = codec.decode(bytes.fromhex("40030001" + "d40e00000000"))
    assert message.invalid_options == [n.BLOCK1]


def test_empty_ack_encodes_without_token() -> None:
    """An empty ACK is exactly four bytes."""
    assert codec.empty(n.ACK, 0x1234) == bytes.fromhex("60001234")


options = st.lists(
    st.one_of(
        st.tuples(st.just(n.URI_PATH), st.binary(max_size=40)),
        st.tuples(st.just(n.URI_QUERY), st.binary(max_size=300)),
        st.tuples(st.just(n.CONTENT_FORMAT), st.integers(0, 0xFFFF)),
        st.tuples(st.just(n.OBSERVE), st.integers(0, 0xFFFFFF)),
        st.tuples(st.just(n.ETAG), st.binary(min_size=1, max_size=8)),
        st.tuples(st.just(2049), st.binary(max_size=20)),
        st.tuples(st.just(65000), st.binary(max_size=3)),
    ),
    max_size=6,
)


@given(
    mtype=st.integers(0, 3),
    code=st.sampled_from([1, 2, 3, 4, 65, 69, 132, 160]),
    mid=st.integers(0, 0xFFFF),
    token=st.binary(max_size=8),
    opts=options,
    payload=st.binary(max_size=200),
    block=st.none() | st.tuples(st.integers(0, 0xFFFFF), st.booleans(), st.integers(0, 6)),
)
def test_round_trip(
    mtype: int, code: int, mid: int, token: bytes, opts: list, payload: bytes, block: tuple | None
) -> None:
    """Encoding then decoding gives back every field, option and the payload."""
    message = tx.Message(mtype=mtype, mid=mid, code=code, token=token, payload=payload)
    seen: set[int] = set()
    for number, value in opts:
        spec = n.OPTION_FORMATS.get(number)
        if spec and not spec[3] and number in seen:
            continue
        seen.add(number)
        cls = tx.UintOption if isinstance(value, int) else tx.OpaqueOption
        message.opt.addOption(cls(number, value))
    if block is not None:
        message.opt.block2 = block
    data = codec.encode(message)
    back = codec.decode(data)
    assert (back.mtype, back.code, back.mid, back.token, back.payload) == (
        mtype,
        code,
        mid,
        token,
        payload,
    )
    assert back.invalid_options == []
    expected = sorted((o.number, o.value) for o in message.opt.optionList())
    got = sorted((o.number, o.value) for o in back.opt.optionList())
    assert got == expected
    assert codec.encode(back) == data


@given(st.binary(max_size=64))
def test_random_bytes_never_raise_anything_else(data: bytes) -> None:
    """Arbitrary datagrams either decode or raise MessageFormatError, nothing else."""
    try:
        message = codec.decode(data)
    except codec.MessageFormatError:
        return
    codec.encode(message)
