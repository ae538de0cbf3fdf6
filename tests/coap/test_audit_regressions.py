"""Every malformed-input reproducer of the txThings audit (§5), replayed against the engine."""

from __future__ import annotations

import pytest
from twisted.logger import globalLogPublisher

from gateway.coap import codec
from gateway.coap import numbers as n

from .resources import Text, tree
from .support import PEER, make_server

LARGE = bytes(range(256)) * 8


@pytest.fixture
def logged_failures():  # type: ignore[no-untyped-def]
    events: list[dict] = []

    def observe(event: dict) -> None:
        if event.get("log_failure") is not None:
            events.append(event)

    globalLogPublisher.addObserver(observe)
    yield events
    globalLogPublisher.removeObserver(observe)


@pytest.mark.parametrize(
    "datagrams, expected",
    [
        # Single datagrams: (hex, ...), then what the last one must get.
        ([""], None),
        (["400100"], None),
        (["00000000"], None),
        (["60000000f0"], None),  # malformed ACK: dropped, never reset
        (["400000001d"], (n.RST, n.EMPTY)),
        (["40000000e0"], (n.RST, n.EMPTY)),
        (["70040000"], None),  # a request inside an RST
        (["4103000000b6000000000000d10310"], (n.ACK, n.NOT_FOUND)),
        (["4101000000b6000000000000d5033600000000"], (n.ACK, n.BAD_OPTION)),
        (["4103000101b675706c6f6164dd030001010101010101010101010101ff78"], (n.ACK, n.BAD_OPTION)),
        (["49010000" + "00" * 9], (n.RST, n.EMPTY)),
        (["48010000aabb"], (n.RST, n.EMPTY)),
        (["40010000b5" + "6c61726765" + "ff"], (n.RST, n.EMPTY)),
        (["40010000b56c61726765d10902"], (n.ACK, n.BAD_OPTION)),  # unknown critical option 33
        (["40210000"], (n.RST, n.EMPTY)),  # reserved class 1
        # Stateful sequences from one source.
        (["4101000101b56c61726765", "4101000201b56c61726765c152"], (n.ACK, n.CONTENT)),
        (["4101000101b56c61726765", "4101000202b56c61726765"], (n.ACK, n.CONTENT)),
        (
            [
                "4103000101b675706c6f6164d10308ff30313233343536373839616263646566",
                "4103000201b675706c6f6164d10310",
            ],
            (n.ACK, n.CHANGED),
        ),
        (["4103515101b675706c6f6164d003ff616263"], (n.ACK, n.CHANGED)),
    ],
)
def test_reproducer(
    datagrams: list[str], expected: tuple[int, int] | None, logged_failures: list
) -> None:
    """The reproducer gets a well-formed answer (or rightly none) and logs no error."""
    server, transport, _ = make_server(tree(large=Text(LARGE), upload=Text()))
    for data in datagrams:
        transport.written.clear()
        server.feed(bytes.fromhex(data), PEER)
    replies = transport.take()  # decoding with the strict codec checks they are well formed
    if expected is None:
        assert replies == []
    else:
        [reply] = replies
        assert (reply.mtype, reply.code) == expected
    assert logged_failures == []


def test_block1_empty_value_reply_is_well_formed() -> None:
    """Block1 (0, 0, 0) is echoed as a zero-length option that keeps the payload marker."""
    server, transport, _ = make_server(tree(upload=Text()))
    server.feed(bytes.fromhex("4103515101b675706c6f6164d003ff616263"), PEER)
    [(data, _)] = transport.written
    reply = codec.decode(data)
    assert reply.opt.block1 == (0, False, 0)
    assert reply.payload == b"3"
