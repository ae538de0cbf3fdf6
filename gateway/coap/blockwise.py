"""
Block-wise transfers (RFC 7959), state keyed by peer and request.

A transfer is identified by the peer and the request's cache key (method,
Uri-Path, Uri-Query, Accept, Request-Tag), never by the path alone, so
interleaved transfers and plain requests don't disturb each other.  State is
bounded in count and expires after C{transfer_lifetime}.
"""

from __future__ import annotations

import copy
import zlib
from collections import OrderedDict
from typing import Any, Hashable

from twisted.internet.interfaces import IReactorTime
from txthings.coap import UintOption

from . import errors
from . import numbers as n
from .options import values
from .params import EngineLimits

TransferKey = tuple[Hashable, ...]


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


class _Upload:
    __slots__ = ("body", "expires")

    def __init__(self, expires: float) -> None:
        self.body = bytearray()
        self.expires = expires


class Blockwise:
    def __init__(self, clock: IReactorTime, limits: EngineLimits) -> None:
        self._clock = clock
        self._limits = limits
        self._max_szx = n.size_exponent(limits.max_block_size)
        self._uploads: OrderedDict[TransferKey, _Upload] = OrderedDict()
        self._downloads: OrderedDict[TransferKey, tuple[Any, float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._uploads) + len(self._downloads)

    def forget_peer(self, peer_key: Hashable) -> None:
        """Drop every transfer of a peer, uploads and downloads."""
        for table in (self._uploads, self._downloads):
            for key in [key for key in table if key[0] == peer_key]:
                del table[key]

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
        now = self._clock.seconds()
        self._expire(self._uploads, now)
        offset = num * size
        if num == 0:
            upload = _Upload(now + self._limits.transfer_lifetime)
            self._uploads.pop(key, None)
            self._store(self._uploads, key, upload)
        else:
            upload = self._uploads.get(key)  # type: ignore[assignment]
            if upload is None or offset > len(upload.body):
                self._uploads.pop(key, None)
                raise errors.RequestEntityIncomplete("missing earlier blocks")
        if offset + len(payload) > limit:
            self._uploads.pop(key, None)
            raise errors.RequestEntityTooLarge("request body too large", size1=limit)
        del upload.body[offset:]
        upload.body += payload
        # Early negotiation: answer with our smaller block size if needed.
        reply_szx = min(szx, self._max_szx)
        if more:
            return False, reply_szx
        del self._uploads[key]
        request.payload = bytes(upload.body)
        return True, reply_szx

    # -- Block2: response bodies ------------------------------------------

    def cached_response(self, key: TransferKey) -> Any | None:
        """The full response of an earlier block of this transfer, if live."""
        item = self._downloads.get(key)
        if item is None:
            return None
        response, expires = item
        if expires <= self._clock.seconds():
            del self._downloads[key]
            return None
        return response

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
        if len(payload) > size and self._downloads.get(key, (None,))[0] is not response:
            if response.opt.etag is None:
                response.opt.etag = zlib.crc32(payload).to_bytes(4, "big")
            self._expire(self._downloads, self._clock.seconds())
            self._store(
                self._downloads,
                key,
                (response, self._clock.seconds() + self._limits.transfer_lifetime),
            )
        block = copy.copy(response)
        block.opt = copy.deepcopy(response.opt)
        block.payload = payload[start:end]
        block.opt.block2 = (num, more, szx)
        if num == 0 or request.opt.getOption(n.SIZE2) is not None:
            block.opt.deleteOption(n.SIZE2)
            block.opt.addOption(UintOption(n.SIZE2, len(payload)))
        return block

    def _store(self, table: OrderedDict[TransferKey, Any], key: TransferKey, value: Any) -> None:
        table[key] = value
        table.move_to_end(key)
        while len(self._uploads) + len(self._downloads) > self._limits.max_transfers and table:
            table.popitem(last=False)

    @staticmethod
    def _expire(table: OrderedDict[TransferKey, Any], now: float) -> None:
        while table:
            value = next(iter(table.values()))
            expires = value.expires if isinstance(value, _Upload) else value[1]
            if expires > now:
                return
            table.popitem(last=False)
