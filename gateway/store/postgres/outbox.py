# -*- test-case-name: tests.store.test_outbox -*-
"""The outbox's reads and upkeep (L{IOutbox}), run on the store's connection thread."""

from __future__ import annotations

from typing import Any, Optional, Sequence

from gateway.store.rows import EVENT_COLUMNS
from gateway.store.unit import DeadLetter, OutboxEvent
from gateway.store.values import check_text

from .schema import Cursor

_FIELDS = "device_id, sequence, event_id, type, time_ms, received_ms, body"


def _resize(cur: Cursor, delta: int) -> None:
    if delta:
        cur.execute("UPDATE outbox_size SET size=size+%s WHERE id=0", (delta,))


def query(
    cur: Cursor, device_id: Optional[str], type: Optional[str], after: int, limit: int
) -> list[OutboxEvent]:
    sql = f"SELECT {EVENT_COLUMNS} FROM outbox WHERE position>%s"
    args: list[Any] = [after]
    if device_id is not None:
        sql += " AND device_id=%s"
        args.append(check_text("device id", device_id))
    if type is not None:
        sql += " AND type=%s"
        args.append(check_text("event type", type))
    cur.execute(sql + " ORDER BY position LIMIT %s", [*args, limit])
    return [OutboxEvent(*row) for row in cur.fetchall()]


def size(cur: Cursor) -> int:
    cur.execute("SELECT size FROM outbox_size WHERE id=0")
    (n,) = cur.fetchone() or (0,)
    return int(n)


def acknowledge(cur: Cursor, positions: Sequence[int]) -> int:
    cur.execute("DELETE FROM outbox WHERE position = ANY(%s)", (list(set(positions)),))
    gone = cur.rowcount
    _resize(cur, -gone)
    return gone


def prune(cur: Cursor, received_before_ms: int, keep: int) -> int:
    # From the oldest up to the first young one.
    cur.execute(
        "DELETE FROM outbox WHERE position < COALESCE("
        "(SELECT min(position) FROM outbox WHERE received_ms >= %s), "
        "9223372036854775807)",
        (received_before_ms,),
    )
    gone = cur.rowcount
    _resize(cur, -gone)
    excess = size(cur) - keep
    if excess > 0:
        cur.execute(
            "DELETE FROM outbox WHERE position IN "
            "(SELECT position FROM outbox ORDER BY position LIMIT %s)",
            (excess,),
        )
        deleted = cur.rowcount
        _resize(cur, -deleted)
        gone += deleted
    return gone


def dead_letter(cur: Cursor, position: int, status: int, reason: str, at_ms: int) -> bool:
    check_text("reason", reason)
    cur.execute(
        "WITH moved AS (DELETE FROM outbox WHERE position=%s RETURNING *) "
        f"INSERT INTO dead_letters ({EVENT_COLUMNS}, status, reason, failed_ms) "
        f"SELECT {EVENT_COLUMNS}, %s, %s, %s FROM moved",
        (position, status, reason, at_ms),
    )
    moved = cur.rowcount
    _resize(cur, -moved)
    return moved > 0


def dead_letters(cur: Cursor, limit: int, after: int) -> list[DeadLetter]:
    cur.execute(
        f"SELECT {EVENT_COLUMNS}, status, reason, failed_ms FROM dead_letters "
        "WHERE position>%s ORDER BY position LIMIT %s",
        (after, limit),
    )
    return [DeadLetter(OutboxEvent(*row[:8]), *row[8:]) for row in cur.fetchall()]


def _take(cur: Cursor, positions: Optional[Sequence[int]]) -> list[tuple[Any, ...]]:
    """Delete these dead letters (all if C{None}); their events, oldest first."""
    if positions is None:
        cur.execute(f"DELETE FROM dead_letters RETURNING position, {_FIELDS}")
    else:
        cur.execute(
            f"DELETE FROM dead_letters WHERE position = ANY(%s) RETURNING position, {_FIELDS}",
            (list(set(positions)),),
        )
    return sorted(cur.fetchall())


def replay(cur: Cursor, positions: Optional[Sequence[int]]) -> int:
    rows = [row[1:] for row in _take(cur, positions)]
    # One row at a time: each gets the next position, in their order.
    cur.executemany(
        f"INSERT INTO outbox ({_FIELDS}) VALUES (%s,%s,%s,%s,%s,%s,%s)", rows
    )
    _resize(cur, len(rows))
    return len(rows)


def discard(cur: Cursor, positions: Optional[Sequence[int]]) -> int:
    return len(_take(cur, positions))
