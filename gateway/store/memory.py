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

from gateway.domain.errors import Conflict, InvalidArgument, NotFound
from gateway.domain.model import (
    Attribute,
    AttributeScope,
    Claim,
    Credential,
    CredentialKind,
    Device,
    Profile,
    TelemetryPoint,
)
from gateway.store.interfaces import IStore
from gateway.store.unit import (
    AppendTelemetry,
    CreateDevice,
    DeleteAttributes,
    DeleteClaim,
    DeleteCredential,
    DeleteDevice,
    DeleteProfile,
    Operation,
    PutClaim,
    PutCredential,
    PutProfile,
    SetAttributes,
    UnitOfWork,
    UpdateDevice,
)
from gateway.store.values import check_text, check_texts, decode_json
from gateway.store.writes import SingleWrites

__all__ = ["MemoryStore"]

T = TypeVar("T")

#: A stored JSON value: (JSON text, ts ms).
_Stamped = tuple[str, int]

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


@implementer(IStore)
@attrs.define
class MemoryStore(SingleWrites):
    """
    Dicts standing in for tables.

    @ivar closed: set by L{close}; later calls fail.
    """

    _devices: dict[str, Device] = attrs.field(factory=dict)
    _credentials: dict[tuple[str, CredentialKind], Credential] = attrs.field(factory=dict)
    _profiles: dict[str, Profile] = attrs.field(factory=dict)
    _attributes: dict[tuple[str, AttributeScope], dict[str, _Stamped]] = attrs.field(
        factory=dict
    )
    _telemetry: dict[str, dict[str, _Stamped]] = attrs.field(factory=dict)
    _claims: dict[str, Claim] = attrs.field(factory=dict)
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

    # -- lifecycle ---------------------------------------------------------

    def close(self) -> "Deferred[None]":
        self.closed = True
        return succeed(None)
