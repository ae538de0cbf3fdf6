"""
Message deduplication (RFC 7252 §4.5), bounded in memory.

Each received CON or NON is remembered per (peer, MID) for EXCHANGE_LIFETIME
or NON_LIFETIME together with the answer sent, so a retransmission gets the
same answer replayed.  A message is a duplicate only if its bytes are the
same: a device that rebooted and reuses a MID with another token, code or
payload is asking something new and is served.

No timer per entry: entries sit in one queue in arrival order and are purged
from its head as they expire, or when the global, per-peer or byte bound is
hit, so a flood from spoofed sources costs at most C{max_entries} entries
and C{max_bytes}.  An entry keeps a digest of the datagram, never the
datagram, so large requests cost no more than small ones.
"""

from __future__ import annotations

from collections import deque
from typing import Hashable

from twisted.internet.interfaces import IReactorTime

#: What one entry is charged for besides its response: the entry, its
#: table slot and its queue slot (measured: about 200 bytes on CPython 3.11).
ENTRY_OVERHEAD = 256


class Entry:
    """What was received under one (peer, MID), and what was answered."""

    __slots__ = ("digest", "expires", "response")

    def __init__(self, data_digest: int, expires: float) -> None:
        self.digest = data_digest
        self.expires = expires
        #: The datagram to replay to a duplicate; None while the request is
        #: still being handled (a duplicate is then ignored).
        self.response: bytes | None = None


class Deduplicator:
    def __init__(
        self,
        clock: IReactorTime,
        max_entries: int,
        max_entries_per_peer: int,
        max_bytes: int = 64 * 1024 * 1024,
    ) -> None:
        self._clock = clock
        self._max_entries = max_entries
        self._max_per_peer = max_entries_per_peer
        self._max_bytes = max_bytes
        #: Bytes charged to the live entries (overhead plus responses).
        self.bytes = 0
        self._peers: dict[Hashable, dict[int, Entry]] = {}
        self._queue: deque[tuple[Hashable, int, Entry]] = deque()
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def lookup(self, key: Hashable, mid: int, data: bytes) -> Entry | None:
        """The entry of an earlier identical message, if it is still live."""
        entries = self._peers.get(key)
        if entries is None:
            return None
        entry = entries.get(mid)
        if entry is None or entry.digest != hash(data):
            return None
        if entry.expires <= self._clock.seconds():
            return None
        return entry

    def remember(self, key: Hashable, mid: int, data: bytes, lifetime: float) -> Entry:
        """
        Record a new message for C{lifetime} seconds (EXCHANGE_LIFETIME for a
        CON, NON_LIFETIME for a NON), replacing any older one under the MID.
        """
        now = self._clock.seconds()
        self._purge(now)
        entries = self._peers.get(key)
        if entries is None:
            entries = self._peers[key] = {}
        elif mid in entries:
            self._uncharge(entries.pop(mid))
        elif len(entries) >= self._max_per_peer:
            self._uncharge(entries.pop(next(iter(entries))))
        # The interpreter's keyed SipHash: a sender cannot aim a collision
        # at another message without the per-process key.
        entry = Entry(hash(data), now + lifetime)
        entries[mid] = entry
        self._count += 1
        self.bytes += ENTRY_OVERHEAD
        self._queue.append((key, mid, entry))
        if len(self._queue) > 2 * self._max_entries:
            self._compact()
        return entry

    def answered(self, entry: Entry, response: bytes) -> None:
        """Keep C{response} as the answer to replay to a duplicate of C{entry}."""
        old = entry.response
        self.bytes += len(response) - (0 if old is None else len(old))
        entry.response = response

    def forget_peer(self, key: Hashable) -> None:
        # The queue keeps the dropped entries' slots until they reach its
        # head; _drop then finds them gone.
        for entry in self._peers.pop(key, {}).values():
            self._uncharge(entry)

    def _uncharge(self, entry: Entry) -> None:
        self._count -= 1
        response = entry.response
        self.bytes -= ENTRY_OVERHEAD + (0 if response is None else len(response))

    def _purge(self, now: float) -> None:
        queue = self._queue
        while queue:
            key, mid, entry = queue[0]
            if (
                entry.expires > now
                and self._count < self._max_entries
                and self.bytes < self._max_bytes
            ):
                return
            queue.popleft()
            self._drop(key, mid, entry)

    def _drop(self, key: Hashable, mid: int, entry: Entry) -> None:
        entries = self._peers.get(key)
        if entries is None or entries.get(mid) is not entry:
            return  # replaced or evicted earlier
        del entries[mid]
        self._uncharge(entry)
        if not entries:
            del self._peers[key]

    def _compact(self) -> None:
        """Drop queue slots of replaced entries (a MID-reuse flood)."""
        self._queue = deque(
            item for item in self._queue if self._peers.get(item[0], {}).get(item[1]) is item[2]
        )
