# -*- test-case-name: tests.store.test_sqlite -*-
"""
The embedded SQLite backend of L{IStore}.

 - stdlib C{sqlite3}, WAL journal, C{synchronous=NORMAL},
   C{foreign_keys=ON};
 - schema migrations: L{MIGRATIONS} is applied in order, the schema version
   being C{PRAGMA user_version};
 - one dedicated thread owns the connection.  Calls made on the reactor
   thread are collected during one reactor tick and handed to the thread as
   one batch, which runs in one transaction (group commit): each operation
   inside a savepoint, so one failing operation does not undo the others.
   Batches queued while the thread is busy are merged into the next
   transaction.  Results are delivered on the reactor thread with
   C{callFromThread}, after the commit.  Reads run on the same thread, in
   order with the writes.

Values are serialised to JSON text on the calling thread, so callers may
mutate what they passed as soon as the call returns.
"""

from __future__ import annotations

import json
import queue
import sqlite3
import threading
from typing import Any, Callable, Mapping, Optional, Sequence, TypeVar

from twisted.internet.defer import Deferred, fail
from twisted.internet.interfaces import IReactorFromThreads, IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

from gateway.service.errors import Conflict, InvalidArgument, NotFound
from gateway.service.model import (
    Attribute,
    AttributeScope,
    Claim,
    Credential,
    CredentialKind,
    Device,
    JSONValue,
    PayloadFormat,
    PowerMode,
    Profile,
    ProvisionStrategy,
    TelemetryPoint,
)
from gateway.store.interfaces import IStore

__all__ = ["SQLiteStore", "open_sqlite_store", "MIGRATIONS"]

T = TypeVar("T")

log = Logger()

#: Schema migrations; C{MIGRATIONS[i]} brings user_version i to i + 1.
#: Never edit a released entry: append a new one.
MIGRATIONS: list[str] = [
    """
    CREATE TABLE profiles (
        name TEXT PRIMARY KEY,
        payload_format TEXT NOT NULL,
        telemetry_proto TEXT,
        attributes_proto TEXT,
        rpc_request_proto TEXT,
        rpc_response_proto TEXT,
        power_mode TEXT NOT NULL,
        psm_activity_timer INTEGER,
        edrx_cycle INTEGER,
        paging_transmission_window INTEGER,
        provisioning TEXT NOT NULL,
        provision_key TEXT UNIQUE,
        provision_secret TEXT
    );
    CREATE TABLE devices (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        application TEXT NOT NULL,
        profile TEXT NOT NULL REFERENCES profiles(name),
        enabled INTEGER NOT NULL,
        created REAL NOT NULL,
        UNIQUE (application, name)
    );
    CREATE INDEX devices_profile ON devices(profile);
    CREATE TABLE credentials (
        device_id TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
        kind TEXT NOT NULL,
        lookup TEXT NOT NULL,
        secret BLOB NOT NULL,
        PRIMARY KEY (device_id, kind),
        UNIQUE (kind, lookup)
    );
    CREATE TABLE attributes (
        device_id TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
        scope TEXT NOT NULL,
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        last_update_ts INTEGER NOT NULL,
        PRIMARY KEY (device_id, scope, key)
    );
    CREATE TABLE telemetry_latest (
        device_id TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        ts INTEGER NOT NULL,
        PRIMARY KEY (device_id, key)
    );
    CREATE TABLE claims (
        device_id TEXT PRIMARY KEY REFERENCES devices(id) ON DELETE CASCADE,
        secret_key TEXT NOT NULL,
        expires_at INTEGER NOT NULL,
        created INTEGER NOT NULL
    );
    """,
]


class _Reactor(IReactorTime, IReactorFromThreads):
    """What the store needs of the reactor (for typing only)."""


_Op = tuple[Callable[[sqlite3.Connection], Any], "Deferred[Any]"]


def _dumps(value: JSONValue) -> str:
    try:
        return json.dumps(value, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as e:
        raise InvalidArgument(f"not a JSON value: {e}") from None


def _placeholders(n: int) -> str:
    return ",".join("?" * n)


class _Writer(threading.Thread):
    """The thread that owns the connection and runs the batches."""

    def __init__(self, path: str, reactor: Any, store: "SQLiteStore") -> None:
        super().__init__(name=f"sqlite-writer:{path}", daemon=True)
        self.path = path
        self.reactor = reactor
        self.store = store
        self.queue: "queue.Queue[Optional[list[_Op]]]" = queue.Queue()

    def run(self) -> None:
        conn: Optional[sqlite3.Connection] = None
        error: Optional[BaseException] = None
        try:
            conn = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=True
            )
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA busy_timeout=5000")
        except BaseException as e:
            error = e
        stopping = False
        while not stopping:
            batch = self.queue.get()
            if batch is None:
                break
            while True:
                try:
                    more = self.queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stopping = True
                    break
                batch.extend(more)
            if conn is None:
                assert error is not None
                failure = Failure(error)
                self.reactor.callFromThread(
                    _deliver, [(d, False, failure) for _, d in batch]
                )
            else:
                self.reactor.callFromThread(_deliver, self._run_batch(conn, batch))
        if conn is not None:
            conn.close()
        self.reactor.callFromThread(self.store._closed_in_thread)

    def _run_batch(
        self, conn: sqlite3.Connection, batch: list[_Op]
    ) -> list[tuple["Deferred[Any]", bool, Any]]:
        results: list[tuple[Deferred[Any], bool, Any]] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
        except BaseException:
            f = Failure()
            return [(d, False, f) for _, d in batch]
        for fn, d in batch:
            conn.execute("SAVEPOINT op")
            try:
                value = fn(conn)
            except sqlite3.IntegrityError as e:
                conn.execute("ROLLBACK TO op")
                conn.execute("RELEASE op")
                results.append((d, False, Failure(Conflict(str(e)))))
            except BaseException:
                f = Failure()
                conn.execute("ROLLBACK TO op")
                conn.execute("RELEASE op")
                results.append((d, False, f))
            else:
                conn.execute("RELEASE op")
                results.append((d, True, value))
        try:
            conn.execute("COMMIT")
        except BaseException:
            f = Failure()
            try:
                conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass
            return [(d, False, f) for _, d in batch]
        self.store.transactions += 1
        return results


def _deliver(results: list[tuple["Deferred[Any]", bool, Any]]) -> None:
    for d, ok, value in results:
        if ok:
            d.callback(value)
        else:
            d.errback(value)


def _migrate(conn: sqlite3.Connection) -> int:
    """Apply pending migrations (runs inside the batch's transaction)."""
    (version,) = conn.execute("PRAGMA user_version").fetchone()
    if version > len(MIGRATIONS):
        raise RuntimeError(
            f"database schema version {version} is newer than this gateway "
            f"({len(MIGRATIONS)})"
        )
    for i in range(version, len(MIGRATIONS)):
        for statement in MIGRATIONS[i].split(";"):
            if statement.strip():
                conn.execute(statement)
        conn.execute(f"PRAGMA user_version={i + 1}")
    return len(MIGRATIONS)


def _device(row: Sequence[Any]) -> Device:
    return Device(
        id=row[0],
        name=row[1],
        application=row[2],
        profile=row[3],
        enabled=bool(row[4]),
        created=float(row[5]),
    )


_DEVICE_COLUMNS = "id, name, application, profile, enabled, created"

_PROFILE_COLUMNS = (
    "name, payload_format, telemetry_proto, attributes_proto, "
    "rpc_request_proto, rpc_response_proto, power_mode, psm_activity_timer, "
    "edrx_cycle, paging_transmission_window, provisioning, provision_key, "
    "provision_secret"
)


def _profile(row: Sequence[Any]) -> Profile:
    return Profile(
        name=row[0],
        payload_format=PayloadFormat(row[1]),
        telemetry_proto=row[2],
        attributes_proto=row[3],
        rpc_request_proto=row[4],
        rpc_response_proto=row[5],
        power_mode=PowerMode(row[6]),
        psm_activity_timer=row[7],
        edrx_cycle=row[8],
        paging_transmission_window=row[9],
        provisioning=ProvisionStrategy(row[10]),
        provision_key=row[11],
        provision_secret=row[12],
    )


def _credential(row: Sequence[Any]) -> Credential:
    return Credential(row[0], CredentialKind(row[1]), row[2], bytes(row[3]))


def _require_device(conn: sqlite3.Connection, device_id: str) -> None:
    if conn.execute("SELECT 1 FROM devices WHERE id=?", (device_id,)).fetchone() is None:
        raise NotFound(f"no device {device_id!r}")


@implementer(IStore)
class SQLiteStore:
    """
    Use L{open_sqlite_store} to get one (it runs the migrations first).

    @ivar transactions: number of transactions committed so far (written by
        the writer thread; for tests and metrics).
    """

    def __init__(self, reactor: _Reactor, path: str) -> None:
        self._reactor = reactor
        self._path = path
        self._pending: list[_Op] = []
        self._flush_call: Any = None
        self._closing = False
        self._closed = False
        self._closed_waiters: list[Deferred[None]] = []
        self._writer = _Writer(path, reactor, self)
        self.transactions = 0
        self._writer.start()

    # -- plumbing ----------------------------------------------------------

    def _submit(self, fn: Callable[[sqlite3.Connection], T]) -> "Deferred[T]":
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
        return self._submit(_migrate)

    # -- devices -----------------------------------------------------------

    def _check_device(self, conn: sqlite3.Connection, device: Device) -> None:
        if conn.execute(
            "SELECT 1 FROM profiles WHERE name=?", (device.profile,)
        ).fetchone() is None:
            raise InvalidArgument(f"no profile {device.profile!r}")
        if conn.execute(
            "SELECT 1 FROM devices WHERE application=? AND name=? AND id<>?",
            (device.application, device.name, device.id),
        ).fetchone() is not None:
            raise Conflict(
                f"device name {device.name!r} is taken in {device.application!r}"
            )

    def create_device(self, device: Device) -> "Deferred[Device]":
        def op(conn: sqlite3.Connection) -> Device:
            if conn.execute(
                "SELECT 1 FROM devices WHERE id=?", (device.id,)
            ).fetchone() is not None:
                raise Conflict(f"device id {device.id!r} is taken")
            self._check_device(conn, device)
            conn.execute(
                f"INSERT INTO devices ({_DEVICE_COLUMNS}) VALUES (?,?,?,?,?,?)",
                (
                    device.id,
                    device.name,
                    device.application,
                    device.profile,
                    int(device.enabled),
                    device.created,
                ),
            )
            return device

        return self._submit(op)

    def update_device(self, device: Device) -> "Deferred[Device]":
        def op(conn: sqlite3.Connection) -> Device:
            _require_device(conn, device.id)
            self._check_device(conn, device)
            conn.execute(
                "UPDATE devices SET name=?, application=?, profile=?, "
                "enabled=?, created=? WHERE id=?",
                (
                    device.name,
                    device.application,
                    device.profile,
                    int(device.enabled),
                    device.created,
                    device.id,
                ),
            )
            return device

        return self._submit(op)

    def delete_device(self, device_id: str) -> "Deferred[None]":
        def op(conn: sqlite3.Connection) -> None:
            _require_device(conn, device_id)
            conn.execute("DELETE FROM devices WHERE id=?", (device_id,))

        return self._submit(op)

    def get_device(self, device_id: str) -> "Deferred[Optional[Device]]":
        def op(conn: sqlite3.Connection) -> Optional[Device]:
            row = conn.execute(
                f"SELECT {_DEVICE_COLUMNS} FROM devices WHERE id=?", (device_id,)
            ).fetchone()
            return None if row is None else _device(row)

        return self._submit(op)

    def find_device(
        self, application: str, name: str
    ) -> "Deferred[Optional[Device]]":
        def op(conn: sqlite3.Connection) -> Optional[Device]:
            row = conn.execute(
                f"SELECT {_DEVICE_COLUMNS} FROM devices "
                "WHERE application=? AND name=?",
                (application, name),
            ).fetchone()
            return None if row is None else _device(row)

        return self._submit(op)

    def list_devices(
        self, application: Optional[str] = None
    ) -> "Deferred[list[Device]]":
        def op(conn: sqlite3.Connection) -> list[Device]:
            if application is None:
                rows = conn.execute(
                    f"SELECT {_DEVICE_COLUMNS} FROM devices "
                    "ORDER BY name, application, id"
                )
            else:
                rows = conn.execute(
                    f"SELECT {_DEVICE_COLUMNS} FROM devices WHERE application=? "
                    "ORDER BY name, application, id",
                    (application,),
                )
            return [_device(r) for r in rows]

        return self._submit(op)

    # -- credentials -------------------------------------------------------

    def put_credential(self, credential: Credential) -> "Deferred[None]":
        c = credential

        def op(conn: sqlite3.Connection) -> None:
            _require_device(conn, c.device_id)
            if conn.execute(
                "SELECT 1 FROM credentials WHERE kind=? AND lookup=? "
                "AND device_id<>?",
                (c.kind.value, c.lookup, c.device_id),
            ).fetchone() is not None:
                raise Conflict(
                    f"this {c.kind.value} credential is used by another device"
                )
            conn.execute(
                "INSERT OR REPLACE INTO credentials "
                "(device_id, kind, lookup, secret) VALUES (?,?,?,?)",
                (c.device_id, c.kind.value, c.lookup, c.secret),
            )

        return self._submit(op)

    def get_credentials(self, device_id: str) -> "Deferred[list[Credential]]":
        def op(conn: sqlite3.Connection) -> list[Credential]:
            rows = conn.execute(
                "SELECT device_id, kind, lookup, secret FROM credentials "
                "WHERE device_id=? ORDER BY kind",
                (device_id,),
            )
            return [_credential(r) for r in rows]

        return self._submit(op)

    def delete_credential(
        self, device_id: str, kind: CredentialKind
    ) -> "Deferred[bool]":
        def op(conn: sqlite3.Connection) -> bool:
            cur = conn.execute(
                "DELETE FROM credentials WHERE device_id=? AND kind=?",
                (device_id, kind.value),
            )
            return cur.rowcount > 0

        return self._submit(op)

    def find_credential(
        self, kind: CredentialKind, lookup: str
    ) -> "Deferred[Optional[Credential]]":
        def op(conn: sqlite3.Connection) -> Optional[Credential]:
            row = conn.execute(
                "SELECT device_id, kind, lookup, secret FROM credentials "
                "WHERE kind=? AND lookup=?",
                (kind.value, lookup),
            ).fetchone()
            return None if row is None else _credential(row)

        return self._submit(op)

    def load_all_credentials(self) -> "Deferred[list[Credential]]":
        def op(conn: sqlite3.Connection) -> list[Credential]:
            rows = conn.execute(
                "SELECT device_id, kind, lookup, secret FROM credentials"
            )
            return [_credential(r) for r in rows]

        return self._submit(op)

    # -- profiles ----------------------------------------------------------

    def put_profile(self, profile: Profile) -> "Deferred[None]":
        p = profile
        values = (
            p.name,
            p.payload_format.value,
            p.telemetry_proto,
            p.attributes_proto,
            p.rpc_request_proto,
            p.rpc_response_proto,
            p.power_mode.value,
            p.psm_activity_timer,
            p.edrx_cycle,
            p.paging_transmission_window,
            p.provisioning.value,
            p.provision_key,
            p.provision_secret,
        )

        def op(conn: sqlite3.Connection) -> None:
            if p.provision_key is not None and conn.execute(
                "SELECT 1 FROM profiles WHERE provision_key=? AND name<>?",
                (p.provision_key, p.name),
            ).fetchone() is not None:
                raise Conflict("provision key is used by another profile")
            # An upsert, not INSERT OR REPLACE: replacing would delete the
            # row that devices reference.
            assignments = ", ".join(
                f"{c.strip()}=excluded.{c.strip()}"
                for c in _PROFILE_COLUMNS.split(",")[1:]
            )
            conn.execute(
                f"INSERT INTO profiles ({_PROFILE_COLUMNS}) "
                f"VALUES ({_placeholders(13)}) "
                f"ON CONFLICT(name) DO UPDATE SET {assignments}",
                values,
            )

        return self._submit(op)

    def get_profile(self, name: str) -> "Deferred[Optional[Profile]]":
        def op(conn: sqlite3.Connection) -> Optional[Profile]:
            row = conn.execute(
                f"SELECT {_PROFILE_COLUMNS} FROM profiles WHERE name=?", (name,)
            ).fetchone()
            return None if row is None else _profile(row)

        return self._submit(op)

    def find_profile_by_provision_key(
        self, provision_key: str
    ) -> "Deferred[Optional[Profile]]":
        def op(conn: sqlite3.Connection) -> Optional[Profile]:
            row = conn.execute(
                f"SELECT {_PROFILE_COLUMNS} FROM profiles WHERE provision_key=?",
                (provision_key,),
            ).fetchone()
            return None if row is None else _profile(row)

        return self._submit(op)

    def list_profiles(self) -> "Deferred[list[Profile]]":
        def op(conn: sqlite3.Connection) -> list[Profile]:
            rows = conn.execute(
                f"SELECT {_PROFILE_COLUMNS} FROM profiles ORDER BY name"
            )
            return [_profile(r) for r in rows]

        return self._submit(op)

    def delete_profile(self, name: str) -> "Deferred[None]":
        def op(conn: sqlite3.Connection) -> None:
            if conn.execute(
                "SELECT 1 FROM profiles WHERE name=?", (name,)
            ).fetchone() is None:
                raise NotFound(f"no profile {name!r}")
            if conn.execute(
                "SELECT 1 FROM devices WHERE profile=? LIMIT 1", (name,)
            ).fetchone() is not None:
                raise Conflict(f"profile {name!r} is used by devices")
            conn.execute("DELETE FROM profiles WHERE name=?", (name,))

        return self._submit(op)

    # -- attributes --------------------------------------------------------

    def get_attributes(
        self,
        device_id: str,
        scope: AttributeScope,
        keys: Optional[Sequence[str]] = None,
    ) -> "Deferred[list[Attribute]]":
        wanted = None if keys is None else list(dict.fromkeys(keys))

        def op(conn: sqlite3.Connection) -> list[Attribute]:
            sql = (
                "SELECT key, value, last_update_ts FROM attributes "
                "WHERE device_id=? AND scope=?"
            )
            args: list[Any] = [device_id, scope.value]
            if wanted is not None:
                if not wanted:
                    return []
                sql += f" AND key IN ({_placeholders(len(wanted))})"
                args.extend(wanted)
            rows = conn.execute(sql + " ORDER BY key", args)
            return [
                Attribute(scope, k, json.loads(v), ts) for k, v, ts in rows
            ]

        return self._submit(op)

    def set_attributes(
        self,
        device_id: str,
        scope: AttributeScope,
        values: Mapping[str, JSONValue],
        ts: int,
    ) -> "Deferred[None]":
        try:
            rows = [
                (device_id, scope.value, k, _dumps(v), int(ts))
                for k, v in values.items()
            ]
        except InvalidArgument:
            return fail()

        def op(conn: sqlite3.Connection) -> None:
            _require_device(conn, device_id)
            conn.executemany(
                "INSERT OR REPLACE INTO attributes "
                "(device_id, scope, key, value, last_update_ts) "
                "VALUES (?,?,?,?,?)",
                rows,
            )

        return self._submit(op)

    def delete_attributes(
        self, device_id: str, scope: AttributeScope, keys: Sequence[str]
    ) -> "Deferred[list[str]]":
        wanted = list(dict.fromkeys(keys))

        def op(conn: sqlite3.Connection) -> list[str]:
            gone = []
            for k in wanted:
                cur = conn.execute(
                    "DELETE FROM attributes WHERE device_id=? AND scope=? "
                    "AND key=?",
                    (device_id, scope.value, k),
                )
                if cur.rowcount > 0:
                    gone.append(k)
            return gone

        return self._submit(op)

    # -- telemetry ---------------------------------------------------------

    def append_telemetry(
        self,
        device_id: str,
        records: Sequence[tuple[int, Mapping[str, JSONValue]]],
    ) -> "Deferred[None]":
        try:
            rows = [
                (device_id, k, _dumps(v), int(ts))
                for ts, values in records
                for k, v in values.items()
            ]
        except InvalidArgument:
            return fail()

        def op(conn: sqlite3.Connection) -> None:
            _require_device(conn, device_id)
            conn.executemany(
                "INSERT INTO telemetry_latest (device_id, key, value, ts) "
                "VALUES (?,?,?,?) ON CONFLICT(device_id, key) DO UPDATE SET "
                "value=excluded.value, ts=excluded.ts "
                "WHERE excluded.ts >= telemetry_latest.ts",
                rows,
            )

        return self._submit(op)

    def get_latest_telemetry(
        self, device_id: str, keys: Optional[Sequence[str]] = None
    ) -> "Deferred[list[TelemetryPoint]]":
        wanted = None if keys is None else list(dict.fromkeys(keys))

        def op(conn: sqlite3.Connection) -> list[TelemetryPoint]:
            sql = "SELECT key, value, ts FROM telemetry_latest WHERE device_id=?"
            args: list[Any] = [device_id]
            if wanted is not None:
                if not wanted:
                    return []
                sql += f" AND key IN ({_placeholders(len(wanted))})"
                args.extend(wanted)
            rows = conn.execute(sql + " ORDER BY key", args)
            return [TelemetryPoint(k, json.loads(v), ts) for k, v, ts in rows]

        return self._submit(op)

    # -- claims ------------------------------------------------------------

    def put_claim(self, claim: Claim) -> "Deferred[None]":
        def op(conn: sqlite3.Connection) -> None:
            _require_device(conn, claim.device_id)
            conn.execute(
                "INSERT OR REPLACE INTO claims "
                "(device_id, secret_key, expires_at, created) VALUES (?,?,?,?)",
                (claim.device_id, claim.secret_key, claim.expires_at, claim.created),
            )

        return self._submit(op)

    def get_claim(self, device_id: str) -> "Deferred[Optional[Claim]]":
        def op(conn: sqlite3.Connection) -> Optional[Claim]:
            row = conn.execute(
                "SELECT device_id, secret_key, expires_at, created FROM claims "
                "WHERE device_id=?",
                (device_id,),
            ).fetchone()
            return None if row is None else Claim(*row)

        return self._submit(op)

    def delete_claim(self, device_id: str) -> "Deferred[bool]":
        def op(conn: sqlite3.Connection) -> bool:
            cur = conn.execute("DELETE FROM claims WHERE device_id=?", (device_id,))
            return cur.rowcount > 0

        return self._submit(op)


def open_sqlite_store(reactor: Any, path: str) -> "Deferred[SQLiteStore]":
    """
    Open (creating if needed) the database at C{path}, migrate it, and fire
    with the store.  The parent directory must exist.

    @param reactor: provides L{IReactorTime} and L{IReactorFromThreads}.
    """
    store = SQLiteStore(reactor, path)

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
