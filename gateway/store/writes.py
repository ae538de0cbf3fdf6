# -*- test-case-name: tests.store.test_contract -*-
"""
L{IStore}'s single-write methods as units of one, shared by every backend:
a backend implements C{commit} and inherits these.
"""

from __future__ import annotations

import abc
from typing import Any, Callable, Mapping, Sequence

from twisted.internet.defer import Deferred, fail

from gateway.domain.errors import InvalidArgument
from gateway.domain.model import (
    AttributeScope,
    Claim,
    Credential,
    CredentialKind,
    Device,
    JSONValue,
    Profile,
)
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

__all__ = ["SingleWrites"]


def _only(results: list[Any]) -> Any:
    return results[0]


class SingleWrites(abc.ABC):
    """Each write method commits a unit holding one operation."""

    @abc.abstractmethod
    def commit(self, unit: UnitOfWork) -> "Deferred[list[Any]]":
        """See L{gateway.store.interfaces.IStore.commit}."""

    def commit_one(self, operation: Operation) -> "Deferred[Any]":
        """Commit a unit of one, firing with its one result (backends may do it cheaper)."""
        return self.commit(UnitOfWork.of(operation)).addCallback(_only)

    def _one(self, build: Callable[[], Operation]) -> "Deferred[Any]":
        try:
            operation = build()
        except InvalidArgument:
            return fail()
        return self.commit_one(operation)

    def create_device(self, device: Device) -> "Deferred[Device]":
        return self._one(lambda: CreateDevice(device))

    def update_device(self, device: Device) -> "Deferred[Device]":
        return self._one(lambda: UpdateDevice(device))

    def delete_device(self, device_id: str) -> "Deferred[None]":
        return self._one(lambda: DeleteDevice(device_id))

    def put_credential(self, credential: Credential) -> "Deferred[None]":
        return self._one(lambda: PutCredential(credential))

    def delete_credential(self, device_id: str, kind: CredentialKind) -> "Deferred[bool]":
        return self._one(lambda: DeleteCredential(device_id, kind))

    def put_profile(self, profile: Profile) -> "Deferred[None]":
        return self._one(lambda: PutProfile(profile))

    def delete_profile(self, name: str) -> "Deferred[None]":
        return self._one(lambda: DeleteProfile(name))

    def set_attributes(
        self,
        device_id: str,
        scope: AttributeScope,
        values: Mapping[str, JSONValue],
        ts: int,
    ) -> "Deferred[None]":
        return self._one(lambda: SetAttributes(device_id, scope, values, ts))

    def delete_attributes(
        self, device_id: str, scope: AttributeScope, keys: Sequence[str]
    ) -> "Deferred[list[str]]":
        return self._one(lambda: DeleteAttributes(device_id, scope, keys))

    def append_telemetry(
        self,
        device_id: str,
        records: Sequence[tuple[int, Mapping[str, JSONValue]]],
    ) -> "Deferred[None]":
        return self._one(lambda: AppendTelemetry(device_id, records))

    def put_claim(self, claim: Claim) -> "Deferred[None]":
        return self._one(lambda: PutClaim(claim))

    def delete_claim(self, device_id: str) -> "Deferred[bool]":
        return self._one(lambda: DeleteClaim(device_id))
