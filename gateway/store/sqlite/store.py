# -*- test-case-name: tests.store.test_sqlite -*-
"""L{SQLiteStore}: L{IStore} over the writer thread; its reads and plumbing."""

from __future__ import annotations

import sqlite3
from typing import Any, Callable, Optional, Sequence, TypeVar

from twisted.internet.defer import Deferred, fail
from twisted.internet.interfaces import IReactorFromThreads, IReactorTime
from twisted.logger import Logger
from zope.interface import implementer

from gateway.domain.model import (
    Attribute,
    AttributeScope,
    Claim,
    Credential,
    CredentialKind,
    Device,
    Profile,
    Rpc,
    RpcState,
    TelemetryPoint,
)
from gateway.domain.ota import AssignmentTarget, OtaAssignment, OtaKind, OtaPackage
from gateway.store import packages_sql
from gateway.store.interfaces import ICommandQueue, IOutbox, IPackageStore, IStore
from gateway.store.rows import (
    DEVICE_COLUMNS,
    PROFILE_COLUMNS,
    RPC_COLUMNS,
    UNFINISHED_SQL,
    credential_from_row,
    device_from_row,
    profile_from_row,
    rpc_from_row,
)
from gateway.store.unit import DeadLetter, Operation, OutboxEvent, UnitOfWork
from gateway.store.values import check_int64, check_text, check_texts, decode_json
from gateway.store.writes import SingleWrites

from . import outbox
from .files import private_database
from .operations import apply
from .schema import last_rpc_id, migrate, placeholders
from .transaction import Transaction
from .writer import Job, Writer

T = TypeVar("T")

log = Logger()


class _Reactor(IReactorTime, IReactorFromThreads):
    """What the store needs of the reactor (for typing only)."""


#: C{[storage] durability} -> SQLite's C{synchronous}: in WAL mode, FULL
#: syncs the log at every commit (a commit survives a power cut), NORMAL
#: only at checkpoints (it survives the process being killed).
SYNCHRONOUS = {"power-loss": "FULL", "process-crash": "NORMAL"}


@implementer(IStore, IOutbox, ICommandQueue, IPackageStore)
class SQLiteStore(SingleWrites):
    """
    Use L{open_sqlite_store} to get one (it runs the migrations first).

    @ivar outbox_limit: see L{IOutbox.outbox_limit}.

    @ivar transactions: number of transactions committed so far (written by
        the writer thread; for tests and metrics).
    """

    def __init__(
        self,
        reactor: _Reactor,
        path: str,
        durability: str = "power-loss",
        outbox_limit: Optional[int] = None,
    ) -> None:
        self._reactor = reactor
        self.outbox_limit = outbox_limit
        self._path = path
        self._pending: list[Job] = []
        self._flush_call: Any = None
        self._closing = False
        self._closed = False
        self._closed_waiters: list[Deferred[None]] = []
        self._writer = Writer(path, reactor, self, SYNCHRONOUS[durability])
        self.transactions = 0
        self._writer.start()

    # -- plumbing ----------------------------------------------------------

    def _submit(self, fn: Callable[[sqlite3.Connection], T]) -> "Deferred[T]":
        """Run C{fn} on the connection, for every table but the outbox's."""
        return self._submit_tx(lambda tx: fn(tx.conn))

    def _submit_outbox(self, fn: Callable[[sqlite3.Connection], T]) -> "Deferred[T]":
        """Run C{fn} on the connection once the transaction's pending events are written."""
        return self._submit_tx(lambda tx: fn(tx.outbox()))

    def _submit_tx(self, fn: Callable[[Transaction], T]) -> "Deferred[T]":
        if self._closing:
            return fail(RuntimeError("store is closed"))
        d: Deferred[T] = Deferred()
        self._pending.append((fn, d))
        if self._flush_call is None:
            self._flush_call = self._reactor.callLater(0, self._flush)
        return d

    def _flush(self) -> None:
        self._flush_call = None
        batch, self._pending = self._pending, []
        if batch:
            self._writer.queue.put(batch)

    def _closed_in_thread(self) -> None:
        self._closed = True
        waiters, self._closed_waiters = self._closed_waiters, []
        for d in waiters:
            d.callback(None)

    def close(self) -> "Deferred[None]":
        d: Deferred[None] = Deferred()
        if self._closed:
            d.callback(None)
            return d
        self._closed_waiters.append(d)
        if not self._closing:
            self._closing = True
            if self._flush_call is not None:
                self._flush_call.cancel()
            self._flush()
            self._writer.queue.put(None)
        return d

    def migrate(self) -> "Deferred[int]":
        """Apply pending schema migrations; fires with the schema version."""
        return self._submit_outbox(migrate)

    # -- units of work -----------------------------------------------------

    def commit(self, unit: UnitOfWork) -> "Deferred[list[Any]]":
        operations = unit.operations
        # One job for the writer: all or nothing.
        return self._submit_tx(lambda tx: [apply(tx, op) for op in operations])

    def commit_one(self, operation: Operation) -> "Deferred[Any]":
        # A unit of one: no list to unwrap.
        return self._submit_tx(lambda tx: apply(tx, operation))

    # -- outbox ------------------------------------------------------------

    def peek(self, limit: int, after: int = 0) -> "Deferred[list[OutboxEvent]]":
        return self._submit_outbox(lambda conn: outbox.query(conn, None, None, after, limit))

    def acknowledge(self, positions: Sequence[int]) -> "Deferred[int]":
        chosen = list(positions)
        return self._submit_outbox(lambda conn: outbox.acknowledge(conn, chosen))

    def size(self) -> "Deferred[int]":
        return self._submit_outbox(outbox.size)

    def query(
        self,
        device_id: Optional[str] = None,
        type: Optional[str] = None,
        after: int = 0,
        limit: int = 100,
    ) -> "Deferred[list[OutboxEvent]]":
        return self._submit_outbox(lambda conn: outbox.query(conn, device_id, type, after, limit))

    def prune(self, received_before_ms: int, keep: int) -> "Deferred[int]":
        return self._submit_outbox(lambda conn: outbox.prune(conn, received_before_ms, keep))

    def dead_letter(
        self, position: int, status: int, reason: str, at_ms: int
    ) -> "Deferred[bool]":
        return self._submit_outbox(
            lambda conn: outbox.dead_letter(conn, position, status, reason, at_ms)
        )

    def dead_letters(self, limit: int = 100, after: int = 0) -> "Deferred[list[DeadLetter]]":
        return self._submit_outbox(lambda conn: outbox.dead_letters(conn, limit, after))

    def replay(self, positions: Optional[Sequence[int]] = None) -> "Deferred[int]":
        chosen = None if positions is None else list(positions)
        return self._submit_outbox(lambda conn: outbox.replay(conn, chosen))

    def discard(self, positions: Optional[Sequence[int]] = None) -> "Deferred[int]":
        chosen = None if positions is None else list(positions)
        return self._submit_outbox(lambda conn: outbox.discard(conn, chosen))

    # -- devices -----------------------------------------------------------

    def get_device(self, device_id: str) -> "Deferred[Optional[Device]]":
        def op(conn: sqlite3.Connection) -> Optional[Device]:
            check_text("device id", device_id)
            row = conn.execute(
                f"SELECT {DEVICE_COLUMNS} FROM devices WHERE id=?", (device_id,)
            ).fetchone()
            return None if row is None else device_from_row(row)

        return self._submit(op)

    def find_device(self, application: str, name: str) -> "Deferred[Optional[Device]]":
        def op(conn: sqlite3.Connection) -> Optional[Device]:
            check_text("application", application)
            check_text("device name", name)
            row = conn.execute(
                f"SELECT {DEVICE_COLUMNS} FROM devices WHERE application=? AND name=?",
                (application, name),
            ).fetchone()
            return None if row is None else device_from_row(row)

        return self._submit(op)

    def list_devices(self, application: Optional[str] = None) -> "Deferred[list[Device]]":
        def op(conn: sqlite3.Connection) -> list[Device]:
            if application is None:
                rows = conn.execute(
                    f"SELECT {DEVICE_COLUMNS} FROM devices ORDER BY name, application, id"
                )
            else:
                check_text("application", application)
                rows = conn.execute(
                    f"SELECT {DEVICE_COLUMNS} FROM devices WHERE application=? "
                    "ORDER BY name, application, id",
                    (application,),
                )
            return [device_from_row(r) for r in rows]

        return self._submit(op)

    # -- credentials -------------------------------------------------------

    def get_credentials(self, device_id: str) -> "Deferred[list[Credential]]":
        def op(conn: sqlite3.Connection) -> list[Credential]:
            check_text("device id", device_id)
            rows = conn.execute(
                "SELECT device_id, kind, lookup, secret FROM credentials "
                "WHERE device_id=? ORDER BY kind",
                (device_id,),
            )
            return [credential_from_row(r) for r in rows]

        return self._submit(op)

    def find_credential(
        self, kind: CredentialKind, lookup: str
    ) -> "Deferred[Optional[Credential]]":
        def op(conn: sqlite3.Connection) -> Optional[Credential]:
            check_text(f"{kind.value} lookup", lookup)
            row = conn.execute(
                "SELECT device_id, kind, lookup, secret FROM credentials WHERE kind=? AND lookup=?",
                (kind.value, lookup),
            ).fetchone()
            return None if row is None else credential_from_row(row)

        return self._submit(op)

    def load_all_credentials(self) -> "Deferred[list[Credential]]":
        def op(conn: sqlite3.Connection) -> list[Credential]:
            rows = conn.execute("SELECT device_id, kind, lookup, secret FROM credentials")
            return [credential_from_row(r) for r in rows]

        return self._submit(op)

    # -- profiles ----------------------------------------------------------

    def get_profile(self, name: str) -> "Deferred[Optional[Profile]]":
        def op(conn: sqlite3.Connection) -> Optional[Profile]:
            check_text("profile name", name)
            row = conn.execute(
                f"SELECT {PROFILE_COLUMNS} FROM profiles WHERE name=?", (name,)
            ).fetchone()
            return None if row is None else profile_from_row(row)

        return self._submit(op)

    def find_profile_by_provision_key(self, provision_key: str) -> "Deferred[Optional[Profile]]":
        def op(conn: sqlite3.Connection) -> Optional[Profile]:
            check_text("provision key", provision_key)
            row = conn.execute(
                f"SELECT {PROFILE_COLUMNS} FROM profiles WHERE provision_key=?",
                (provision_key,),
            ).fetchone()
            return None if row is None else profile_from_row(row)

        return self._submit(op)

    def list_profiles(self) -> "Deferred[list[Profile]]":
        def op(conn: sqlite3.Connection) -> list[Profile]:
            rows = conn.execute(f"SELECT {PROFILE_COLUMNS} FROM profiles ORDER BY name")
            return [profile_from_row(r) for r in rows]

        return self._submit(op)

    # -- attributes and telemetry ------------------------------------------

    def get_attributes(
        self,
        device_id: str,
        scope: AttributeScope,
        keys: Optional[Sequence[str]] = None,
    ) -> "Deferred[list[Attribute]]":
        def op(conn: sqlite3.Connection) -> list[Attribute]:
            rows = _select(
                conn,
                "SELECT key, value, last_update_ts FROM attributes WHERE device_id=? AND scope=?",
                [check_text("device id", device_id), scope.value],
                keys,
            )
            return [Attribute(scope, k, decode_json(v), ts) for k, v, ts in rows]

        return self._submit(op)

    def get_latest_telemetry(
        self, device_id: str, keys: Optional[Sequence[str]] = None
    ) -> "Deferred[list[TelemetryPoint]]":
        def op(conn: sqlite3.Connection) -> list[TelemetryPoint]:
            rows = _select(
                conn,
                "SELECT key, value, ts FROM telemetry_latest WHERE device_id=?",
                [check_text("device id", device_id)],
                keys,
            )
            return [TelemetryPoint(k, decode_json(v), ts) for k, v, ts in rows]

        return self._submit(op)

    # -- claims ------------------------------------------------------------

    def get_claim(self, device_id: str) -> "Deferred[Optional[Claim]]":
        def op(conn: sqlite3.Connection) -> Optional[Claim]:
            check_text("device id", device_id)
            row = conn.execute(
                "SELECT device_id, secret_key, expires_at, created FROM claims WHERE device_id=?",
                (device_id,),
            ).fetchone()
            return None if row is None else Claim(*row)

        return self._submit(op)

    # -- RPC queue ---------------------------------------------------------

    def last_rpc_id(self) -> "Deferred[int]":
        return self._submit(last_rpc_id)

    def get_rpc(self, device_id: str, rpc_id: int) -> "Deferred[Optional[Rpc]]":
        def op(conn: sqlite3.Connection) -> Optional[Rpc]:
            row = conn.execute(
                f"SELECT {RPC_COLUMNS} FROM rpcs WHERE id=? AND device_id=?",
                (check_int64("rpc id", rpc_id), check_text("device id", device_id)),
            ).fetchone()
            return None if row is None else rpc_from_row(row)

        return self._submit(op)

    def list_rpcs(
        self, device_id: str, state: Optional[RpcState] = None, limit: int = 100
    ) -> "Deferred[list[Rpc]]":
        def op(conn: sqlite3.Connection) -> list[Rpc]:
            sql = f"SELECT {RPC_COLUMNS} FROM rpcs WHERE device_id=?"
            args: list[Any] = [check_text("device id", device_id)]
            if state is not None:
                sql += " AND state=?"
                args.append(state.value)
            rows = conn.execute(sql + " ORDER BY id LIMIT ?", [*args, limit])
            return [rpc_from_row(r) for r in rows]

        return self._submit(op)

    def unfinished_rpcs(self) -> "Deferred[list[Rpc]]":
        def op(conn: sqlite3.Connection) -> list[Rpc]:
            rows = conn.execute(
                f"SELECT {RPC_COLUMNS} FROM rpcs WHERE state IN {UNFINISHED_SQL} "
                "ORDER BY device_id, id"
            )
            return [rpc_from_row(r) for r in rows]

        return self._submit(op)

    # -- OTA packages ------------------------------------------------------

    def get_package(
        self, kind: OtaKind, title: str, version: str
    ) -> "Deferred[Optional[OtaPackage]]":
        return self._submit(lambda c: packages_sql.get_package(_run(c), kind, title, version))

    def list_packages(self, kind: Optional[OtaKind] = None) -> "Deferred[list[OtaPackage]]":
        return self._submit(lambda c: packages_sql.list_packages(_run(c), kind))

    def get_assignment(
        self, kind: OtaKind, target_type: AssignmentTarget, target: str
    ) -> "Deferred[Optional[OtaAssignment]]":
        return self._submit(
            lambda c: packages_sql.get_assignment(_run(c), kind, target_type, target)
        )

    def list_assignments(
        self, kind: Optional[OtaKind] = None
    ) -> "Deferred[list[OtaAssignment]]":
        return self._submit(lambda c: packages_sql.list_assignments(_run(c), kind))


def _run(conn: sqlite3.Connection) -> packages_sql.Run:
    return lambda sql, args: conn.execute(sql, args).fetchall()


def _select(
    conn: sqlite3.Connection, sql: str, args: list[Any], keys: Optional[Sequence[str]]
) -> list[Any]:
    """Rows of C{sql} (filtered by C{keys} if given), ordered by key."""
    if keys is not None:
        wanted = check_texts("key", keys)
        if not wanted:
            return []
        sql += f" AND key IN ({placeholders(len(wanted))})"
        args = args + list(wanted)
    return conn.execute(sql + " ORDER BY key", args).fetchall()


def open_sqlite_store(
    reactor: Any,
    path: str,
    durability: str = "power-loss",
    outbox_limit: Optional[int] = None,
) -> "Deferred[SQLiteStore]":
    """
    Open (creating if needed, owner-only) the database at C{path}, migrate
    it, and fire with the store.  The parent directory must exist.

    @param reactor: provides L{IReactorTime} and L{IReactorFromThreads}.
    @param durability: a key of L{SYNCHRONOUS}.
    @param outbox_limit: see L{IOutbox.outbox_limit}.
    """
    private_database(path)
    store = SQLiteStore(reactor, path, durability, outbox_limit)

    async def migrate() -> SQLiteStore:
        try:
            version = await store.migrate()
        except BaseException:
            await store.close()
            raise
        log.info(
            "SQLite store {path} at schema version {version}",
            path=path,
            version=version,
        )
        return store

    return Deferred.fromCoroutine(migrate())
