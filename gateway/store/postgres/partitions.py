# -*- test-case-name: tests.store.test_postgres_nodes -*-
"""
The outbox shared by several gateway nodes: which events this node drains.

Events are partitioned by device (C{outbox.part}, a hash of the device id),
and a node forwards only the events of the partitions it owns.  A node owns
a partition while its database session holds that partition's advisory lock
(session locks: a node that dies, or whose connection breaks, releases them
with its session and the others take them over on their next peek).  So one
device's events go out through one node at a time, in order.

Every node holds a shared membership lock; at each peek a node takes free
partitions up to its fair share (the partition count over the nodes) and
gives back those beyond it, but never one with an event it peeked and has
not yet acknowledged or dead-lettered: nothing is sent by two nodes at once.

An instance lives on the store's connection thread only.
"""

from __future__ import annotations

from typing import Any, Optional, Sequence

from gateway.store.rows import EVENT_COLUMNS
from gateway.store.unit import OutboxEvent

from .schema import PARTITIONS, Cursor

__all__ = ["Partitions"]

#: The advisory locks' first keys are hashes of the schema's name and these,
#: so that gateways in other schemas or databases of the server share nothing;
#: the second key is 0 for the membership lock, the partition for the others.
_KEYS = (
    "SELECT hashtext(current_schema() || ':gateway-members'),"
    " hashtext(current_schema() || ':gateway-outbox'),"
    " (SELECT oid FROM pg_database WHERE datname = current_database())"
)


class Partitions:
    """This node's partitions and its events in flight."""

    def __init__(self) -> None:
        #: The session that holds the locks (C{None}: none yet).
        self._session: Optional[int] = None
        self._members = self._partition = self._database = 0
        self.owned: set[int] = set()
        #: Events peeked and not yet settled: position -> partition.
        self._in_flight: dict[int, int] = {}

    def peek(self, cur: Cursor, limit: int, after: int) -> list[OutboxEvent]:
        """Up to C{limit} events of this node's partitions after C{after}, oldest first."""
        self._rebalance(cur)
        if not self.owned:
            return []
        cur.execute(
            f"SELECT {EVENT_COLUMNS}, part FROM outbox WHERE part = ANY(%s) AND position>%s "
            "ORDER BY position LIMIT %s",
            (sorted(self.owned), after, limit),
        )
        events = []
        for row in cur.fetchall():
            self._in_flight[row[0]] = row[8]
            events.append(OutboxEvent(*row[:8]))
        return events

    def settled(self, positions: Sequence[int]) -> None:
        """These events left the outbox (acknowledged or dead-lettered)."""
        for position in positions:
            self._in_flight.pop(position, None)

    def _rebalance(self, cur: Cursor) -> None:
        session = cur.connection.info.backend_pid
        if session != self._session:
            # A new session holds nothing: the old one's locks went with it.
            self._session, self.owned = session, set()
            self._in_flight.clear()
            keys: Any = _one(cur, _KEYS)
            self._members, self._partition, self._database = keys
            cur.execute("SELECT pg_advisory_lock_shared(%s, 0)", (self._members,))
        cur.execute(
            "SELECT count(DISTINCT pid) FROM pg_locks WHERE locktype='advisory' "
            "AND database=%s AND classid::bigint=%s AND objid=0 AND objsubid=2 AND granted",
            (self._database, _oid(self._members)),
        )
        row: Any = cur.fetchone()
        nodes = max(int(row[0]), 1)
        share = -(-PARTITIONS // nodes)
        if len(self.owned) > share:
            self._give_back(cur, len(self.owned) - share)
        elif len(self.owned) < share:
            self._take(cur, share - len(self.owned))

    def _busy(self, cur: Cursor) -> set[int]:
        """The partitions with events in flight (forgetting those no longer held)."""
        if self._in_flight:
            cur.execute(
                "SELECT position FROM outbox WHERE position = ANY(%s)", (list(self._in_flight),)
            )
            held = {r[0] for r in cur.fetchall()}
            self._in_flight = {p: part for p, part in self._in_flight.items() if p in held}
        return set(self._in_flight.values())

    def _give_back(self, cur: Cursor, surplus: int) -> None:
        busy = self._busy(cur)
        for part in sorted(self.owned - busy, reverse=True)[:surplus]:
            cur.execute("SELECT pg_advisory_unlock(%s, %s)", (self._partition, part))
            self.owned.discard(part)

    def _take(self, cur: Cursor, wanted: int) -> None:
        cur.execute(
            "SELECT objid FROM pg_locks WHERE locktype='advisory' AND database=%s "
            "AND classid::bigint=%s AND objsubid=2 AND granted",
            (self._database, _oid(self._partition)),
        )
        taken = {int(r[0]) for r in cur.fetchall()}
        for part in range(PARTITIONS):
            if wanted == 0:
                break
            if part in taken or part in self.owned:
                continue
            cur.execute("SELECT pg_try_advisory_lock(%s, %s)", (self._partition, part))
            got: Any = cur.fetchone()
            if got[0]:
                self.owned.add(part)
                wanted -= 1


def _one(cur: Cursor, sql: str) -> Any:
    cur.execute(sql)
    return cur.fetchone()


def _oid(key: int) -> int:
    """An int4 lock key as pg_locks shows it (an oid: unsigned)."""
    return key & 0xFFFF_FFFF
