"""The SQLite schema: migrations and the queries every part shares."""

from __future__ import annotations

import sqlite3

from gateway.domain.errors import NotFound
from gateway.store.packages_sql import SQLITE_TABLES

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
    """
    ALTER TABLE profiles ADD COLUMN strict_json INTEGER NOT NULL DEFAULT 0;
    """,
    # The outbox (IOutbox).  No foreign keys: a device's events outlive it.
    # outbox_size counts the rows so a full outbox is known without a scan,
    # inside the same transaction as every change to the count.
    """
    CREATE TABLE outbox (
        position INTEGER PRIMARY KEY AUTOINCREMENT,
        device_id TEXT NOT NULL,
        sequence INTEGER NOT NULL,
        event_id TEXT NOT NULL,
        type TEXT NOT NULL,
        time_ms INTEGER NOT NULL,
        received_ms INTEGER NOT NULL,
        body TEXT NOT NULL
    );
    CREATE INDEX outbox_device ON outbox(device_id, position);
    CREATE TABLE outbox_size (
        id INTEGER PRIMARY KEY CHECK (id = 0),
        size INTEGER NOT NULL
    );
    INSERT INTO outbox_size (id, size) VALUES (0, 0);
    CREATE TABLE event_sequences (
        device_id TEXT PRIMARY KEY,
        last INTEGER NOT NULL
    );
    CREATE TABLE dead_letters (
        position INTEGER PRIMARY KEY,
        device_id TEXT NOT NULL,
        sequence INTEGER NOT NULL,
        event_id TEXT NOT NULL,
        type TEXT NOT NULL,
        time_ms INTEGER NOT NULL,
        received_ms INTEGER NOT NULL,
        body TEXT NOT NULL,
        status INTEGER NOT NULL,
        reason TEXT NOT NULL,
        failed_ms INTEGER NOT NULL
    );
    """,
    # The RPC queue (ICommandQueue) and each device's own power-saving
    # settings (NULL: its profile's).
    """
    ALTER TABLE devices ADD COLUMN power_mode TEXT;
    ALTER TABLE devices ADD COLUMN psm_activity_timer INTEGER;
    ALTER TABLE devices ADD COLUMN edrx_cycle INTEGER;
    ALTER TABLE devices ADD COLUMN paging_transmission_window INTEGER;
    CREATE TABLE rpcs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        device_id TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
        method TEXT NOT NULL,
        params TEXT NOT NULL,
        oneway INTEGER NOT NULL,
        timeout_ms INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        created INTEGER NOT NULL,
        state TEXT NOT NULL,
        retries INTEGER NOT NULL,
        sent_at INTEGER,
        updated INTEGER NOT NULL,
        response TEXT NOT NULL,
        error TEXT
    );
    CREATE INDEX rpcs_device ON rpcs(device_id, id);
    CREATE INDEX rpcs_unfinished ON rpcs(device_id, id)
        WHERE state IN ('QUEUED', 'SENT', 'DELIVERED');
    """,
    # The gateways that may publish for a device (a JSON list of names).
    """
    ALTER TABLE devices ADD COLUMN gateways TEXT NOT NULL DEFAULT '[]';
    """,
    # OTA packages and their assignments (IPackageStore).
    SQLITE_TABLES,
    # The media type of an RPC's params sent as a payload (a Drogue command's).
    """
    ALTER TABLE rpcs ADD COLUMN content_type TEXT;
    """,
]


def placeholders(n: int) -> str:
    return ",".join("?" * n)


class SchemaTooNew(RuntimeError):
    """The database was written by a newer gateway."""


def schema_version(conn: sqlite3.Connection) -> int:
    """The database's schema version; L{SchemaTooNew} if this gateway does not know it."""
    (version,) = conn.execute("PRAGMA user_version").fetchone()
    if version > len(MIGRATIONS):
        raise SchemaTooNew(
            f"database schema version {version} is newer than this gateway ({len(MIGRATIONS)})"
        )
    return int(version)


def migrate(conn: sqlite3.Connection) -> int:
    """Apply pending migrations (runs inside the batch's transaction)."""
    version = schema_version(conn)
    for i in range(version, len(MIGRATIONS)):
        for statement in MIGRATIONS[i].split(";"):
            if statement.strip():
                conn.execute(statement)
        conn.execute(f"PRAGMA user_version={i + 1}")
    return len(MIGRATIONS)


def last_rpc_id(conn: sqlite3.Connection) -> int:
    """The highest RPC id ever inserted (AUTOINCREMENT keeps it past deletions)."""
    row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name='rpcs'").fetchone()
    return 0 if row is None else int(row[0])


def require_device(conn: sqlite3.Connection, device_id: str) -> None:
    if conn.execute("SELECT 1 FROM devices WHERE id=?", (device_id,)).fetchone() is None:
        raise NotFound(f"no device {device_id!r}")
