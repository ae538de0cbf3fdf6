# -*- test-case-name: tests.store.test_postgres -*-
"""
The PostgreSQL schema: its own migrations and the queries every part shares.

The columns are those of the SQLite schema (L{gateway.store.rows}), so
flags stay integers and JSON values stay the text the operations made.
Text is ordered with C{COLLATE "C"} (code points, as SQLite and the memory
store order it), whatever the database's locale.
"""

from __future__ import annotations

from typing import Any

import psycopg

from gateway.domain.errors import NotFound
from gateway.store.packages_sql import POSTGRES_TABLES

__all__ = [
    "CHANNEL_SQL",
    "MIGRATIONS",
    "PARTITIONS",
    "SchemaTooNew",
    "migrate",
    "require_device",
    "schema_version",
]

Cursor = psycopg.Cursor[Any]

#: Schema migrations; C{MIGRATIONS[i]} brings version i to i + 1.
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
        psm_activity_timer BIGINT,
        edrx_cycle BIGINT,
        paging_transmission_window BIGINT,
        provisioning TEXT NOT NULL,
        provision_key TEXT UNIQUE,
        provision_secret TEXT,
        strict_json INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE devices (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        application TEXT NOT NULL,
        profile TEXT NOT NULL REFERENCES profiles(name),
        enabled INTEGER NOT NULL,
        created DOUBLE PRECISION NOT NULL,
        power_mode TEXT,
        psm_activity_timer BIGINT,
        edrx_cycle BIGINT,
        paging_transmission_window BIGINT,
        UNIQUE (application, name)
    );
    CREATE INDEX devices_profile ON devices(profile);
    CREATE TABLE credentials (
        device_id TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
        kind TEXT NOT NULL,
        lookup TEXT NOT NULL,
        secret BYTEA NOT NULL,
        PRIMARY KEY (device_id, kind),
        UNIQUE (kind, lookup)
    );
    CREATE TABLE attributes (
        device_id TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
        scope TEXT NOT NULL,
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        last_update_ts BIGINT NOT NULL,
        PRIMARY KEY (device_id, scope, key)
    );
    CREATE TABLE telemetry_latest (
        device_id TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        ts BIGINT NOT NULL,
        PRIMARY KEY (device_id, key)
    );
    CREATE TABLE claims (
        device_id TEXT PRIMARY KEY REFERENCES devices(id) ON DELETE CASCADE,
        secret_key TEXT NOT NULL,
        expires_at BIGINT NOT NULL,
        created BIGINT NOT NULL
    );
    CREATE TABLE outbox (
        position BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        device_id TEXT NOT NULL,
        sequence BIGINT NOT NULL,
        event_id TEXT NOT NULL,
        type TEXT NOT NULL,
        time_ms BIGINT NOT NULL,
        received_ms BIGINT NOT NULL,
        body TEXT NOT NULL,
        -- The device's partition (see partitions.py): PARTITIONS - 1 is the mask.
        part INTEGER NOT NULL GENERATED ALWAYS AS (hashtext(device_id) & 63) STORED
    );
    CREATE INDEX outbox_device ON outbox(device_id, position);
    CREATE INDEX outbox_part ON outbox(part, position);
    CREATE TABLE outbox_size (
        id INTEGER PRIMARY KEY CHECK (id = 0),
        size BIGINT NOT NULL
    );
    INSERT INTO outbox_size (id, size) VALUES (0, 0);
    CREATE TABLE event_sequences (
        device_id TEXT PRIMARY KEY,
        last BIGINT NOT NULL
    );
    CREATE TABLE dead_letters (
        position BIGINT PRIMARY KEY,
        device_id TEXT NOT NULL,
        sequence BIGINT NOT NULL,
        event_id TEXT NOT NULL,
        type TEXT NOT NULL,
        time_ms BIGINT NOT NULL,
        received_ms BIGINT NOT NULL,
        body TEXT NOT NULL,
        status INTEGER NOT NULL,
        reason TEXT NOT NULL,
        failed_ms BIGINT NOT NULL
    );
    CREATE TABLE rpcs (
        id BIGINT PRIMARY KEY,
        device_id TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
        method TEXT NOT NULL,
        params TEXT NOT NULL,
        oneway INTEGER NOT NULL,
        timeout_ms BIGINT NOT NULL,
        expires_at BIGINT NOT NULL,
        created BIGINT NOT NULL,
        state TEXT NOT NULL,
        retries BIGINT NOT NULL,
        sent_at BIGINT,
        updated BIGINT NOT NULL,
        response TEXT NOT NULL,
        error TEXT
    );
    CREATE INDEX rpcs_device ON rpcs(device_id, id);
    CREATE INDEX rpcs_unfinished ON rpcs(device_id, id)
        WHERE state IN ('QUEUED', 'SENT', 'DELIVERED');
    -- The highest RPC id ever queued: ids are never reused, deleted ones included.
    CREATE TABLE rpc_last_id (
        id INTEGER PRIMARY KEY CHECK (id = 0),
        last BIGINT NOT NULL
    );
    INSERT INTO rpc_last_id (id, last) VALUES (0, 0);
    """,
    # The gateways that may publish for a device (a JSON list of names; Drogue's as=).
    """
    ALTER TABLE devices ADD COLUMN gateways TEXT NOT NULL DEFAULT '[]';
    """,
    # OTA packages and their assignments (IPackageStore).
    POSTGRES_TABLES,
    # Each node's heartbeat, for GET /api/v1/cluster (partitions: a JSON list).
    """
    CREATE TABLE nodes (
        node_id TEXT PRIMARY KEY,
        started BIGINT NOT NULL,
        heartbeat BIGINT NOT NULL,
        partitions TEXT NOT NULL
    );
    """,
    # When each device was last heard, for every node's power-saving windows.
    """
    CREATE TABLE device_heard (
        device_id TEXT PRIMARY KEY REFERENCES devices(id) ON DELETE CASCADE,
        heard BIGINT NOT NULL
    );
    """,
    # The media type of an RPC's params sent as a payload (a Drogue command's).
    """
    ALTER TABLE rpcs ADD COLUMN content_type TEXT;
    """,
]

#: The NOTIFY channel of the changes (L{gateway.store.changes}), one per schema
#: as the advisory locks are, and a valid identifier whatever the schema's name.
CHANNEL_SQL = "'gateway_changes_' || md5(current_schema())"

#: The outbox's partitions (by device), which the nodes share out.
PARTITIONS = 64

#: Serialises migrations of gateways starting together on one database.
_MIGRATION_LOCK = 0x6777_0001


class SchemaTooNew(RuntimeError):
    """The database was written by a newer gateway."""


def schema_version(cur: Cursor) -> int:
    """The database's schema version; L{SchemaTooNew} if this gateway does not know it."""
    cur.execute("SELECT to_regclass('gateway_schema') IS NOT NULL")
    row = cur.fetchone()
    if row is None or not row[0]:
        return 0
    cur.execute("SELECT version FROM gateway_schema")
    found = cur.fetchone()
    version = 0 if found is None else int(found[0])
    if version > len(MIGRATIONS):
        raise SchemaTooNew(
            f"database schema version {version} is newer than this gateway ({len(MIGRATIONS)})"
        )
    return version


def migrate(cur: Cursor) -> int:
    """Apply pending migrations (inside the caller's transaction)."""
    cur.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
    cur.execute("CREATE TABLE IF NOT EXISTS gateway_schema (version INTEGER NOT NULL)")
    version = schema_version(cur)
    for i in range(version, len(MIGRATIONS)):
        cur.execute(MIGRATIONS[i].encode())
    cur.execute("DELETE FROM gateway_schema")
    cur.execute("INSERT INTO gateway_schema (version) VALUES (%s)", (len(MIGRATIONS),))
    return len(MIGRATIONS)


def require_device(cur: Cursor, device_id: str) -> None:
    cur.execute("SELECT 1 FROM devices WHERE id=%s", (device_id,))
    if cur.fetchone() is None:
        raise NotFound(f"no device {device_id!r}")
