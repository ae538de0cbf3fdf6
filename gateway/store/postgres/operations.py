# -*- test-case-name: tests.store.test_contract -*-
"""The write operations of a unit of work, run on the store's connection thread."""

from __future__ import annotations

from typing import Any, Optional, Sequence, assert_never

from gateway.domain.errors import Conflict, IdTaken, InvalidArgument, NotFound, Unavailable
from gateway.domain.model import Credential, Device, Profile, Rpc, RpcState
from gateway.store.changes import changes_of, payloads
from gateway.store.packages_sql import Run, apply_package_operation
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

from .schema import CHANNEL_SQL, Cursor, require_device

__all__ = ["apply", "runner"]


def runner(cur: Cursor) -> Run:
    """L{Run} on this cursor: C{?} placeholders become psycopg's."""

    def run(sql: str, args: Sequence[Any]) -> list[tuple[Any, ...]]:
        cur.execute(sql.replace("?", "%s"), args)
        return cur.fetchall() if cur.description is not None else []

    return run


def _params(n: int) -> str:
    return ",".join(["%s"] * n)


def _exists(cur: Cursor, sql: str, args: tuple[Any, ...]) -> bool:
    cur.execute(sql, args)
    return cur.fetchone() is not None


_NOTIFY = f"SELECT pg_notify({CHANNEL_SQL}, %s)"


def apply(cur: Cursor, op: Operation, outbox_limit: Optional[int]) -> Any:
    """
    Run one operation in the connection's transaction; its result.  What
    the other nodes must hear of it is notified in the same transaction, so
    they hear it only once it is committed.
    """
    result = _apply(cur, op, outbox_limit)
    for change in changes_of(op):
        for payload in payloads(change):
            cur.execute(_NOTIFY, (payload,))
    return result


def _apply(cur: Cursor, op: Operation, outbox_limit: Optional[int]) -> Any:
    # An uplink's operations first: match tries the cases in order.
    match op:
        case AppendEvent():
            return _append_event(cur, op, outbox_limit)
        case AppendTelemetry():
            require_device(cur, op.device_id)
            cur.executemany(
                "INSERT INTO telemetry_latest (device_id, key, value, ts) "
                "VALUES (%s,%s,%s,%s) ON CONFLICT (device_id, key) DO UPDATE SET "
                "value=excluded.value, ts=excluded.ts "
                "WHERE excluded.ts >= telemetry_latest.ts",
                [(op.device_id, k, text, ts) for ts, values in op.records for k, text in values],
            )
            return None
        case CreateDevice():
            return _create_device(cur, op.device)
        case UpdateDevice():
            return _update_device(cur, op.device)
        case DeleteDevice():
            require_device(cur, op.device_id)
            cur.execute("DELETE FROM devices WHERE id=%s", (op.device_id,))
            return None
        case PutCredential():
            return _put_credential(cur, op.credential)
        case DeleteCredential():
            cur.execute(
                "DELETE FROM credentials WHERE device_id=%s AND kind=%s",
                (op.device_id, op.kind.value),
            )
            return cur.rowcount > 0
        case PutProfile():
            return _put_profile(cur, op.profile)
        case DeleteProfile():
            return _delete_profile(cur, op.name)
        case SetAttributes():
            require_device(cur, op.device_id)
            cur.executemany(
                "INSERT INTO attributes (device_id, scope, key, value, last_update_ts) "
                "VALUES (%s,%s,%s,%s,%s) ON CONFLICT (device_id, scope, key) DO UPDATE SET "
                "value=excluded.value, last_update_ts=excluded.last_update_ts",
                [(op.device_id, op.scope.value, k, text, op.ts) for k, text in op.values],
            )
            return None
        case DeleteAttributes():
            cur.execute(
                "DELETE FROM attributes WHERE device_id=%s AND scope=%s AND key = ANY(%s) "
                "RETURNING key",
                (op.device_id, op.scope.value, list(op.keys)),
            )
            gone = {row[0] for row in cur.fetchall()}
            return [k for k in op.keys if k in gone]
        case PutClaim():
            c = op.claim
            require_device(cur, c.device_id)
            cur.execute(
                "INSERT INTO claims (device_id, secret_key, expires_at, created) "
                "VALUES (%s,%s,%s,%s) ON CONFLICT (device_id) DO UPDATE SET "
                "secret_key=excluded.secret_key, expires_at=excluded.expires_at, "
                "created=excluded.created",
                (c.device_id, c.secret_key, c.expires_at, c.created),
            )
            return None
        case DeleteClaim():
            cur.execute("DELETE FROM claims WHERE device_id=%s", (op.device_id,))
            return cur.rowcount > 0
        case EnqueueRpc():
            return _enqueue_rpc(cur, op)
        case UpdateRpc():
            return _update_rpc(cur, op)
        case PutPackage() | DeletePackage() | AssignPackage() | UnassignPackage():
            return apply_package_operation(runner(cur), op)
        case _:
            assert_never(op)


# -- outbox --------------------------------------------------------------------


def _append_event(cur: Cursor, op: AppendEvent, limit: Optional[int]) -> int:
    # The size row is the gate: it counts this event only below the limit.
    cur.execute(
        "UPDATE outbox_size SET size=size+1 WHERE id=0 AND (%s::bigint IS NULL OR size < %s) "
        "RETURNING size",
        (limit, limit),
    )
    if cur.fetchone() is None:
        raise Unavailable(f"the outbox is full ({limit} events)")
    cur.execute(
        "INSERT INTO event_sequences (device_id, last) VALUES (%s, 1) "
        "ON CONFLICT (device_id) DO UPDATE SET last=event_sequences.last+1 RETURNING last",
        (op.device_id,),
    )
    (sequence,) = cur.fetchone() or (0,)
    cur.execute(
        "INSERT INTO outbox (device_id, sequence, event_id, type, time_ms, received_ms, body) "
        "VALUES (%s,%s,%s,%s,%s,%s,%s)",
        (op.device_id, sequence, op.event_id, op.type, op.time_ms, op.received_ms, op.body),
    )
    return int(sequence)


# -- devices -------------------------------------------------------------------


def _check_device(cur: Cursor, device: Device) -> None:
    if not _exists(cur, "SELECT 1 FROM profiles WHERE name=%s", (device.profile,)):
        raise InvalidArgument(f"no profile {device.profile!r}")
    if _exists(
        cur,
        "SELECT 1 FROM devices WHERE application=%s AND name=%s AND id<>%s",
        (device.application, device.name, device.id),
    ):
        raise Conflict(f"device name {device.name!r} is taken in {device.application!r}")


def _create_device(cur: Cursor, device: Device) -> Device:
    if _exists(cur, "SELECT 1 FROM devices WHERE id=%s", (device.id,)):
        raise Conflict(f"device id {device.id!r} is taken")
    _check_device(cur, device)
    cur.execute(
        f"INSERT INTO devices ({DEVICE_COLUMNS}) VALUES ({_params(_DEVICE_COUNT)})",
        device_values(device),
    )
    return device


_DEVICE_COUNT = len(DEVICE_COLUMNS.split(","))
_DEVICE_SETS = ", ".join(f"{c.strip()}=%s" for c in DEVICE_COLUMNS.split(",")[1:])


def _update_device(cur: Cursor, device: Device) -> Device:
    require_device(cur, device.id)
    _check_device(cur, device)
    cur.execute(
        f"UPDATE devices SET {_DEVICE_SETS} WHERE id=%s", (*device_values(device)[1:], device.id)
    )
    return device


# -- credentials and profiles --------------------------------------------------


def _put_credential(cur: Cursor, c: Credential) -> None:
    require_device(cur, c.device_id)
    if _exists(
        cur,
        "SELECT 1 FROM credentials WHERE kind=%s AND lookup=%s AND device_id<>%s",
        (c.kind.value, c.lookup, c.device_id),
    ):
        raise Conflict(f"this {c.kind.value} credential is used by another device")
    cur.execute(
        "INSERT INTO credentials (device_id, kind, lookup, secret) VALUES (%s,%s,%s,%s) "
        "ON CONFLICT (device_id, kind) DO UPDATE SET lookup=excluded.lookup, "
        "secret=excluded.secret",
        (c.device_id, c.kind.value, c.lookup, c.secret),
    )


_UPSERT_PROFILE = (
    f"INSERT INTO profiles ({PROFILE_COLUMNS}) VALUES ({_params(14)}) "
    "ON CONFLICT (name) DO UPDATE SET "
    + ", ".join(f"{c.strip()}=excluded.{c.strip()}" for c in PROFILE_COLUMNS.split(",")[1:])
)


def _put_profile(cur: Cursor, p: Profile) -> None:
    if p.provision_key is not None and _exists(
        cur,
        "SELECT 1 FROM profiles WHERE provision_key=%s AND name<>%s",
        (p.provision_key, p.name),
    ):
        raise Conflict("provision key is used by another profile")
    cur.execute(
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
            int(p.strict_json),
        ),
    )


def _delete_profile(cur: Cursor, name: str) -> None:
    if not _exists(cur, "SELECT 1 FROM profiles WHERE name=%s", (name,)):
        raise NotFound(f"no profile {name!r}")
    if _exists(cur, "SELECT 1 FROM devices WHERE profile=%s LIMIT 1", (name,)):
        raise Conflict(f"profile {name!r} is used by devices")
    cur.execute("DELETE FROM profiles WHERE name=%s", (name,))


# -- RPC queue -----------------------------------------------------------------


def _enqueue_rpc(cur: Cursor, op: EnqueueRpc) -> Rpc:
    rpc = op.rpc
    require_device(cur, rpc.device_id)
    cur.execute(
        f"SELECT COUNT(*) FROM rpcs WHERE device_id=%s AND state IN {UNFINISHED_SQL}",
        (rpc.device_id,),
    )
    (unfinished,) = cur.fetchone() or (0,)
    if unfinished >= op.limit:
        raise Conflict(
            f"the RPC queue of device {rpc.device_id!r} is full ({unfinished} unfinished)"
        )
    cur.execute(
        "DELETE FROM rpcs WHERE id IN (SELECT id FROM rpcs WHERE device_id=%s "
        f"AND state NOT IN {UNFINISHED_SQL} ORDER BY id DESC OFFSET %s)",
        (rpc.device_id, op.keep_finished),
    )
    # Taking the row lock orders enqueues of concurrent transactions.
    cur.execute("SELECT last FROM rpc_last_id WHERE id=0 FOR UPDATE")
    (last,) = cur.fetchone() or (0,)
    if rpc.id <= last:
        raise IdTaken(f"rpc id {rpc.id} was given before")
    cur.execute("UPDATE rpc_last_id SET last=%s WHERE id=0", (rpc.id,))
    cur.execute(
        f"INSERT INTO rpcs ({RPC_COLUMNS}) VALUES ({_params(15)})",
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


def _update_rpc(cur: Cursor, op: UpdateRpc) -> Rpc:
    rpc = op.rpc
    cur.execute(
        "SELECT state FROM rpcs WHERE id=%s AND device_id=%s FOR UPDATE",
        (rpc.id, rpc.device_id),
    )
    row = cur.fetchone()
    if row is None:
        raise NotFound(f"no rpc {rpc.id} of device {rpc.device_id!r}")
    if RpcState(row[0]) not in op.expect:
        raise Conflict(f"rpc {rpc.id} is {row[0]}")
    cur.execute(
        "UPDATE rpcs SET state=%s, retries=%s, sent_at=%s, updated=%s, response=%s, error=%s "
        f"WHERE id=%s RETURNING {RPC_COLUMNS}",
        (
            rpc.state.value,
            rpc.retries,
            rpc.sent_at,
            rpc.updated,
            encode_json(rpc.response),
            rpc.error,
            rpc.id,
        ),
    )
    updated = cur.fetchone()
    assert updated is not None
    return rpc_from_row(updated)
