# -*- test-case-name: tests.store.test_contract -*-
"""
An in-memory L{IStore} for unit tests.  Same rules as the SQLite backend,
results delivered synchronously (already-fired Deferreds).
"""

from __future__ import annotations

import json
from typing import Callable, Mapping, Optional, Sequence, TypeVar

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
    JSONValue,
    Profile,
    TelemetryPoint,
)
from gateway.store.interfaces import IStore

__all__ = ["MemoryStore"]

T = TypeVar("T")


def _run(fn: Callable[[], T]) -> "Deferred[T]":
    try:
        return succeed(fn())
    except Exception:
        return fail()


def _copy(value: JSONValue) -> JSONValue:
    # Values go through JSON like a real backend would, so callers never
    # share mutable state with the store and unserialisable values fail.
    return json.loads(json.dumps(value))


@implementer(IStore)
@attrs.define
class MemoryStore:
    """
    Dicts standing in for tables.

    @ivar closed: set by L{close}; later calls fail.
    """

    _devices: dict[str, Device] = attrs.field(factory=dict)
    _credentials: dict[tuple[str, CredentialKind], Credential] = attrs.field(
        factory=dict
    )
    _profiles: dict[str, Profile] = attrs.field(factory=dict)
    _attributes: dict[tuple[str, AttributeScope], dict[str, Attribute]] = (
        attrs.field(factory=dict)
    )
    _telemetry: dict[str, dict[str, TelemetryPoint]] = attrs.field(
        factory=dict
    )
    _claims: dict[str, Claim] = attrs.field(factory=dict)
    closed: bool = False

    def _check_open(self) -> None:
        if self.closed:
            raise RuntimeError("store is closed")

    def _require_device(self, device_id: str) -> None:
        self._check_open()
        if device_id not in self._devices:
            raise NotFound(f"no device {device_id!r}")

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
                    f"device name {device.name!r} is taken in "
                    f"{device.application!r}"
                )

    def create_device(self, device: Device) -> "Deferred[Device]":
        def op() -> Device:
            self._check_open()
            if device.id in self._devices:
                raise Conflict(f"device id {device.id!r} is taken")
            self._check_device(device)
            self._devices[device.id] = device
            return device

        return _run(op)

    def update_device(self, device: Device) -> "Deferred[Device]":
        def op() -> Device:
            self._require_device(device.id)
            self._check_device(device)
            self._devices[device.id] = device
            return device

        return _run(op)

    def delete_device(self, device_id: str) -> "Deferred[None]":
        def op() -> None:
            self._require_device(device_id)
            del self._devices[device_id]
            for key in [k for k in self._credentials if k[0] == device_id]:
                del self._credentials[key]
            for akey in [k for k in self._attributes if k[0] == device_id]:
                del self._attributes[akey]
            self._telemetry.pop(device_id, None)
            self._claims.pop(device_id, None)

        return _run(op)

    def get_device(self, device_id: str) -> "Deferred[Optional[Device]]":
        def op() -> Optional[Device]:
            self._check_open()
            return self._devices.get(device_id)

        return _run(op)

    def find_device(
        self, application: str, name: str
    ) -> "Deferred[Optional[Device]]":
        def op() -> Optional[Device]:
            self._check_open()
            for d in self._devices.values():
                if d.application == application and d.name == name:
                    return d
            return None

        return _run(op)

    def list_devices(
        self, application: Optional[str] = None
    ) -> "Deferred[list[Device]]":
        def op() -> list[Device]:
            self._check_open()
            found = [
                d
                for d in self._devices.values()
                if application is None or d.application == application
            ]
            return sorted(found, key=lambda d: (d.name, d.application, d.id))

        return _run(op)

    # -- credentials -------------------------------------------------------

    def put_credential(self, credential: Credential) -> "Deferred[None]":
        def op() -> None:
            self._require_device(credential.device_id)
            for (dev, kind), other in self._credentials.items():
                if (
                    kind == credential.kind
                    and other.lookup == credential.lookup
                    and dev != credential.device_id
                ):
                    raise Conflict(
                        f"this {kind.value} credential is used by another "
                        "device"
                    )
            self._credentials[(credential.device_id, credential.kind)] = (
                credential
            )

        return _run(op)

    def get_credentials(self, device_id: str) -> "Deferred[list[Credential]]":
        def op() -> list[Credential]:
            self._check_open()
            return sorted(
                (c for k, c in self._credentials.items() if k[0] == device_id),
                key=lambda c: c.kind.value,
            )

        return _run(op)

    def delete_credential(
        self, device_id: str, kind: CredentialKind
    ) -> "Deferred[bool]":
        def op() -> bool:
            self._check_open()
            return self._credentials.pop((device_id, kind), None) is not None

        return _run(op)

    def find_credential(
        self, kind: CredentialKind, lookup: str
    ) -> "Deferred[Optional[Credential]]":
        def op() -> Optional[Credential]:
            self._check_open()
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

    def put_profile(self, profile: Profile) -> "Deferred[None]":
        def op() -> None:
            self._check_open()
            if profile.provision_key is not None:
                for other in self._profiles.values():
                    if (
                        other.name != profile.name
                        and other.provision_key == profile.provision_key
                    ):
                        raise Conflict("provision key is used by another profile")
            self._profiles[profile.name] = profile

        return _run(op)

    def get_profile(self, name: str) -> "Deferred[Optional[Profile]]":
        def op() -> Optional[Profile]:
            self._check_open()
            return self._profiles.get(name)

        return _run(op)

    def find_profile_by_provision_key(
        self, provision_key: str
    ) -> "Deferred[Optional[Profile]]":
        def op() -> Optional[Profile]:
            self._check_open()
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

    def delete_profile(self, name: str) -> "Deferred[None]":
        def op() -> None:
            self._check_open()
            if name not in self._profiles:
                raise NotFound(f"no profile {name!r}")
            if any(d.profile == name for d in self._devices.values()):
                raise Conflict(f"profile {name!r} is used by devices")
            del self._profiles[name]

        return _run(op)

    # -- attributes --------------------------------------------------------

    def get_attributes(
        self,
        device_id: str,
        scope: AttributeScope,
        keys: Optional[Sequence[str]] = None,
    ) -> "Deferred[list[Attribute]]":
        def op() -> list[Attribute]:
            self._check_open()
            table = self._attributes.get((device_id, scope), {})
            wanted = table.keys() if keys is None else set(keys) & table.keys()
            return [
                attrs.evolve(table[k], value=_copy(table[k].value))
                for k in sorted(wanted)
            ]

        return _run(op)

    def set_attributes(
        self,
        device_id: str,
        scope: AttributeScope,
        values: Mapping[str, JSONValue],
        ts: int,
    ) -> "Deferred[None]":
        def op() -> None:
            self._require_device(device_id)
            copied = {k: _copy(v) for k, v in values.items()}
            table = self._attributes.setdefault((device_id, scope), {})
            for k, v in copied.items():
                table[k] = Attribute(scope, k, v, ts)

        return _run(op)

    def delete_attributes(
        self, device_id: str, scope: AttributeScope, keys: Sequence[str]
    ) -> "Deferred[list[str]]":
        def op() -> list[str]:
            self._check_open()
            table = self._attributes.get((device_id, scope), {})
            gone = []
            for k in dict.fromkeys(keys):
                if table.pop(k, None) is not None:
                    gone.append(k)
            return gone

        return _run(op)

    # -- telemetry ---------------------------------------------------------

    def append_telemetry(
        self,
        device_id: str,
        records: Sequence[tuple[int, Mapping[str, JSONValue]]],
    ) -> "Deferred[None]":
        def op() -> None:
            self._require_device(device_id)
            copied = [
                (int(ts), {k: _copy(v) for k, v in values.items()})
                for ts, values in records
            ]
            latest = self._telemetry.setdefault(device_id, {})
            for ts, values in copied:
                for k, v in values.items():
                    old = latest.get(k)
                    if old is None or ts >= old.ts:
                        latest[k] = TelemetryPoint(k, v, ts)

        return _run(op)

    def get_latest_telemetry(
        self, device_id: str, keys: Optional[Sequence[str]] = None
    ) -> "Deferred[list[TelemetryPoint]]":
        def op() -> list[TelemetryPoint]:
            self._check_open()
            table = self._telemetry.get(device_id, {})
            wanted = table.keys() if keys is None else set(keys) & table.keys()
            return [
                attrs.evolve(table[k], value=_copy(table[k].value))
                for k in sorted(wanted)
            ]

        return _run(op)

    # -- claims ------------------------------------------------------------

    def put_claim(self, claim: Claim) -> "Deferred[None]":
        def op() -> None:
            self._require_device(claim.device_id)
            self._claims[claim.device_id] = claim

        return _run(op)

    def get_claim(self, device_id: str) -> "Deferred[Optional[Claim]]":
        def op() -> Optional[Claim]:
            self._check_open()
            return self._claims.get(device_id)

        return _run(op)

    def delete_claim(self, device_id: str) -> "Deferred[bool]":
        def op() -> bool:
            self._check_open()
            return self._claims.pop(device_id, None) is not None

        return _run(op)

    # -- lifecycle ---------------------------------------------------------

    def close(self) -> "Deferred[None]":
        self.closed = True
        return succeed(None)
