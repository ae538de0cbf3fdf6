# -*- test-case-name: tests.store.test_sqlite -*-
"""L{SQLiteStore}: L{IStore} over the writer thread."""

from __future__ import annotations

import json
import sqlite3
from typing import Any, Callable, Mapping, Optional, Sequence, TypeVar

from twisted.internet.defer import Deferred, fail
from twisted.internet.interfaces import IReactorFromThreads, IReactorTime
from twisted.logger import Logger
from zope.interface import implementer

from gateway.domain.errors import Conflict, InvalidArgument, NotFound
from gateway.domain.model import (
    Attribute,
    AttributeScope,
    Claim,
    Credential,
    CredentialKind,
    Device,
    JSONValue,
    Profile,
    TelemetryPoint,
)
from gateway.store.interfaces import IStore

from .schema import (
    DEVICE_COLUMNS,
    PROFILE_COLUMNS,
    credential_from_row,
    device_from_row,
    dumps,
    migrate,
    placeholders,
    profile_from_row,
    require_device,
)
from .writer import Op, Writer

T = TypeVar("T")

log = Logger()


class _Reactor(IReactorTime, IReactorFromThreads):
    """What the store needs of the reactor (for typing only)."""


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
        self._pending: list[Op] = []
        self._flush_call: Any = None
        self._closing = False
        self._closed = False
        self._closed_waiters: list[Deferred[None]] = []
        self._writer = Writer(path, reactor, self)
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
        return self._submit(migrate)

    # -- devices -----------------------------------------------------------

    def _check_device(self, conn: sqlite3.Connection, device: Device) -> None:
        if (
            conn.execute("SELECT 1 FROM profiles WHERE name=?", (device.profile,)).fetchone()
            is None
        ):
            raise InvalidArgument(f"no profile {device.profile!r}")
        if (
            conn.execute(
                "SELECT 1 FROM devices WHERE application=? AND name=? AND id<>?",
                (device.application, device.name, device.id),
            ).fetchone()
            is not None
        ):
            raise Conflict(f"device name {device.name!r} is taken in {device.application!r}")

    def create_device(self, device: Device) -> "Deferred[Device]":
        def op(conn: sqlite3.Connection) -> Device:
            if (
                conn.execute("SELECT 1 FROM devices WHERE id=?", (device.id,)).fetchone()
                is not None
            ):
                raise Conflict(f"device id {device.id!r} is taken")
            self._check_device(conn, device)
            conn.execute(
                f"INSERT INTO devices ({DEVICE_COLUMNS}) VALUES (?,?,?,?,?,?)",
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
            require_device(conn, device.id)
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
            require_device(conn, device_id)
            conn.execute("DELETE FROM devices WHERE id=?", (device_id,))

        return self._submit(op)

    def get_device(self, device_id: str) -> "Deferred[Optional[Device]]":
        def op(conn: sqlite3.Connection) -> Optional[Device]:
            row = conn.execute(
                f"SELECT {DEVICE_COLUMNS} FROM devices WHERE id=?", (device_id,)
            ).fetchone()
            return None if row is None else device_from_row(row)

        return self._submit(op)

    def find_device(self, application: str, name: str) -> "Deferred[Optional[Device]]":
        def op(conn: sqlite3.Connection) -> Optional[Device]:
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
                rows = conn.execute(
                    f"SELECT {DEVICE_COLUMNS} FROM devices WHERE application=? "
                    "ORDER BY name, application, id",
                    (application,),
                )
            return [device_from_row(r) for r in rows]

        return self._submit(op)

    # -- credentials -------------------------------------------------------

    def put_credential(self, credential: Credential) -> "Deferred[None]":
        c = credential

        def op(conn: sqlite3.Connection) -> None:
            require_device(conn, c.device_id)
            if (
                conn.execute(
                    "SELECT 1 FROM credentials WHERE kind=? AND lookup=? AND device_id<>?",
                    (c.kind.value, c.lookup, c.device_id),
                ).fetchone()
                is not None
            ):
                raise Conflict(f"this {c.kind.value} credential is used by another device")
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
            return [credential_from_row(r) for r in rows]

        return self._submit(op)

    def delete_credential(self, device_id: str, kind: CredentialKind) -> "Deferred[bool]":
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
            if (
                p.provision_key is not None
                and conn.execute(
                    "SELECT 1 FROM profiles WHERE provision_key=? AND name<>?",
                    (p.provision_key, p.name),
                ).fetchone()
                is not None
            ):
                raise Conflict("provision key is used by another profile")
            # An upsert, not INSERT OR REPLACE: replacing would delete the
            # row that devices reference.
            assignments = ", ".join(
                f"{c.strip()}=excluded.{c.strip()}" for c in PROFILE_COLUMNS.split(",")[1:]
            )
            conn.execute(
                f"INSERT INTO profiles ({PROFILE_COLUMNS}) "
                f"VALUES ({placeholders(13)}) "
                f"ON CONFLICT(name) DO UPDATE SET {assignments}",
                values,
            )

        return self._submit(op)

    def get_profile(self, name: str) -> "Deferred[Optional[Profile]]":
        def op(conn: sqlite3.Connection) -> Optional[Profile]:
            row = conn.execute(
                f"SELECT {PROFILE_COLUMNS} FROM profiles WHERE name=?", (name,)
            ).fetchone()
            return None if row is None else profile_from_row(row)

        return self._submit(op)

    def find_profile_by_provision_key(self, provision_key: str) -> "Deferred[Optional[Profile]]":
        def op(conn: sqlite3.Connection) -> Optional[Profile]:
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

    def delete_profile(self, name: str) -> "Deferred[None]":
        def op(conn: sqlite3.Connection) -> None:
            if conn.execute("SELECT 1 FROM profiles WHERE name=?", (name,)).fetchone() is None:
                raise NotFound(f"no profile {name!r}")
            if (
                conn.execute("SELECT 1 FROM devices WHERE profile=? LIMIT 1", (name,)).fetchone()
                is not None
            ):
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
            sql = "SELECT key, value, last_update_ts FROM attributes WHERE device_id=? AND scope=?"
            args: list[Any] = [device_id, scope.value]
            if wanted is not None:
                if not wanted:
                    return []
                sql += f" AND key IN ({placeholders(len(wanted))})"
                args.extend(wanted)
            rows = conn.execute(sql + " ORDER BY key", args)
            return [Attribute(scope, k, json.loads(v), ts) for k, v, ts in rows]

        return self._submit(op)

    def set_attributes(
        self,
        device_id: str,
        scope: AttributeScope,
        values: Mapping[str, JSONValue],
        ts: int,
    ) -> "Deferred[None]":
        try:
            rows = [(device_id, scope.value, k, dumps(v), int(ts)) for k, v in values.items()]
        except InvalidArgument:
            return fail()

        def op(conn: sqlite3.Connection) -> None:
            require_device(conn, device_id)
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
                    "DELETE FROM attributes WHERE device_id=? AND scope=? AND key=?",
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
                (device_id, k, dumps(v), int(ts))
                for ts, values in records
                for k, v in values.items()
            ]
        except InvalidArgument:
            return fail()

        def op(conn: sqlite3.Connection) -> None:
            require_device(conn, device_id)
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
                sql += f" AND key IN ({placeholders(len(wanted))})"
                args.extend(wanted)
            rows = conn.execute(sql + " ORDER BY key", args)
            return [TelemetryPoint(k, json.loads(v), ts) for k, v, ts in rows]

        return self._submit(op)

    # -- claims ------------------------------------------------------------

    def put_claim(self, claim: Claim) -> "Deferred[None]":
        def op(conn: sqlite3.Connection) -> None:
            require_device(conn, claim.device_id)
            conn.execute(
                "INSERT OR REPLACE INTO claims "
                "(device_id, secret_key, expires_at, created) VALUES (?,?,?,?)",
                (claim.device_id, claim.secret_key, claim.expires_at, claim.created),
            )

        return self._submit(op)

    def get_claim(self, device_id: str) -> "Deferred[Optional[Claim]]":
        def op(conn: sqlite3.Connection) -> Optional[Claim]:
            row = conn.execute(
                "SELECT device_id, secret_key, expires_at, created FROM claims WHERE device_id=?",
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
