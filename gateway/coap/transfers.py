"""
A bounded table of block-wise transfers in one direction (uploads or downloads).

Bounded three ways, so no sender can take it over or grow it without limit:
transfers per peer, transfers in total, and bytes held in total.  When a
bound is hit the oldest transfer goes (the peer's own oldest for the per-peer
bound), never the one being stored.  Every transfer lives C{lifetime}
seconds from its start; expired ones are dropped on every use of the table.

Transfers that hold one shared body (a C{share} key: the downloads of one
OTA package, say) count its bytes once, for as long as any of them holds
it: the bound is on the memory held, and they hold one copy.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Hashable

__all__ = ["Transfer", "TransferTable", "TransferKey"]

#: The peer's key first, then what identifies the request (see blockwise).
TransferKey = tuple[Hashable, ...]


class Transfer:
    __slots__ = ("value", "size", "expires", "share")

    def __init__(
        self, value: Any, size: int, expires: float, share: Hashable | None = None
    ) -> None:
        #: The upload's bytearray, or the download's whole response.
        self.value = value
        self.size = size
        self.expires = expires
        #: Names the body when other transfers may hold the same one.
        self.share = share


class TransferTable:
    def __init__(self, max_count: int, max_per_peer: int, max_bytes: int) -> None:
        self._max_count = max_count
        self._max_per_peer = max_per_peer
        self._max_bytes = max_bytes
        # Insertion order is expiry order: every transfer has the same lifetime.
        self._items: OrderedDict[TransferKey, Transfer] = OrderedDict()
        self._per_peer: dict[Hashable, int] = {}
        #: How many transfers hold each shared body.
        self._holders: dict[Hashable, int] = {}
        #: Bytes held by all transfers.
        self.bytes = 0

    def __len__(self) -> int:
        return len(self._items)

    def get(self, key: TransferKey, now: float) -> Transfer | None:
        """The live transfer under C{key}."""
        self.expire(now)
        return self._items.get(key)

    def put(self, key: TransferKey, transfer: Transfer, now: float) -> None:
        """Store a new transfer, evicting older ones as the bounds require."""
        self.expire(now)
        self.pop(key)
        peer = key[0]
        if self._per_peer.get(peer, 0) >= self._max_per_peer:
            self.pop(next(k for k in self._items if k[0] == peer))
        while self._items and len(self._items) >= self._max_count:
            self.pop(next(iter(self._items)))
        self._items[key] = transfer
        self._per_peer[peer] = self._per_peer.get(peer, 0) + 1
        share = transfer.share
        if share is None:
            self.bytes += transfer.size
        else:
            holders = self._holders.get(share, 0)
            self._holders[share] = holders + 1
            if not holders:
                self.bytes += transfer.size
        self._shrink(key)

    def resize(self, key: TransferKey, size: int) -> None:
        """The transfer under C{key} (not a shared one) now holds C{size} bytes."""
        transfer = self._items[key]
        self.bytes += size - transfer.size
        transfer.size = size
        self._shrink(key)

    def pop(self, key: TransferKey) -> Transfer | None:
        transfer = self._items.pop(key, None)
        if transfer is None:
            return None
        share = transfer.share
        if share is None:
            self.bytes -= transfer.size
        else:
            holders = self._holders.pop(share) - 1
            if holders:
                self._holders[share] = holders
            else:
                self.bytes -= transfer.size
        peer = key[0]
        left = self._per_peer[peer] - 1
        if left:
            self._per_peer[peer] = left
        else:
            del self._per_peer[peer]
        return transfer

    def expire(self, now: float) -> None:
        items = self._items
        while items:
            key, transfer = next(iter(items.items()))
            if transfer.expires > now:
                return
            self.pop(key)

    def forget_peer(self, peer: Hashable) -> None:
        if peer in self._per_peer:
            for key in [key for key in self._items if key[0] == peer]:
                self.pop(key)

    def _shrink(self, keep: TransferKey) -> None:
        while self.bytes > self._max_bytes:
            oldest = next(iter(self._items))
            if oldest == keep:
                return  # alone over the budget: the body limit bounds it
            self.pop(oldest)
