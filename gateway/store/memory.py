# -*- test-case-name: tests.store.test_contract -*-
"""
An in-memory L{IStore}: for unit tests and for C{[storage] backend =
"memory"} (nothing persisted).  Same rules as the SQLite backend, the
reference: the same input is refused with the same error, JSON values are
kept as JSON text, a failing unit leaves nothing behind.  Results are
delivered synchronously (already-fired Deferreds).
"""

from __future__ import annotations

from typing import Any, Callable, Optional, Sequence, TypeVar, assert_never

import attrs
from twisted.internet.defer import Deferred, fail, succeed
from zope.interface import implementer

from gateway.domain.errors import Conflict, IdTaken, InvalidArgument, NotFound, Unavailable
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
from gateway.store.interfaces import ICommandQueue, IOutbox, IPackageStore, IStore
from gateway.store.unit import (
    AppendEvent,
    AppendTelemetry,
    AssignPackage,
    CreateDevice,
    DeadLetter,
    DeleteAttributes,
    DeleteClaim,
    DeleteCredential,
    DeleteDevice,
    DeletePackage,
    DeleteProfile,
    EnqueueRpc,
    Operation,
    OutboxEvent,
    PutClaim,
    PutCredential,
    PutPackage,
    PutProfile,
    SetAttributes,
    UnassignPackage,
    UnitOfWork,
    UpdateDevice,
    UpdateRpc,
)
from gateway.store.values import check_int64, check_text, check_texts, decode_json, encode_json
from gateway.store.writes import SingleWrites

__all__ = ["MemoryStore"]

T = TypeVar("T")

#: A stored JSON value: (JSON text, ts ms).
_Stamped = tuple[str, int]

#: A stored RPC: the record without its JSON values, which are kept as
#: text beside it (params, response).
_RpcRow = tuple[Rpc, str, str]

_UNFINISHED = (RpcState.QUEUED, RpcState.SENT, RpcState.DELIVERED)

_ABSENT = object()


def _run(fn: Callable[[], T]) -> "Deferred[T]":
    try:
        return succeed(fn())
    except Exception:
        return fail()


@attrs.define
class _Journal:
    """How to undo one unit's changes to the tables, newest last."""

    _undo: list[tuple[dict[Any, Any], Any, Any]] = attrs.field(factory=list)

    def put(self, table: dict[Any, Any], key: Any, value: Any) -> None:
        self._undo.append((table, key, table.get(key, _ABSENT)))
        table[key] = value

    def pop(self, table: dict[Any, Any], key: Any) -> bool:
        """Remove C{key}; C{True} if it was there."""
        if key not in table:
            return False
        self._undo.append((table, key, table.pop(key)))
        return True

    def rollback(self) -> None:
        for table, key, old in reversed(self._undo):
            if old is _ABSENT:
                del table[key]
            else:
                table[key] = old
        self._undo.clear()


def _rpc_row(rpc: Rpc) -> _RpcRow:
    return (
        attrs.evolve(rpc, params=None, response=None),
        encode_json(rpc.params),
        encode_json(rpc.response),
    )


def _rpc_of(row: _RpcRow) -> Rpc:
    return attrs.evolve(row[0], params=decode_json(row[1]), response=decode_json(row[2]))


#: A package's key: kind, title, version.
_PackageKey = tuple[OtaKind, str, str]
#: An assignment's key: kind, target type, target.
_AssignmentKey = tuple[OtaKind, AssignmentTarget, str]


def _package_order(p: OtaPackage) -> tuple[str, str, str]:
    return (p.kind.value, p.title, p.version)


def _assignment_order(a: OtaAssignment) -> tuple[str, str, str]:
    return (a.kind.value, a.target_type.value, a.target)


@implementer(IStore, IOutbox, ICommandQueue, IPackageStore)
@attrs.define
class MemoryStore(SingleWrites):
    """
    Dicts standing in for tables.

    @ivar outbox_limit: see L{IOutbox.outbox_limit}.
    @ivar closed: set by L{close}; later calls fail.
    """

    outbox_limit: Optional[int] = None
    _devices: dict[str, Device] = attrs.field(factory=dict)
    _credentials: dict[tuple[str, CredentialKind], Credential] = attrs.field(factory=dict)
    _profiles: dict[str, Profile] = attrs.field(factory=dict)
    _attributes: dict[tuple[str, AttributeScope], dict[str, _Stamped]] = attrs.field(
        factory=dict
    )
    _telemetry: dict[str, dict[str, _Stamped]] = attrs.field(factory=dict)
    _claims: dict[str, Claim] = attrs.field(factory=dict)
    # Dicts keep insertion order: positions ascend in both.
    _outbox: dict[int, OutboxEvent] = attrs.field(factory=dict)
    _dead: dict[int, DeadLetter] = attrs.field(factory=dict)
    _sequences: dict[str, int] = attrs.field(factory=dict)
    # By id, which ascends.
    _rpcs: dict[int, _RpcRow] = attrs.field(factory=dict)
    _packages: dict[_PackageKey, OtaPackage] = attrs.field(factory=dict)
    _assignments: dict[_AssignmentKey, OtaAssignment] = attrs.field(factory=dict)
    # The last position and RPC id given, in a dict so the journal can undo them.
    _counters: dict[str, int] = attrs.field(factory=lambda: {"position": 0, "rpc": 0})
    closed: bool = False

    def _check_open(self) -> None:
        if self.closed:
            raise RuntimeError("store is closed")

    def _require_device(self, device_id: str) -> None:
        if device_id not in self._devices:
            raise NotFound(f"no device {device_id!r}")

    # -- units of work -----------------------------------------------------

    def commit(self, unit: UnitOfWork) -> "Deferred[list[Any]]":
        return _run(lambda: self._atomically(unit.operations))

    def commit_one(self, operation: Operation) -> "Deferred[Any]":
        return _run(lambda: self._atomically((operation,))[0])

    def _atomically(self, operations: Sequence[Operation]) -> list[Any]:
        self._check_open()
        journal = _Journal()
        try:
            return [self._apply(journal, op) for op in operations]
        except BaseException:
            journal.rollback()
            raise

    def _apply(self, j: _Journal, op: Operation) -> Any:
        match op:
            case CreateDevice():
                return self._create_device(j, op.device)
            case UpdateDevice():
                return self._update_device(j, op.device)
            case DeleteDevice():
                return self._delete_device(j, op.device_id)
            case PutCredential():
                return self._put_credential(j, op.credential)
            case DeleteCredential():
                return j.pop(self._credentials, (op.device_id, op.kind))
            case PutProfile():
                return self._put_profile(j, op.profile)
            case DeleteProfile():
                return self._delete_profile(j, op.name)
            case SetAttributes():
                return self._set_attributes(j, op)
            case DeleteAttributes():
                table = self._attributes.get((op.device_id, op.scope), {})
                return [k for k in op.keys if j.pop(table, k)]
            case AppendTelemetry():
                return self._append_telemetry(j, op)
            case PutClaim():
                self._require_device(op.claim.device_id)
                j.put(self._claims, op.claim.device_id, op.claim)
                return None
            case DeleteClaim():
                return j.pop(self._claims, op.device_id)
            case AppendEvent():
                return self._append_event(j, op)
            case EnqueueRpc():
                return self._enqueue_rpc(j, op)
            case UpdateRpc():
                return self._update_rpc(j, op)
            case PutPackage():
                return self._put_package(j, op.package)
            case DeletePackage():
                return self._delete_package(j, (op.kind, op.title, op.version))
            case AssignPackage():
                return self._assign(j, op.assignment)
            case UnassignPackage():
                key = (op.kind, op.target_type, op.target)
                found = self._assignments.get(key)
                j.pop(self._assignments, key)
                return found
            case _:
                assert_never(op)

    # -- devices -----------------------------------------------------------

    def _check_device(self, device: Device) -> None:
        if device.profile not in self._profiles:
            raise InvalidArgument(f"no profile {device.profile!r}")
        for other in self._devices.values():
            if (
                other.id != device.id
                and other.application == device.application
                and other.name == device.name
            ):
                raise Conflict(
                    f"device name {device.name!r} is taken in {device.application!r}"
                )

    def _create_device(self, j: _Journal, device: Device) -> Device:
        if device.id in self._devices:
            raise Conflict(f"device id {device.id!r} is taken")
        self._check_device(device)
        j.put(self._devices, device.id, device)
        return device

    def _update_device(self, j: _Journal, device: Device) -> Device:
        self._require_device(device.id)
        self._check_device(device)
        j.put(self._devices, device.id, device)
        return device

    def _delete_device(self, j: _Journal, device_id: str) -> None:
        self._require_device(device_id)
        j.pop(self._devices, device_id)
        for key in [k for k in self._credentials if k[0] == device_id]:
            j.pop(self._credentials, key)
        for akey in [k for k in self._attributes if k[0] == device_id]:
            j.pop(self._attributes, akey)
        j.pop(self._telemetry, device_id)
        j.pop(self._claims, device_id)
        for rpc_id in [i for i, row in self._rpcs.items() if row[0].device_id == device_id]:
            j.pop(self._rpcs, rpc_id)
        self._drop_assignments(j, AssignmentTarget.DEVICE, device_id)

    def _drop_assignments(self, j: _Journal, target_type: AssignmentTarget, target: str) -> None:
        for key in [k for k in self._assignments if k[1:] == (target_type, target)]:
            j.pop(self._assignments, key)

    def get_device(self, device_id: str) -> "Deferred[Optional[Device]]":
        def op() -> Optional[Device]:
            self._check_open()
            check_text("device id", device_id)
            return self._devices.get(device_id)

        return _run(op)

    def find_device(self, application: str, name: str) -> "Deferred[Optional[Device]]":
        def op() -> Optional[Device]:
            self._check_open()
            check_text("application", application)
            check_text("device name", name)
            for d in self._devices.values():
                if d.application == application and d.name == name:
                    return d
            return None

        return _run(op)

    def list_devices(self, application: Optional[str] = None) -> "Deferred[list[Device]]":
        def op() -> list[Device]:
            self._check_open()
            if application is not None:
                check_text("application", application)
            found = [
                d
                for d in self._devices.values()
                if application is None or d.application == application
            ]
            return sorted(found, key=lambda d: (d.name, d.application, d.id))

        return _run(op)

    # -- credentials -------------------------------------------------------

    def _put_credential(self, j: _Journal, credential: Credential) -> None:
        self._require_device(credential.device_id)
        for (dev, kind), other in self._credentials.items():
            if (
                kind == credential.kind
                and other.lookup == credential.lookup
                and dev != credential.device_id
            ):
                raise Conflict(f"this {kind.value} credential is used by another device")
        j.put(self._credentials, (credential.device_id, credential.kind), credential)

    def get_credentials(self, device_id: str) -> "Deferred[list[Credential]]":
        def op() -> list[Credential]:
            self._check_open()
            check_text("device id", device_id)
            return sorted(
                (c for k, c in self._credentials.items() if k[0] == device_id),
                key=lambda c: c.kind.value,
            )

        return _run(op)

    def find_credential(
        self, kind: CredentialKind, lookup: str
    ) -> "Deferred[Optional[Credential]]":
        def op() -> Optional[Credential]:
            self._check_open()
            check_text(f"{kind.value} lookup", lookup)
            for c in self._credentials.values():
                if c.kind == kind and c.lookup == lookup:
                    return c
            return None

        return _run(op)

    def load_all_credentials(self) -> "Deferred[list[Credential]]":
        def op() -> list[Credential]:
            self._check_open()
            return list(self._credentials.values())

        return _run(op)

    # -- profiles ----------------------------------------------------------

    def _put_profile(self, j: _Journal, profile: Profile) -> None:
        if profile.provision_key is not None:
            for other in self._profiles.values():
                if other.name != profile.name and other.provision_key == profile.provision_key:
                    raise Conflict("provision key is used by another profile")
        j.put(self._profiles, profile.name, profile)

    def _delete_profile(self, j: _Journal, name: str) -> None:
        if name not in self._profiles:
            raise NotFound(f"no profile {name!r}")
        if any(d.profile == name for d in self._devices.values()):
            raise Conflict(f"profile {name!r} is used by devices")
        j.pop(self._profiles, name)
        self._drop_assignments(j, AssignmentTarget.PROFILE, name)

    def get_profile(self, name: str) -> "Deferred[Optional[Profile]]":
        def op() -> Optional[Profile]:
            self._check_open()
            check_text("profile name", name)
            return self._profiles.get(name)

        return _run(op)

    def find_profile_by_provision_key(
        self, provision_key: str
    ) -> "Deferred[Optional[Profile]]":
        def op() -> Optional[Profile]:
            self._check_open()
            check_text("provision key", provision_key)
            for p in self._profiles.values():
                if p.provision_key == provision_key:
                    return p
            return None

        return _run(op)

    def list_profiles(self) -> "Deferred[list[Profile]]":
        def op() -> list[Profile]:
            self._check_open()
            return sorted(self._profiles.values(), key=lambda p: p.name)

        return _run(op)

    # -- attributes and telemetry ------------------------------------------

    def _table(
        self, j: _Journal, tables: dict[Any, dict[str, _Stamped]], key: Any
    ) -> dict[str, _Stamped]:
        if key not in tables:
            j.put(tables, key, {})
        return tables[key]

    def _set_attributes(self, j: _Journal, op: SetAttributes) -> None:
        self._require_device(op.device_id)
        table = self._table(j, self._attributes, (op.device_id, op.scope))
        for k, text in op.values:
            j.put(table, k, (text, op.ts))

    def _append_telemetry(self, j: _Journal, op: AppendTelemetry) -> None:
        self._require_device(op.device_id)
        latest = self._table(j, self._telemetry, op.device_id)
        for ts, values in op.records:
            for k, text in values:
                if k not in latest or ts >= latest[k][1]:
                    j.put(latest, k, (text, ts))

    @staticmethod
    def _select(
        table: dict[str, _Stamped], keys: Optional[Sequence[str]]
    ) -> list[tuple[str, str, int]]:
        wanted = table.keys() if keys is None else set(check_texts("key", keys)) & table.keys()
        return [(k, *table[k]) for k in sorted(wanted)]

    def get_attributes(
        self,
        device_id: str,
        scope: AttributeScope,
        keys: Optional[Sequence[str]] = None,
    ) -> "Deferred[list[Attribute]]":
        def op() -> list[Attribute]:
            self._check_open()
            check_text("device id", device_id)
            table = self._attributes.get((device_id, scope), {})
            return [
                Attribute(scope, k, decode_json(text), ts)
                for k, text, ts in self._select(table, keys)
            ]

        return _run(op)

    def get_latest_telemetry(
        self, device_id: str, keys: Optional[Sequence[str]] = None
    ) -> "Deferred[list[TelemetryPoint]]":
        def op() -> list[TelemetryPoint]:
            self._check_open()
            check_text("device id", device_id)
            table = self._telemetry.get(device_id, {})
            return [
                TelemetryPoint(k, decode_json(text), ts)
                for k, text, ts in self._select(table, keys)
            ]

        return _run(op)

    # -- claims ------------------------------------------------------------

    def get_claim(self, device_id: str) -> "Deferred[Optional[Claim]]":
        def op() -> Optional[Claim]:
            self._check_open()
            check_text("device id", device_id)
            return self._claims.get(device_id)

        return _run(op)

    # -- outbox ------------------------------------------------------------

    def _append_event(self, j: _Journal, op: AppendEvent) -> int:
        if self.outbox_limit is not None and len(self._outbox) >= self.outbox_limit:
            raise Unavailable(f"the outbox is full ({self.outbox_limit} events)")
        sequence = self._sequences.get(op.device_id, 0) + 1
        j.put(self._sequences, op.device_id, sequence)
        position = self._next_position(j)
        j.put(
            self._outbox,
            position,
            OutboxEvent(
                position,
                op.device_id,
                sequence,
                op.event_id,
                op.type,
                op.time_ms,
                op.received_ms,
                op.body,
            ),
        )
        return sequence

    def _next_position(self, j: _Journal) -> int:
        position = self._counters["position"] + 1
        j.put(self._counters, "position", position)
        return position

    def peek(self, limit: int, after: int = 0) -> "Deferred[list[OutboxEvent]]":
        return self.query(after=after, limit=limit)

    def acknowledge(self, positions: Sequence[int]) -> "Deferred[int]":
        def op() -> int:
            self._check_open()
            return sum(self._outbox.pop(p, None) is not None for p in set(positions))

        return _run(op)

    def size(self) -> "Deferred[int]":
        def op() -> int:
            self._check_open()
            return len(self._outbox)

        return _run(op)

    def query(
        self,
        device_id: Optional[str] = None,
        type: Optional[str] = None,
        after: int = 0,
        limit: int = 100,
    ) -> "Deferred[list[OutboxEvent]]":
        def op() -> list[OutboxEvent]:
            self._check_open()
            found: list[OutboxEvent] = []
            for e in self._outbox.values():
                if len(found) >= limit:
                    break
                if (
                    e.position > after
                    and (device_id is None or e.device_id == device_id)
                    and (type is None or e.type == type)
                ):
                    found.append(e)
            return found

        return _run(op)

    def prune(self, received_before_ms: int, keep: int) -> "Deferred[int]":
        def op() -> int:
            self._check_open()
            old = []
            for position, e in self._outbox.items():
                if e.received_ms >= received_before_ms:
                    break
                old.append(position)
            excess = max(len(self._outbox) - len(old) - keep, 0)
            gone = old + list(self._outbox)[len(old) : len(old) + excess]
            for position in gone:
                del self._outbox[position]
            return len(gone)

        return _run(op)

    def dead_letter(
        self, position: int, status: int, reason: str, at_ms: int
    ) -> "Deferred[bool]":
        def op() -> bool:
            self._check_open()
            check_text("reason", reason)
            event = self._outbox.pop(position, None)
            if event is None:
                return False
            self._dead[position] = DeadLetter(event, status, reason, at_ms)
            return True

        return _run(op)

    def dead_letters(self, limit: int = 100, after: int = 0) -> "Deferred[list[DeadLetter]]":
        def op() -> list[DeadLetter]:
            self._check_open()
            return [d for p, d in self._dead.items() if p > after][:limit]

        return _run(op)

    def _chosen(self, positions: Optional[Sequence[int]]) -> list[int]:
        if positions is None:
            return list(self._dead)
        return sorted(set(positions) & self._dead.keys())

    def replay(self, positions: Optional[Sequence[int]] = None) -> "Deferred[int]":
        def op() -> int:
            self._check_open()
            chosen = self._chosen(positions)
            j = _Journal()
            for p in chosen:
                event = self._dead.pop(p).event
                position = self._next_position(j)
                self._outbox[position] = attrs.evolve(event, position=position)
            return len(chosen)

        return _run(op)

    def discard(self, positions: Optional[Sequence[int]] = None) -> "Deferred[int]":
        def op() -> int:
            self._check_open()
            chosen = self._chosen(positions)
            for p in chosen:
                del self._dead[p]
            return len(chosen)

        return _run(op)

    # -- RPC queue ---------------------------------------------------------

    def _enqueue_rpc(self, j: _Journal, op: EnqueueRpc) -> Rpc:
        device_id = op.rpc.device_id
        self._require_device(device_id)
        mine = [row[0] for row in self._rpcs.values() if row[0].device_id == device_id]
        unfinished = sum(r.state in _UNFINISHED for r in mine)
        if unfinished >= op.limit:
            raise Conflict(
                f"the RPC queue of device {device_id!r} is full ({unfinished} unfinished)"
            )
        finished = [r.id for r in mine if r.state not in _UNFINISHED]
        for rpc_id in finished[: max(len(finished) - op.keep_finished, 0)]:
            j.pop(self._rpcs, rpc_id)
        rpc = op.rpc
        if rpc.id <= self._counters["rpc"]:
            raise IdTaken(f"rpc id {rpc.id} was given before")
        j.put(self._counters, "rpc", rpc.id)
        j.put(self._rpcs, rpc.id, _rpc_row(rpc))
        return rpc

    def _update_rpc(self, j: _Journal, op: UpdateRpc) -> Rpc:
        row = self._rpcs.get(op.rpc.id)
        if row is None or row[0].device_id != op.rpc.device_id:
            raise NotFound(f"no rpc {op.rpc.id} of device {op.rpc.device_id!r}")
        old = row[0]
        if old.state not in op.expect:
            raise Conflict(f"rpc {old.id} is {old.state.value}")
        new = op.rpc
        rpc = attrs.evolve(
            old,
            params=decode_json(row[1]),
            state=new.state,
            retries=new.retries,
            sent_at=new.sent_at,
            updated=new.updated,
            response=new.response,
            error=new.error,
        )
        j.put(self._rpcs, rpc.id, _rpc_row(rpc))
        return rpc

    def last_rpc_id(self) -> "Deferred[int]":
        def op() -> int:
            self._check_open()
            return self._counters["rpc"]

        return _run(op)

    def get_rpc(self, device_id: str, rpc_id: int) -> "Deferred[Optional[Rpc]]":
        def op() -> Optional[Rpc]:
            self._check_open()
            check_text("device id", device_id)
            check_int64("rpc id", rpc_id)
            row = self._rpcs.get(rpc_id)
            return None if row is None or row[0].device_id != device_id else _rpc_of(row)

        return _run(op)

    def list_rpcs(
        self, device_id: str, state: Optional[RpcState] = None, limit: int = 100
    ) -> "Deferred[list[Rpc]]":
        def op() -> list[Rpc]:
            self._check_open()
            check_text("device id", device_id)
            found = [
                _rpc_of(row)
                for row in self._rpcs.values()
                if row[0].device_id == device_id and (state is None or row[0].state is state)
            ]
            return found[:limit]

        return _run(op)

    def unfinished_rpcs(self) -> "Deferred[list[Rpc]]":
        def op() -> list[Rpc]:
            self._check_open()
            found = [_rpc_of(row) for row in self._rpcs.values() if row[0].state in _UNFINISHED]
            return sorted(found, key=lambda r: (r.device_id, r.id))

        return _run(op)

    # -- OTA packages ------------------------------------------------------

    def _put_package(self, j: _Journal, package: OtaPackage) -> None:
        key = (package.kind, package.title, package.version)
        if key in self._packages:
            raise Conflict(
                f"{package.kind.value} {package.title!r} {package.version!r} exists"
            )
        j.put(self._packages, key, package)

    def _delete_package(self, j: _Journal, key: _PackageKey) -> OtaPackage:
        package = self._packages.get(key)
        if package is None:
            raise NotFound(f"no {key[0].value} {key[1]!r} {key[2]!r}")
        if any((a.kind, a.title, a.version) == key for a in self._assignments.values()):
            raise Conflict(f"{key[0].value} {key[1]!r} {key[2]!r} is assigned")
        j.pop(self._packages, key)
        return package

    def _assign(self, j: _Journal, a: OtaAssignment) -> None:
        if (a.kind, a.title, a.version) not in self._packages:
            raise NotFound(f"no {a.kind.value} {a.title!r} {a.version!r}")
        if a.target_type is AssignmentTarget.DEVICE:
            self._require_device(a.target)
        elif a.target not in self._profiles:
            raise NotFound(f"no profile {a.target!r}")
        j.put(self._assignments, (a.kind, a.target_type, a.target), a)

    def get_package(
        self, kind: OtaKind, title: str, version: str
    ) -> "Deferred[Optional[OtaPackage]]":
        def op() -> Optional[OtaPackage]:
            self._check_open()
            key = (kind, check_text("title", title), check_text("version", version))
            return self._packages.get(key)

        return _run(op)

    def list_packages(self, kind: Optional[OtaKind] = None) -> "Deferred[list[OtaPackage]]":
        def op() -> list[OtaPackage]:
            self._check_open()
            found = [p for p in self._packages.values() if kind is None or p.kind is kind]
            return sorted(found, key=_package_order)

        return _run(op)

    def get_assignment(
        self, kind: OtaKind, target_type: AssignmentTarget, target: str
    ) -> "Deferred[Optional[OtaAssignment]]":
        def op() -> Optional[OtaAssignment]:
            self._check_open()
            return self._assignments.get((kind, target_type, check_text("target", target)))

        return _run(op)

    def list_assignments(
        self, kind: Optional[OtaKind] = None
    ) -> "Deferred[list[OtaAssignment]]":
        def op() -> list[OtaAssignment]:
            self._check_open()
            found = [a for a in self._assignments.values() if kind is None or a.kind is kind]
            return sorted(found, key=_assignment_order)

        return _run(op)

    # -- lifecycle ---------------------------------------------------------

    def close(self) -> "Deferred[None]":
        self.closed = True
        return succeed(None)
