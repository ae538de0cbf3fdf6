# -*- test-case-name: tests.store.test_outbox -*-
"""The outbox's reads and upkeep (L{IOutbox}), run on the writer thread."""

from __future__ import annotations

import sqlite3
from typing import Any, Iterator, Optional, Sequence

from gateway.store.rows import EVENT_COLUMNS
from gateway.store.unit import DeadLetter, OutboxEvent
from gateway.store.values import check_text

from .schema import placeholders

#: Positions per statement, well under SQLite's limit of bound variables.
_CHUNK = 500


def _chunks(positions: Sequence[int]) -> Iterator[list[int]]:
    unique = sorted(set(positions))
    for i in range(0, len(unique), _CHUNK):
        yield unique[i : i + _CHUNK]


def _resize(conn: sqlite3.Connection, delta: int) -> None:
    if delta:
        conn.execute("UPDATE outbox_size SET size=size+? WHERE id=0", (delta,))


def query(
    conn: sqlite3.Connection,
    device_id: Optional[str],
    type: Optional[str],
    after: int,
    limit: int,
) -> list[OutboxEvent]:
    sql = f"SELECT {EVENT_COLUMNS} FROM outbox WHERE position>?"
    args: list[Any] = [after]
    if device_id is not None:
        sql += " AND device_id=?"
        args.append(check_text("device id", device_id))
    if type is not None:
        sql += " AND type=?"
        args.append(check_text("event type", type))
    rows = conn.execute(sql + " ORDER BY position LIMIT ?", [*args, limit])
    return [OutboxEvent(*row) for row in rows]


def size(conn: sqlite3.Connection) -> int:
    (n,) = conn.execute("SELECT size FROM outbox_size WHERE id=0").fetchone()
    return int(n)


def acknowledge(conn: sqlite3.Connection, positions: Sequence[int]) -> int:
    gone = 0
    for chunk in _chunks(positions):
        gone += conn.execute(
            f"DELETE FROM outbox WHERE position IN ({placeholders(len(chunk))})", chunk
        ).rowcount
    _resize(conn, -gone)
    return gone


def prune(conn: sqlite3.Connection, received_before_ms: int, keep: int) -> int:
    # Walk from the oldest and stop at the first young one: no index, no scan.
    old = []
    for position, received_ms in conn.execute(
        "SELECT position, received_ms FROM outbox ORDER BY position"
    ):
        if received_ms >= received_before_ms:
            break
        old.append(position)
    gone = acknowledge(conn, old)
    excess = size(conn) - keep
    if excess > 0:
        deleted = conn.execute(
            "DELETE FROM outbox WHERE position IN "
            "(SELECT position FROM outbox ORDER BY position LIMIT ?)",
            (excess,),
        ).rowcount
        _resize(conn, -deleted)
        gone += deleted
    return gone


def dead_letter(
    conn: sqlite3.Connection, position: int, status: int, reason: str, at_ms: int
) -> bool:
    check_text("reason", reason)
    moved = conn.execute(
        f"INSERT INTO dead_letters ({EVENT_COLUMNS}, status, reason, failed_ms) "
        f"SELECT {EVENT_COLUMNS}, ?, ?, ? FROM outbox WHERE position=?",
        (status, reason, at_ms, position),
    ).rowcount
    if moved:
        conn.execute("DELETE FROM outbox WHERE position=?", (position,))
        _resize(conn, -1)
    return moved > 0


def dead_letters(conn: sqlite3.Connection, limit: int, after: int) -> list[DeadLetter]:
    rows = conn.execute(
        f"SELECT {EVENT_COLUMNS}, status, reason, failed_ms FROM dead_letters "
        "WHERE position>? ORDER BY position LIMIT ?",
        (after, limit),
    )
    return [DeadLetter(OutboxEvent(*row[:8]), *row[8:]) for row in rows]


def _where(positions: Optional[Sequence[int]]) -> Iterator[tuple[str, list[int]]]:
    if positions is None:
        yield "", []
        return
    for chunk in _chunks(positions):
        yield f" WHERE position IN ({placeholders(len(chunk))})", chunk


def replay(conn: sqlite3.Connection, positions: Optional[Sequence[int]]) -> int:
    moved = 0
    for where, args in _where(positions):
        # Without a position, each row gets the next one (AUTOINCREMENT), in order.
        moved += conn.execute(
            "INSERT INTO outbox (device_id, sequence, event_id, type, time_ms, received_ms, body) "
            "SELECT device_id, sequence, event_id, type, time_ms, received_ms, body "
            f"FROM dead_letters{where} ORDER BY position",
            args,
        ).rowcount
        conn.execute(f"DELETE FROM dead_letters{where}", args)
    _resize(conn, moved)
    return moved


def discard(conn: sqlite3.Connection, positions: Optional[Sequence[int]]) -> int:
    return sum(
        conn.execute(f"DELETE FROM dead_letters{where}", args).rowcount
        for where, args in _where(positions)
    )
