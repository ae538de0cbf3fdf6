# -*- test-case-name: tests.store.test_postgres -*-
"""
L{PostgresStore}: L{IStore} over the connection thread (writes, and the
outbox reads tied to its session's partition locks), a pool of connections
for the other reads (L{gateway.store.postgres.readers}), and the change feed
of the listening thread.
"""

from __future__ import annotations

import json
from typing import Any, Callable, Mapping, Optional, Sequence, TypeVar

from twisted.internet.defer import Deferred, fail
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
from gateway.store.changes import Change, ChangeKind, ChangeListener, LocalChangeFeed, payloads
from gateway.store.interfaces import (
    IChangeFeed,
    ICommandQueue,
    IHeardLog,
    INodeTable,
    IOutbox,
    IPackageStore,
    IStore,
)
from gateway.store.nodes import NodeRow
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
from .connection import Connection, Job
from .listener import Listener
from .operations import apply, runner
from .partitions import Partitions
from .readers import Readers
from .schema import CHANNEL_SQL, Cursor, migrate

__all__ = ["PostgresStore", "open_postgres_store"]

T = TypeVar("T")

log = Logger()

_CREDENTIAL = "SELECT device_id, kind, lookup, secret FROM credentials"


def _one(cur: Cursor, sql: str, args: Sequence[Any] = ()) -> Any:
    cur.execute(sql, args)
    return cur.fetchone()


def _all(cur: Cursor, sql: str, args: Sequence[Any] = ()) -> list[Any]:
    cur.execute(sql, args)
    return cur.fetchall()


def _keyed(cur: Cursor, sql: str, args: list[Any], keys: Optional[Sequence[str]]) -> list[Any]:
    """Rows of C{sql} (filtered by C{keys} if given), ordered by key."""
    if keys is not None:
        wanted = check_texts("key", keys)
        if not wanted:
            return []
        sql += " AND key = ANY(%s)"
        args = [*args, list(wanted)]
    return _all(cur, sql + ' ORDER BY key COLLATE "C"', args)


@implementer(IStore, IOutbox, ICommandQueue, IPackageStore, IChangeFeed, INodeTable, IHeardLog)
class PostgresStore(SingleWrites):
    """
    Use L{open_postgres_store} to get one (it runs the migrations first).

    @ivar outbox_limit: see L{IOutbox.outbox_limit}.
    """

    def __init__(self, reactor: Any, dsn: str, outbox_limit: Optional[int] = None) -> None:
        self._reactor = reactor
        self.outbox_limit = outbox_limit
        self._pending: list[Job] = []
        self._flush_call: Any = None
        self._closing = False
        self._closed = False
        self._closed_waiters: list[Deferred[None]] = []
        self._partitions = Partitions()
        self._connection = Connection(dsn, reactor, self._closed_in_thread)
        self._connection.start()
        self._readers = Readers(reactor, dsn)
        # Who hears the listening thread's changes (delivered as a local feed's).
        self._feed = LocalChangeFeed()
        self._listener = Listener(dsn, reactor, self._changed, lambda: self._connection.session)

    def listen(self) -> "Deferred[None]":
        """Start the change feed; fires once it hears every later commit."""
        self._listener.start()
        return self._listener.listening

    @property
    def listening_session(self) -> Optional[int]:
        """The backend pid of the change feed's session (for tests)."""
        return self._listener.session

    # -- IChangeFeed -------------------------------------------------------

    def subscribe(self, listener: ChangeListener) -> Callable[[], None]:
        return self._feed.subscribe(listener)

    def _changed(self, change: Change) -> None:
        if not self._closing:
            self._feed.publish(change)

    @property
    def transactions(self) -> int:
        """Transactions committed so far (for tests and metrics)."""
        return self._connection.transactions

    # -- plumbing ----------------------------------------------------------

    def _submit(self, fn: Callable[[Cursor], T]) -> "Deferred[T]":
        if self._closing:
            return fail(RuntimeError("store is closed"))
        d: Deferred[T] = Deferred()
        self._pending.append((fn, d))
        if self._flush_call is None:
            self._flush_call = self._reactor.callLater(0, self._flush)
        return d

    def _read(self, fn: Callable[[Cursor], T]) -> "Deferred[T]":
        """A read, on the pool's connections: it sees what was committed before it."""
        if self._closing:
            return fail(RuntimeError("store is closed"))
        return self._readers.run(fn)

    def _flush(self) -> None:
        self._flush_call = None
        batch, self._pending = self._pending, []
        if batch:
            self._connection.queue.put(batch)

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
            self._listener.stop()
            self._readers.stop()
            if self._flush_call is not None:
                self._flush_call.cancel()
            self._flush()
            self._connection.queue.put(None)
        return d

    def migrate(self) -> "Deferred[int]":
        """Apply pending schema migrations; fires with the schema version."""
        return self._submit(migrate)

    # -- units of work -----------------------------------------------------

    def commit(self, unit: UnitOfWork) -> "Deferred[list[Any]]":
        operations, limit = unit.operations, self.outbox_limit
        return self._submit(lambda cur: [apply(cur, op, limit) for op in operations])

    def commit_one(self, operation: Operation) -> "Deferred[Any]":
        limit = self.outbox_limit
        return self._submit(lambda cur: apply(cur, operation, limit))

    # -- outbox ------------------------------------------------------------

    def peek(self, limit: int, after: int = 0) -> "Deferred[list[OutboxEvent]]":
        # Only the events of this node's partitions: see partitions.py.
        return self._submit(lambda cur: self._partitions.peek(cur, limit, after))

    def acknowledge(self, positions: Sequence[int]) -> "Deferred[int]":
        chosen = list(positions)

        def op(cur: Cursor) -> int:
            gone = outbox.acknowledge(cur, chosen)
            self._partitions.settled(chosen)
            return gone

        return self._submit(op)

    def size(self) -> "Deferred[int]":
        return self._read(outbox.size)

    def query(
        self,
        device_id: Optional[str] = None,
        type: Optional[str] = None,
        after: int = 0,
        limit: int = 100,
    ) -> "Deferred[list[OutboxEvent]]":
        return self._read(lambda cur: outbox.query(cur, device_id, type, after, limit))

    def prune(self, received_before_ms: int, keep: int) -> "Deferred[int]":
        return self._submit(lambda cur: outbox.prune(cur, received_before_ms, keep))

    def dead_letter(
        self, position: int, status: int, reason: str, at_ms: int
    ) -> "Deferred[bool]":
        def op(cur: Cursor) -> bool:
            moved = outbox.dead_letter(cur, position, status, reason, at_ms)
            self._partitions.settled([position])
            return moved

        return self._submit(op)

    def dead_letters(self, limit: int = 100, after: int = 0) -> "Deferred[list[DeadLetter]]":
        return self._read(lambda cur: outbox.dead_letters(cur, limit, after))

    def replay(self, positions: Optional[Sequence[int]] = None) -> "Deferred[int]":
        chosen = None if positions is None else list(positions)
        return self._submit(lambda cur: outbox.replay(cur, chosen))

    def discard(self, positions: Optional[Sequence[int]] = None) -> "Deferred[int]":
        chosen = None if positions is None else list(positions)
        return self._submit(lambda cur: outbox.discard(cur, chosen))

    # -- INodeTable --------------------------------------------------------

    def heartbeat(self, node_id: str, started: int, at: int) -> "Deferred[None]":
        def op(cur: Cursor) -> None:
            check_text("node id", node_id)
            cur.execute(
                "INSERT INTO nodes (node_id, started, heartbeat, partitions) "
                "VALUES (%s,%s,%s,%s) ON CONFLICT (node_id) DO UPDATE SET "
                "started=excluded.started, heartbeat=excluded.heartbeat, "
                "partitions=excluded.partitions",
                (node_id, started, at, json.dumps(sorted(self._partitions.owned))),
            )

        return self._submit(op)

    def nodes(self) -> "Deferred[list[NodeRow]]":
        def op(cur: Cursor) -> list[NodeRow]:
            rows = _all(
                cur,
                'SELECT node_id, started, heartbeat, partitions FROM nodes '
                'ORDER BY node_id COLLATE "C"',
            )
            return [NodeRow(n, s, h, tuple(json.loads(p))) for n, s, h, p in rows]

        return self._read(op)

    # -- IHeardLog ---------------------------------------------------------

    def record_heard(self, heard: Mapping[str, int]) -> "Deferred[None]":
        chosen = sorted(heard.items())

        def op(cur: Cursor) -> None:
            for device_id, at in chosen:
                cur.execute(
                    "INSERT INTO device_heard (device_id, heard) "
                    "SELECT id, %s FROM devices WHERE id=%s "
                    "ON CONFLICT (device_id) DO UPDATE SET "
                    "heard=GREATEST(device_heard.heard, excluded.heard) RETURNING heard",
                    (check_int64("heard", at), check_text("device id", device_id)),
                )
                row = cur.fetchone()
                if row is not None:
                    (payload,) = payloads(Change(ChangeKind.HEARD, device_id, ts=int(row[0])))
                    cur.execute(f"SELECT pg_notify({CHANNEL_SQL}, %s)", (payload,))

        return self._submit(op)

    def last_heard(self) -> "Deferred[dict[str, int]]":
        def op(cur: Cursor) -> dict[str, int]:
            return {d: int(h) for d, h in _all(cur, "SELECT device_id, heard FROM device_heard")}

        return self._read(op)

    # -- devices -----------------------------------------------------------

    def get_device(self, device_id: str) -> "Deferred[Optional[Device]]":
        def op(cur: Cursor) -> Optional[Device]:
            check_text("device id", device_id)
            row = _one(cur, f"SELECT {DEVICE_COLUMNS} FROM devices WHERE id=%s", (device_id,))
            return None if row is None else device_from_row(row)

        return self._read(op)

    def find_device(self, application: str, name: str) -> "Deferred[Optional[Device]]":
        def op(cur: Cursor) -> Optional[Device]:
            check_text("application", application)
            check_text("device name", name)
            row = _one(
                cur,
                f"SELECT {DEVICE_COLUMNS} FROM devices WHERE application=%s AND name=%s",
                (application, name),
            )
            return None if row is None else device_from_row(row)

        return self._read(op)

    def list_devices(self, application: Optional[str] = None) -> "Deferred[list[Device]]":
        def op(cur: Cursor) -> list[Device]:
            sql = f"SELECT {DEVICE_COLUMNS} FROM devices"
            args: list[Any] = []
            if application is not None:
                sql += " WHERE application=%s"
                args.append(check_text("application", application))
            order = ' ORDER BY name COLLATE "C", application COLLATE "C", id COLLATE "C"'
            return [device_from_row(r) for r in _all(cur, sql + order, args)]

        return self._read(op)

    # -- credentials -------------------------------------------------------

    def get_credentials(self, device_id: str) -> "Deferred[list[Credential]]":
        def op(cur: Cursor) -> list[Credential]:
            check_text("device id", device_id)
            rows = _all(
                cur, _CREDENTIAL + ' WHERE device_id=%s ORDER BY kind COLLATE "C"', (device_id,)
            )
            return [credential_from_row(r) for r in rows]

        return self._read(op)

    def find_credential(
        self, kind: CredentialKind, lookup: str
    ) -> "Deferred[Optional[Credential]]":
        def op(cur: Cursor) -> Optional[Credential]:
            check_text(f"{kind.value} lookup", lookup)
            row = _one(cur, _CREDENTIAL + " WHERE kind=%s AND lookup=%s", (kind.value, lookup))
            return None if row is None else credential_from_row(row)

        return self._read(op)

    def load_all_credentials(self) -> "Deferred[list[Credential]]":
        return self._read(lambda cur: [credential_from_row(r) for r in _all(cur, _CREDENTIAL)])

    # -- profiles ----------------------------------------------------------

    def get_profile(self, name: str) -> "Deferred[Optional[Profile]]":
        def op(cur: Cursor) -> Optional[Profile]:
            check_text("profile name", name)
            row = _one(cur, f"SELECT {PROFILE_COLUMNS} FROM profiles WHERE name=%s", (name,))
            return None if row is None else profile_from_row(row)

        return self._read(op)

    def find_profile_by_provision_key(self, provision_key: str) -> "Deferred[Optional[Profile]]":
        def op(cur: Cursor) -> Optional[Profile]:
            check_text("provision key", provision_key)
            row = _one(
                cur,
                f"SELECT {PROFILE_COLUMNS} FROM profiles WHERE provision_key=%s",
                (provision_key,),
            )
            return None if row is None else profile_from_row(row)

        return self._read(op)

    def list_profiles(self) -> "Deferred[list[Profile]]":
        def op(cur: Cursor) -> list[Profile]:
            rows = _all(cur, f'SELECT {PROFILE_COLUMNS} FROM profiles ORDER BY name COLLATE "C"')
            return [profile_from_row(r) for r in rows]

        return self._read(op)

    # -- attributes and telemetry ------------------------------------------

    def get_attributes(
        self,
        device_id: str,
        scope: AttributeScope,
        keys: Optional[Sequence[str]] = None,
    ) -> "Deferred[list[Attribute]]":
        def op(cur: Cursor) -> list[Attribute]:
            rows = _keyed(
                cur,
                "SELECT key, value, last_update_ts FROM attributes "
                "WHERE device_id=%s AND scope=%s",
                [check_text("device id", device_id), scope.value],
                keys,
            )
            return [Attribute(scope, k, decode_json(v), ts) for k, v, ts in rows]

        return self._read(op)

    def get_latest_telemetry(
        self, device_id: str, keys: Optional[Sequence[str]] = None
    ) -> "Deferred[list[TelemetryPoint]]":
        def op(cur: Cursor) -> list[TelemetryPoint]:
            rows = _keyed(
                cur,
                "SELECT key, value, ts FROM telemetry_latest WHERE device_id=%s",
                [check_text("device id", device_id)],
                keys,
            )
            return [TelemetryPoint(k, decode_json(v), ts) for k, v, ts in rows]

        return self._read(op)

    # -- claims ------------------------------------------------------------

    def get_claim(self, device_id: str) -> "Deferred[Optional[Claim]]":
        def op(cur: Cursor) -> Optional[Claim]:
            check_text("device id", device_id)
            row = _one(
                cur,
                "SELECT device_id, secret_key, expires_at, created FROM claims "
                "WHERE device_id=%s",
                (device_id,),
            )
            return None if row is None else Claim(*row)

        return self._read(op)

    # -- RPC queue ---------------------------------------------------------

    def last_rpc_id(self) -> "Deferred[int]":
        return self._read(
            lambda cur: int(_one(cur, "SELECT last FROM rpc_last_id WHERE id=0")[0])
        )

    def get_rpc(self, device_id: str, rpc_id: int) -> "Deferred[Optional[Rpc]]":
        def op(cur: Cursor) -> Optional[Rpc]:
            row = _one(
                cur,
                f"SELECT {RPC_COLUMNS} FROM rpcs WHERE id=%s AND device_id=%s",
                (check_int64("rpc id", rpc_id), check_text("device id", device_id)),
            )
            return None if row is None else rpc_from_row(row)

        return self._read(op)

    def list_rpcs(
        self, device_id: str, state: Optional[RpcState] = None, limit: int = 100
    ) -> "Deferred[list[Rpc]]":
        def op(cur: Cursor) -> list[Rpc]:
            sql = f"SELECT {RPC_COLUMNS} FROM rpcs WHERE device_id=%s"
            args: list[Any] = [check_text("device id", device_id)]
            if state is not None:
                sql += " AND state=%s"
                args.append(state.value)
            rows = _all(cur, sql + " ORDER BY id LIMIT %s", [*args, limit])
            return [rpc_from_row(r) for r in rows]

        return self._read(op)

    def unfinished_rpcs(self) -> "Deferred[list[Rpc]]":
        def op(cur: Cursor) -> list[Rpc]:
            rows = _all(
                cur,
                f"SELECT {RPC_COLUMNS} FROM rpcs WHERE state IN {UNFINISHED_SQL} "
                'ORDER BY device_id COLLATE "C", id',
            )
            return [rpc_from_row(r) for r in rows]

        return self._read(op)

    # -- OTA packages ------------------------------------------------------

    def get_package(
        self, kind: OtaKind, title: str, version: str
    ) -> "Deferred[Optional[OtaPackage]]":
        return self._read(lambda c: packages_sql.get_package(runner(c), kind, title, version))

    def list_packages(self, kind: Optional[OtaKind] = None) -> "Deferred[list[OtaPackage]]":
        return self._read(lambda c: packages_sql.list_packages(runner(c), kind))

    def get_assignment(
        self, kind: OtaKind, target_type: AssignmentTarget, target: str
    ) -> "Deferred[Optional[OtaAssignment]]":
        return self._read(
            lambda c: packages_sql.get_assignment(runner(c), kind, target_type, target)
        )

    def list_assignments(
        self, kind: Optional[OtaKind] = None
    ) -> "Deferred[list[OtaAssignment]]":
        return self._read(lambda c: packages_sql.list_assignments(runner(c), kind))


def open_postgres_store(
    reactor: Any, dsn: str, outbox_limit: Optional[int] = None
) -> "Deferred[PostgresStore]":
    """
    Connect to the database C{dsn} names (libpq's C{PG*} variables fill in
    what it leaves out), migrate it, and fire with the store.

    @param reactor: provides L{IReactorTime} and L{IReactorFromThreads}.
    @param outbox_limit: see L{IOutbox.outbox_limit}.
    """
    store = PostgresStore(reactor, dsn, outbox_limit)

    async def migrated() -> PostgresStore:
        try:
            version = await store.migrate()
            await store.listen()
        except BaseException:
            await store.close()
            raise
        log.info("PostgreSQL store at schema version {version}", version=version)
        return store

    return Deferred.fromCoroutine(migrated())
