# -*- test-case-name: tests.store.test_contract -*-
"""The write operations of a unit of work, run on the writer thread."""

from __future__ import annotations

import sqlite3
from typing import Any, assert_never

from gateway.domain.errors import Conflict, IdTaken, InvalidArgument, NotFound
from gateway.domain.model import Credential, Device, Profile, Rpc, RpcState
from gateway.store.packages_sql import apply_package_operation
from gateway.store.rows import (
    DEVICE_COLUMNS,
    PROFILE_COLUMNS,
    RPC_COLUMNS,
    UNFINISHED_SQL,
    device_values,
    rpc_from_row,
)
from gateway.store.unit import (
    AppendEvent,
    AppendTelemetry,
    AssignPackage,
    CreateDevice,
    DeleteAttributes,
    DeleteClaim,
    DeleteCredential,
    DeleteDevice,
    DeletePackage,
    DeleteProfile,
    EnqueueRpc,
    Operation,
    PutClaim,
    PutCredential,
    PutPackage,
    PutProfile,
    SetAttributes,
    UnassignPackage,
    UpdateDevice,
    UpdateRpc,
)
from gateway.store.values import encode_json

from .schema import last_rpc_id, placeholders, require_device
from .transaction import Transaction

__all__ = ["apply"]


def apply(tx: Transaction, op: Operation) -> Any:
    """Run one operation in the writer's transaction; its result."""
    conn = tx.conn
    # An uplink's operations first: match tries the cases in order.
    match op:
        case AppendEvent():
            return tx.append(op)
        case AppendTelemetry():
            rows = [(op.device_id, k, text, ts) for ts, values in op.records for k, text in values]
            if not rows:
                require_device(conn, op.device_id)
                return None
            try:
                conn.executemany(
                    "INSERT INTO telemetry_latest (device_id, key, value, ts) "
                    "VALUES (?,?,?,?) ON CONFLICT(device_id, key) DO UPDATE SET "
                    "value=excluded.value, ts=excluded.ts "
                    "WHERE excluded.ts >= telemetry_latest.ts",
                    rows,
                )
            except sqlite3.IntegrityError:
                # The foreign key checks the device: no lookup of our own per uplink.
                raise NotFound(f"no device {op.device_id!r}") from None
            return None
        case CreateDevice():
            return _create_device(conn, op.device)
        case UpdateDevice():
            return _update_device(conn, op.device)
        case DeleteDevice():
            require_device(conn, op.device_id)
            conn.execute("DELETE FROM devices WHERE id=?", (op.device_id,))
            return None
        case PutCredential():
            return _put_credential(conn, op.credential)
        case DeleteCredential():
            cur = conn.execute(
                "DELETE FROM credentials WHERE device_id=? AND kind=?",
                (op.device_id, op.kind.value),
            )
            return cur.rowcount > 0
        case PutProfile():
            return _put_profile(conn, op.profile)
        case DeleteProfile():
            return _delete_profile(conn, op.name)
        case SetAttributes():
            require_device(conn, op.device_id)
            conn.executemany(
                "INSERT OR REPLACE INTO attributes "
                "(device_id, scope, key, value, last_update_ts) VALUES (?,?,?,?,?)",
                [(op.device_id, op.scope.value, k, text, op.ts) for k, text in op.values],
            )
            return None
        case DeleteAttributes():
            return _delete_attributes(conn, op)
        case PutClaim():
            c = op.claim
            require_device(conn, c.device_id)
            conn.execute(
                "INSERT OR REPLACE INTO claims "
                "(device_id, secret_key, expires_at, created) VALUES (?,?,?,?)",
                (c.device_id, c.secret_key, c.expires_at, c.created),
            )
            return None
        case DeleteClaim():
            cur = conn.execute("DELETE FROM claims WHERE device_id=?", (op.device_id,))
            return cur.rowcount > 0
        case EnqueueRpc():
            return _enqueue_rpc(conn, op)
        case UpdateRpc():
            return _update_rpc(conn, op)
        case PutPackage() | DeletePackage() | AssignPackage() | UnassignPackage():
            return apply_package_operation(lambda sql, args: conn.execute(sql, args).fetchall(), op)
        case _:
            assert_never(op)


# -- devices -------------------------------------------------------------------


def _check_device(conn: sqlite3.Connection, device: Device) -> None:
    if conn.execute("SELECT 1 FROM profiles WHERE name=?", (device.profile,)).fetchone() is None:
        raise InvalidArgument(f"no profile {device.profile!r}")
    if (
        conn.execute(
            "SELECT 1 FROM devices WHERE application=? AND name=? AND id<>?",
            (device.application, device.name, device.id),
        ).fetchone()
        is not None
    ):
        raise Conflict(f"device name {device.name!r} is taken in {device.application!r}")


def _create_device(conn: sqlite3.Connection, device: Device) -> Device:
    if conn.execute("SELECT 1 FROM devices WHERE id=?", (device.id,)).fetchone() is not None:
        raise Conflict(f"device id {device.id!r} is taken")
    _check_device(conn, device)
    conn.execute(
        f"INSERT INTO devices ({DEVICE_COLUMNS}) VALUES ({placeholders(11)})",
        device_values(device),
    )
    return device


def _update_device(conn: sqlite3.Connection, device: Device) -> Device:
    require_device(conn, device.id)
    _check_device(conn, device)
    conn.execute(
        f"UPDATE devices SET {_DEVICE_SETS} WHERE id=?",
        (*device_values(device)[1:], device.id),
    )
    return device


_DEVICE_SETS = ", ".join(f"{c.strip()}=?" for c in DEVICE_COLUMNS.split(",")[1:])


# -- credentials and profiles --------------------------------------------------


def _put_credential(conn: sqlite3.Connection, c: Credential) -> None:
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
        "INSERT OR REPLACE INTO credentials (device_id, kind, lookup, secret) VALUES (?,?,?,?)",
        (c.device_id, c.kind.value, c.lookup, c.secret),
    )


# An upsert, not INSERT OR REPLACE: replacing would delete the row that
# devices reference.
_UPSERT_PROFILE = (
    f"INSERT INTO profiles ({PROFILE_COLUMNS}) VALUES ({placeholders(14)}) "
    "ON CONFLICT(name) DO UPDATE SET "
    + ", ".join(f"{c.strip()}=excluded.{c.strip()}" for c in PROFILE_COLUMNS.split(",")[1:])
)


def _put_profile(conn: sqlite3.Connection, p: Profile) -> None:
    if (
        p.provision_key is not None
        and conn.execute(
            "SELECT 1 FROM profiles WHERE provision_key=? AND name<>?",
            (p.provision_key, p.name),
        ).fetchone()
        is not None
    ):
        raise Conflict("provision key is used by another profile")
    conn.execute(
        _UPSERT_PROFILE,
        (
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
            p.strict_json,
        ),
    )


def _delete_profile(conn: sqlite3.Connection, name: str) -> None:
    if conn.execute("SELECT 1 FROM profiles WHERE name=?", (name,)).fetchone() is None:
        raise NotFound(f"no profile {name!r}")
    if conn.execute("SELECT 1 FROM devices WHERE profile=? LIMIT 1", (name,)).fetchone():
        raise Conflict(f"profile {name!r} is used by devices")
    conn.execute("DELETE FROM profiles WHERE name=?", (name,))


# -- attributes ----------------------------------------------------------------


def _delete_attributes(conn: sqlite3.Connection, op: DeleteAttributes) -> list[str]:
    gone = []
    for k in op.keys:
        cur = conn.execute(
            "DELETE FROM attributes WHERE device_id=? AND scope=? AND key=?",
            (op.device_id, op.scope.value, k),
        )
        if cur.rowcount > 0:
            gone.append(k)
    return gone


# -- outbox --------------------------------------------------------------------


# -- RPC queue -----------------------------------------------------------------


def _enqueue_rpc(conn: sqlite3.Connection, op: EnqueueRpc) -> Rpc:
    rpc = op.rpc
    require_device(conn, rpc.device_id)
    (unfinished,) = conn.execute(
        f"SELECT COUNT(*) FROM rpcs WHERE device_id=? AND state IN {UNFINISHED_SQL}",
        (rpc.device_id,),
    ).fetchone()
    if unfinished >= op.limit:
        raise Conflict(
            f"the RPC queue of device {rpc.device_id!r} is full ({unfinished} unfinished)"
        )
    conn.execute(
        "DELETE FROM rpcs WHERE id IN (SELECT id FROM rpcs WHERE device_id=? "
        f"AND state NOT IN {UNFINISHED_SQL} ORDER BY id DESC LIMIT -1 OFFSET ?)",
        (rpc.device_id, op.keep_finished),
    )
    if rpc.id <= last_rpc_id(conn):
        raise IdTaken(f"rpc id {rpc.id} was given before")
    conn.execute(
        f"INSERT INTO rpcs ({RPC_COLUMNS}) VALUES ({placeholders(15)})",
        (
            rpc.device_id,
            rpc.id,
            rpc.method,
            encode_json(rpc.params),
            int(rpc.oneway),
            rpc.timeout_ms,
            rpc.expires_at,
            rpc.created,
            rpc.state.value,
            rpc.retries,
            rpc.sent_at,
            rpc.updated,
            encode_json(rpc.response),
            rpc.error,
            rpc.content_type,
        ),
    )
    return rpc


def _update_rpc(conn: sqlite3.Connection, op: UpdateRpc) -> Rpc:
    rpc = op.rpc
    row = conn.execute(
        "SELECT state FROM rpcs WHERE id=? AND device_id=?", (rpc.id, rpc.device_id)
    ).fetchone()
    if row is None:
        raise NotFound(f"no rpc {rpc.id} of device {rpc.device_id!r}")
    if RpcState(row[0]) not in op.expect:
        raise Conflict(f"rpc {rpc.id} is {row[0]}")
    (updated,) = conn.execute(
        "UPDATE rpcs SET state=?, retries=?, sent_at=?, updated=?, response=?, error=? "
        f"WHERE id=? RETURNING {RPC_COLUMNS}",
        (
            rpc.state.value,
            rpc.retries,
            rpc.sent_at,
            rpc.updated,
            encode_json(rpc.response),
            rpc.error,
            rpc.id,
        ),
    ).fetchall()
    return rpc_from_row(updated)
