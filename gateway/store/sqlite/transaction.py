# -*- test-case-name: tests.store.test_sqlite -*-
"""
One writer transaction, and the outbox events it appends.

Every uplink appends one event, and a group commit carries many: the
transaction reads the outbox size and each device's last sequence number
once, hands out the next numbers from memory, and writes the rows, the
sequences and the size in three statements when anything else is to look
at the outbox (L{Transaction.outbox}) or the transaction commits
(L{Transaction.flush}), instead of three statements per event.
"""

from __future__ import annotations

import sqlite3
from typing import Any, Optional

from gateway.domain.errors import Unavailable
from gateway.store.unit import AppendEvent

__all__ = ["Transaction"]


class Transaction:
    """
    What a job of the writer gets: C{conn} for every table but the outbox's,
    L{outbox} for those (it writes what is pending first), L{append} for a
    new event.

    @param limit: the most events the outbox may hold (C{None}: no limit).
    """

    def __init__(self, conn: sqlite3.Connection, limit: Optional[int]) -> None:
        self.conn = conn
        self._limit = limit
        #: The outbox size as written (C{None}: not read in this transaction).
        self._size: Optional[int] = None
        #: Each device's last sequence number, written or pending.
        self._last: dict[str, int] = {}
        #: Sequences not written yet, by device.
        self._sequences: dict[str, int] = {}
        self._rows: list[tuple[Any, ...]] = []

    def append(self, op: AppendEvent) -> int:
        """Append C{op}'s event; its sequence number.  L{Unavailable} when full."""
        if self._size is None:
            (self._size,) = self.conn.execute(
                "SELECT size FROM outbox_size WHERE id=0"
            ).fetchone()
        if self._limit is not None and self._size + len(self._rows) >= self._limit:
            raise Unavailable(f"the outbox is full ({self._limit} events)")
        device_id = op.device_id
        last = self._last.get(device_id)
        if last is None:
            row = self.conn.execute(
                "SELECT last FROM event_sequences WHERE device_id=?", (device_id,)
            ).fetchone()
            last = 0 if row is None else int(row[0])
        last += 1
        self._last[device_id] = self._sequences[device_id] = last
        self._rows.append(
            (device_id, last, op.event_id, op.type, op.time_ms, op.received_ms, op.body)
        )
        return last

    def outbox(self) -> sqlite3.Connection:
        """The connection, for work on the outbox tables: what is pending is written first."""
        self.flush()
        # That work may change the size (acknowledge, prune, replay ...).
        self._size = None
        return self.conn

    def flush(self) -> None:
        """Write the pending events, their sequence numbers and the outbox size."""
        if not self._rows:
            return
        conn = self.conn
        conn.executemany(
            "INSERT INTO outbox (device_id, sequence, event_id, type, time_ms, received_ms, body) "
            "VALUES (?,?,?,?,?,?,?)",
            self._rows,
        )
        conn.executemany(
            "INSERT INTO event_sequences (device_id, last) VALUES (?, ?) "
            "ON CONFLICT(device_id) DO UPDATE SET last=excluded.last",
            self._sequences.items(),
        )
        conn.execute("UPDATE outbox_size SET size=size+? WHERE id=0", (len(self._rows),))
        if self._size is not None:
            self._size += len(self._rows)
        self._rows.clear()
        self._sequences.clear()

    def discard(self) -> None:
        """Forget what is pending and what was read: the job that appended it failed."""
        self._rows.clear()
        self._sequences.clear()
        self._last.clear()
        self._size = None
