"""
Block-wise transfers (RFC 7959), state keyed by peer and request.

A transfer is identified by the peer and the request's cache key (method,
Uri-Path, Uri-Query, Accept, Request-Tag), never by the path alone, so
interleaved transfers and plain requests don't disturb each other.  Uploads
and downloads are kept apart, so a flood of one cannot evict the other, each
bounded per peer, in total and in bytes (L{TransferTable}), and expire after
C{transfer_lifetime}.  Downloads of one and the same body object (every
device fetching one OTA package) share it and count its bytes once; a body
built per response is counted per transfer, as before.  The engine
resolves (authenticates) a request before it buffers any block of it.
"""

from __future__ import annotations

import copy
import zlib
from typing import Any, Hashable

from twisted.internet.interfaces import IReactorTime
from txthings.coap import UintOption

from . import errors
from . import numbers as n
from .options import values
from .params import EngineLimits
from .transfers import Transfer, TransferKey, TransferTable


def transfer_key(peer_key: Hashable, request: Any) -> TransferKey:
    """The peer first, then the request's cache key (L{Blockwise.forget_peer} relies on it)."""
    return (
        peer_key,
        request.code,
        values(request, n.URI_PATH),
        values(request, n.URI_QUERY),
        values(request, n.ACCEPT),
        values(request, n.REQUEST_TAG),
    )


class Blockwise:
    def __init__(self, clock: IReactorTime, limits: EngineLimits) -> None:
        self._clock = clock
        self._limits = limits
        self._max_szx = n.size_exponent(limits.max_block_size)
        self._uploads = self._table()
        self._downloads = self._table()

    def _table(self) -> TransferTable:
        limits = self._limits
        return TransferTable(
            limits.max_transfers, limits.max_transfers_per_peer, limits.max_transfer_bytes
        )

    def __len__(self) -> int:
        return len(self._uploads) + len(self._downloads)

    @property
    def bytes(self) -> int:
        """Bytes held by unfinished uploads and stored downloads."""
        return self._uploads.bytes + self._downloads.bytes

    def _now(self) -> float:
        """The time, once expired transfers of both directions are gone."""
        now = self._clock.seconds()
        self._uploads.expire(now)
        self._downloads.expire(now)
        return now

    def forget_peer(self, peer_key: Hashable) -> None:
        """Drop every transfer of a peer, uploads and downloads."""
        self._uploads.forget_peer(peer_key)
        self._downloads.forget_peer(peer_key)

    # -- Block1: request bodies -------------------------------------------

    def receive_block1(self, key: TransferKey, request: Any) -> tuple[bool, int]:
        """
        Take one Block1 block of C{request}.

        @return: C{(complete, szx)}: when complete, C{request.payload} holds the
            whole body; otherwise the caller answers 2.31 with Block1 C{szx}.
        @raise errors.CoAPError: 4.08 for a missing block, 4.13 over the limit,
            4.00 for a non-final block of the wrong size.
        """
        num, more, szx = request.opt.block1
        if szx == 7:
            raise errors.BadRequest("Block1 SZX 7 is reserved")
        size = n.block_size(szx)
        payload = request.payload
        limit = self._limits.max_body_size
        if more and len(payload) != size:
            raise errors.BadRequest("block size does not match SZX")
        now = self._now()
        uploads = self._uploads
        offset = num * size
        if num == 0:
            upload = Transfer(bytearray(), 0, now + self._limits.transfer_lifetime)
            uploads.put(key, upload, now)
        else:
            found = uploads.get(key, now)
            if found is None or offset > found.size:
                uploads.pop(key)
                raise errors.RequestEntityIncomplete("missing earlier blocks")
            upload = found
        if offset + len(payload) > limit:
            uploads.pop(key)
            raise errors.RequestEntityTooLarge("request body too large", size1=limit)
        body = upload.value
        del body[offset:]
        body += payload
        # Early negotiation: answer with our smaller block size if needed.
        reply_szx = min(szx, self._max_szx)
        if more:
            uploads.resize(key, len(body))
            return False, reply_szx
        uploads.pop(key)
        request.payload = bytes(body)
        return True, reply_szx

    # -- Block2: response bodies ------------------------------------------

    def cached_response(self, key: TransferKey) -> Any | None:
        """The full response of an earlier block of this transfer, if live."""
        found = self._downloads.get(key, self._now())
        return None if found is None else found.value

    def slice_response(self, key: TransferKey, request: Any, response: Any) -> Any:
        """
        Cut the block the request asks for out of C{response}, remembering the
        full body for the blocks that follow.  Small responses to requests
        without Block2 pass through unchanged.
        """
        block2 = request.opt.block2
        payload = response.payload
        if block2 is None:
            if len(payload) <= self._limits.max_block_size:
                return response
            num, szx = 0, self._max_szx
        else:
            num, _, szx = block2
            if szx == 7:
                raise errors.BadOption("Block2 SZX 7 is reserved")
            if szx > self._max_szx:
                num = num * n.block_size(szx) // n.block_size(self._max_szx)
                szx = self._max_szx
        size = n.block_size(szx)
        start = num * size
        if start >= len(payload) and (payload or num > 0):
            raise errors.BadOption("block number out of range")
        end = start + size
        more = end < len(payload)
        if len(payload) > size and self.cached_response(key) is not response:
            if response.opt.etag is None:
                response.opt.etag = zlib.crc32(payload).to_bytes(4, "big")
            now = self._now()
            # The body's identity is stable while a transfer holds it.
            stored = Transfer(
                response, len(payload), now + self._limits.transfer_lifetime, share=id(payload)
            )
            self._downloads.put(key, stored, now)
        block = copy.copy(response)
        block.opt = copy.deepcopy(response.opt)
        block.payload = payload[start:end]
        block.opt.block2 = (num, more, szx)
        if num == 0 or request.opt.getOption(n.SIZE2) is not None:
            block.opt.deleteOption(n.SIZE2)
            block.opt.addOption(UintOption(n.SIZE2, len(payload)))
        return block
