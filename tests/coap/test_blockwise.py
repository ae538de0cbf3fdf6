"""Block-wise transfers (RFC 7959) through the engine."""

from __future__ import annotations

import pytest

from gateway.coap import numbers as n
from gateway.coap.params import EngineLimits

from .resources import Text, tree
from .support import PEER, make_server, option, request

BODY = bytes(i % 251 for i in range(100 * 1024))


def _download(server, transport, szx: int, start: int = 0, **req):  # type: ignore[no-untyped-def]
    body = b""
    num = start
    for mid in range(1, 10_000):
        server.feed(
            request(
                path="big",
                mid=mid,
                token=bytes([mid & 255]),
                options=((n.BLOCK2, (num, False, szx)),),
                **req,
            ),
            PEER,
        )
        [reply] = transport.take()
        assert reply.code == n.CONTENT, reply.payload
        got_num, more, got_szx = reply.opt.block2
        body += reply.payload
        if not more:
            return body, reply
        num, szx = got_num + 1, got_szx
    raise AssertionError("transfer did not end")


@pytest.mark.parametrize("szx", range(7))
def test_block2_download_at_each_size(szx: int) -> None:
    """A 100 KiB body downloads block by block at every size from 16 to 1024."""
    server, transport, _ = make_server(tree(big=Text(BODY)))
    body, _ = _download(server, transport, szx)
    assert body == BODY


def test_unasked_large_response_is_split_with_size2() -> None:
    """A large response to a plain GET comes as block 0 of 1024 with Size2 and an ETag."""
    server, transport, _ = make_server(tree(big=Text(BODY)))
    server.feed(request(path="big"), PEER)
    [reply] = transport.take()
    assert reply.opt.block2 == (0, True, 6)
    assert option(reply, n.SIZE2) == len(BODY)
    assert len(reply.payload) == 1024
    assert reply.opt.etag is not None


def test_first_request_for_later_block() -> None:
    """A first request for block 5 gets block 5, not block 0."""
    server, transport, _ = make_server(tree(big=Text(BODY)))
    server.feed(request(path="big", options=((n.BLOCK2, (5, False, 2)),)), PEER)
    [reply] = transport.take()
    assert reply.opt.block2 == (5, True, 2)
    assert reply.payload == BODY[5 * 64 : 6 * 64]


def test_client_block_size_larger_than_ours_is_reduced() -> None:
    """A client asking 1024-byte blocks of a 256-byte server gets 256-byte blocks."""
    limits = EngineLimits(max_block_size=256)
    server, transport, _ = make_server(tree(big=Text(BODY)), limits=limits)
    body, _ = _download(server, transport, 6)
    assert body == BODY


def test_later_blocks_come_from_the_stored_body() -> None:
    """Blocks after the first are cut from the body rendered once."""
    resource = Text(BODY)
    server, transport, _ = make_server(tree(big=resource))
    _download(server, transport, 6)
    assert len(resource.received) == 1


def test_plain_get_after_block0_is_served() -> None:
    """A plain GET in the middle of a transfer is answered (not swallowed)."""
    server, transport, _ = make_server(tree(big=Text(BODY), hello=Text()))
    server.feed(request(path="big", mid=1), PEER)
    server.feed(request(path="hello", mid=2), PEER)
    replies = transport.take()
    assert [r.code for r in replies] == [n.CONTENT, n.CONTENT]
    assert replies[1].payload == b"hello"


def test_block_out_of_range_gets_402() -> None:
    """A block number past the end gets 4.02."""
    server, transport, _ = make_server(tree(big=Text(BODY)))
    server.feed(request(path="big", options=((n.BLOCK2, (5000, False, 6)),)), PEER)
    [reply] = transport.take()
    assert reply.code == n.BAD_OPTION


def _upload(server, transport, body: bytes, szx: int, order=None):  # type: ignore[no-untyped-def]
    size = 1 << (szx + 4)
    count = (len(body) + size - 1) // size
    replies = []
    for mid, num in enumerate(order or range(count), start=1):
        chunk = body[num * size : (num + 1) * size]
        more = num < count - 1
        server.feed(
            request(
                code=n.PUT,
                path="big",
                mid=mid,
                token=bytes([mid & 255]),
                payload=chunk,
                options=((n.BLOCK1, (num, more, szx)),),
            ),
            PEER,
        )
        replies.extend(transport.take())
    return replies


def test_block1_upload_reassembles_with_continue() -> None:
    """A 10 KiB upload in 64-byte blocks gets 2.31 per block and reaches the resource whole."""
    resource = Text()
    server, transport, _ = make_server(tree(big=resource))
    body = bytes(range(256)) * 40
    replies = _upload(server, transport, body, 2)
    assert {r.code for r in replies[:-1]} == {n.CONTINUE}
    assert replies[-1].code == n.CHANGED
    assert replies[-1].opt.block1 == (len(replies) - 1, False, 2)
    [seen] = resource.received
    assert seen.payload == body


def test_block1_missing_block_gets_408() -> None:
    """A block arriving before its predecessors gets 4.08."""
    server, transport, _ = make_server(tree(big=Text()))
    replies = _upload(server, transport, b"x" * 640, 2, order=[0, 2])
    assert [r.code for r in replies] == [n.CONTINUE, n.REQUEST_ENTITY_INCOMPLETE]


def test_block1_first_block_not_zero_gets_408() -> None:
    """An upload starting at block 3 gets 4.08."""
    server, transport, _ = make_server(tree(big=Text()))
    replies = _upload(server, transport, b"x" * 640, 2, order=[3])
    assert [r.code for r in replies] == [n.REQUEST_ENTITY_INCOMPLETE]


def test_block1_over_limit_gets_413() -> None:
    """An upload growing past the body limit gets 4.13 with Size1."""
    limits = EngineLimits(max_body_size=1000)
    server, transport, _ = make_server(tree(big=Text()), limits=limits)
    replies = _upload(server, transport, b"x" * 4096, 6)
    assert replies[-1].code == n.REQUEST_ENTITY_TOO_LARGE
    assert option(replies[-1], n.SIZE1) == 1000


def test_block1_negotiates_smaller_size() -> None:
    """A 1024-byte first block to a 64-byte server is answered with SZX 2."""
    limits = EngineLimits(max_block_size=64)
    server, transport, _ = make_server(tree(big=Text()), limits=limits)
    server.feed(
        request(code=n.PUT, path="big", payload=b"x" * 1024, options=((n.BLOCK1, (0, True, 6)),)),
        PEER,
    )
    [reply] = transport.take()
    assert reply.code == n.CONTINUE and reply.opt.block1 == (0, True, 2)


def test_transfers_are_bounded_and_expire() -> None:
    """Unfinished transfers are capped in number and dropped after their lifetime."""
    limits = EngineLimits(max_transfers=5, transfer_lifetime=10)
    server, transport, clock = make_server(tree(big=Text()), limits=limits)
    for port in range(20):
        server.feed(
            request(code=n.PUT, path="big", payload=b"x" * 64, options=((n.BLOCK1, (0, True, 2)),)),
            ("127.0.0.1", 2000 + port),
        )
    assert len(server.blockwise) <= 5
    clock.advance(11)
    server.feed(
        request(
            code=n.PUT, path="big", payload=b"x" * 64, options=((n.BLOCK1, (1, True, 2)),), mid=9
        ),
        ("127.0.0.1", 2019),
    )
    [*_, reply] = transport.take()
    assert reply.code == n.REQUEST_ENTITY_INCOMPLETE


def _block0(port: int, mid: int = 1, payload: bytes = b"x" * 64) -> tuple[bytes, tuple[str, int]]:
    data = request(code=n.PUT, path="big", mid=mid, payload=payload,
                   options=((n.BLOCK1, (0, True, 2)),))
    return data, ("127.0.0.1", port)


def test_download_flood_from_one_port_spares_other_uploads() -> None:
    """1,000 Block2 downloads from one port neither evict nor block another peer's upload."""
    server, transport, _ = make_server(tree(big=Text(), wk=Text(BODY)))
    server.feed(*_block0(7000))
    for mid in range(1000):
        flood = request(path="wk", mid=mid, token=b"f",
                        options=((n.BLOCK2, (0, False, 0)), (n.URI_QUERY, b"q%d" % mid)))
        server.feed(flood, PEER)
    transport.take()
    block1 = ((n.BLOCK1, (1, False, 2)),)
    last = request(code=n.PUT, path="big", mid=2, payload=b"y", options=block1)
    server.feed(last, ("127.0.0.1", 7000))
    [reply] = transport.take()
    assert reply.code == n.CHANGED
    assert len(server.blockwise) == 4  # the flooding port's own bound


def test_the_newest_transfer_is_kept_when_the_table_is_full() -> None:
    """At the total bound the oldest transfer goes, never the one just started."""
    limits = EngineLimits(max_transfers=3)
    server, transport, _ = make_server(tree(big=Text()), limits=limits)
    for port in range(3, 8):
        server.feed(*_block0(port))
    transport.take()
    for port, expected in ((4, n.REQUEST_ENTITY_INCOMPLETE), (7, n.CHANGED)):
        server.feed(request(code=n.PUT, path="big", mid=2, payload=b"y",
                            options=((n.BLOCK1, (1, False, 2)),)), ("127.0.0.1", port))
        [reply] = transport.take()
        assert reply.code == expected


def test_transfers_are_bounded_in_bytes() -> None:
    """Unfinished uploads together hold at most max_transfer_bytes; the oldest go first."""
    limits = EngineLimits(max_transfer_bytes=4096, max_block_size=1024)
    server, transport, _ = make_server(tree(big=Text()), limits=limits)
    for port in range(10):
        data = request(code=n.PUT, path="big", payload=b"x" * 1024,
                       options=((n.BLOCK1, (0, True, 6)),))
        server.feed(data, ("127.0.0.1", 8000 + port))
    assert server.blockwise.bytes <= 4096
    assert len(server.blockwise) == 4


def test_expired_transfers_go_without_new_downloads() -> None:
    """Transfers past their lifetime are dropped by the next block-wise use of any kind."""
    limits = EngineLimits(transfer_lifetime=10)
    server, _, clock = make_server(tree(big=Text(BODY)), limits=limits)
    server.feed(request(path="big"), PEER)
    server.feed(*_block0(9000))
    clock.advance(11)
    server.feed(*_block0(9001, mid=5))
    assert len(server.blockwise) == 1


def test_downloads_of_one_body_count_it_once() -> None:
    """Many peers downloading the same body object hold its bytes once, within a small budget."""
    limits = EngineLimits(max_transfer_bytes=2 * len(BODY))
    server, transport, _ = make_server(tree(big=Text(BODY)), limits=limits)
    for port in range(50):
        server.feed(request(path="big"), ("127.0.0.1", 9100 + port))
    transport.take()
    assert len(server.blockwise) == 50
    assert server.blockwise.bytes == len(BODY)
    for port in range(49):
        server.blockwise.forget_peer(("127.0.0.1", 9100 + port))
    assert (len(server.blockwise), server.blockwise.bytes) == (1, len(BODY))
    server.blockwise.forget_peer(("127.0.0.1", 9149))
    assert (len(server.blockwise), server.blockwise.bytes) == (0, 0)


def test_bodies_built_per_response_count_per_transfer() -> None:
    """Equal bodies built per response are counted each, so the byte bound still evicts."""

    class Fresh(Text):
        def render_GET(self, request: object) -> object:
            response = super().render_GET(request)
            response.payload = bytes(bytearray(self.text))
            return response

    limits = EngineLimits(max_transfer_bytes=2 * len(BODY))
    server, transport, _ = make_server(tree(big=Fresh(BODY)), limits=limits)
    for port in range(5):
        server.feed(request(path="big"), ("127.0.0.1", 9200 + port))
    transport.take()
    assert len(server.blockwise) == 2
    assert server.blockwise.bytes == 2 * len(BODY)
