"""
Message deduplication (RFC 7252 §4.5), bounded in memory.

Each received CON or NON is remembered per (peer, MID) for EXCHANGE_LIFETIME
or NON_LIFETIME together with the answer sent, so a retransmission gets the
same answer replayed.  A message is a duplicate only if its bytes are the
same: a device that rebooted and reuses a MID with another token, code or
payload is asking something new and is served.

No timer per entry: entries sit in one queue in arrival order and are purged
from its head as they expire, or when the global or per-peer bound is hit,
so a flood from spoofed sources costs at most C{max_entries} entries.
"""

from __future__ import annotations

from collections import deque
from typing import Hashable

from twisted.internet.interfaces import IReactorTime


class Entry:
    """What was received under one (peer, MID), and what was answered."""

    __slots__ = ("data", "expires", "response")

    def __init__(self, data: bytes, expires: float) -> None:
        self.data = data
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
    ) -> None:
        self._clock = clock
        self._max_entries = max_entries
        self._max_per_peer = max_entries_per_peer
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
        if entry is None or entry.data != data:
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
            del entries[mid]
            self._count -= 1
        elif len(entries) >= self._max_per_peer:
            del entries[next(iter(entries))]
            self._count -= 1
        entry = Entry(data, now + lifetime)
        entries[mid] = entry
        self._count += 1
        self._queue.append((key, mid, entry))
        if len(self._queue) > 2 * self._max_entries:
            self._compact()
        return entry

    def forget_peer(self, key: Hashable) -> None:
        # The queue keeps the dropped entries' slots until they reach its
        # head; _drop then finds them gone.
        entries = self._peers.pop(key, None)
        if entries:
            self._count -= len(entries)

    def _purge(self, now: float) -> None:
        queue = self._queue
        while queue:
            key, mid, entry = queue[0]
            if entry.expires > now and self._count < self._max_entries:
                return
            queue.popleft()
            self._drop(key, mid, entry)

    def _drop(self, key: Hashable, mid: int, entry: Entry) -> None:
        entries = self._peers.get(key)
        if entries is None or entries.get(mid) is not entry:
            return  # replaced or evicted earlier
        del entries[mid]
        self._count -= 1
        if not entries:
            del self._peers[key]

    def _compact(self) -> None:
        """Drop queue slots of replaced entries (a MID-reuse flood)."""
        self._queue = deque(
            item for item in self._queue if self._peers.get(item[0], {}).get(item[1]) is item[2]
        )
