# -*- test-case-name: tests.service.test_devices -*-
"""
The device-services facade the dialects get: L{IDeviceServices} over the
credential cache and the telemetry, attribute, claiming, provisioning and
activity services, the credential guard, the RPC queue, the client-side
RPCs and the OTA downloads, so a dialect never holds the store or the registry.  Its shared
attribute subscriptions hold changes while the device sleeps
(L{gateway.service.downlinks}).
"""

from __future__ import annotations

from typing import Mapping, Optional, Sequence

import attrs
from twisted.internet.defer import Deferred, fail
from zope.interface import implementer

from gateway.domain.errors import InvalidArgument, NotFound
from gateway.domain.model import (
    Attribute,
    AttributeScope,
    Claim,
    CredentialKind,
    Device,
    JSONValue,
    Profile,
    Rpc,
    TelemetryRecord,
)
from gateway.domain.ota import OtaKind
from gateway.service.client_rpc import ClientRpc
from gateway.service.downlinks import HeldAttributes
from gateway.service.interfaces import (
    AttributeCallback,
    DeliverRpc,
    Download,
    IAttributeService,
    IClaimingService,
    ICredentialCache,
    ICredentialGuard,
    IDeviceActivity,
    IDeviceServices,
    IProvisioningService,
    ITelemetryService,
    ProfileSchemas,
    ProvisionRequest,
    ProvisionResult,
    Publication,
    SeenVia,
    UnreachableReason,
    Unsubscribe,
)
from gateway.service.ota import OtaService
from gateway.service.publish import PublishService
from gateway.service.rpc import RpcService
from gateway.service.schemas import SchemaCache

__all__ = ["DeviceServices"]


@implementer(IDeviceServices)
@attrs.frozen
class DeviceServices:
    _credentials: ICredentialCache
    _telemetry: ITelemetryService
    _attributes: IAttributeService
    _claiming: IClaimingService
    _provisioning: IProvisioningService
    _activity: IDeviceActivity
    _guard: ICredentialGuard
    _held: HeldAttributes
    _rpc: RpcService
    _client_rpc: ClientRpc
    _publish: PublishService
    _ota: OtaService
    _schemas: SchemaCache
    #: Named in the upstream events of the uplinks that come through here.
    dialect: str = "api"

    def for_dialect(self, name: str) -> "DeviceServices":
        return attrs.evolve(self, dialect=name)

    # -- authentication ----------------------------------------------------

    def authenticate_token(self, token: str) -> Optional[Device]:
        device = self._credentials.authenticate_token(token)
        if device is None or self._credentials.holds_session_key(device.id):
            return None
        return device

    def authenticate_identity(self, kind: CredentialKind, lookup: str) -> Optional[Device]:
        if kind is CredentialKind.X509:
            return self._credentials.authenticate_certificate_sha256(lookup)
        if kind is CredentialKind.PSK:
            psk = self._credentials.psk_for_identity(lookup)
            return psk[0] if psk is not None else None
        return None

    def authenticate_basic(
        self, username: str, password: str
    ) -> "Deferred[Optional[Device]]":
        return self._credentials.authenticate_basic(username, password)

    def authenticate_password(
        self, device_id: str, password: str
    ) -> "Deferred[Optional[Device]]":
        return self._credentials.verify_device_password(device_id, password)

    def enabled_device(self, device_id: str) -> Optional[Device]:
        device = self._credentials.device(device_id)
        return device if device is not None and device.enabled else None

    def find_device(self, application: str, name: str) -> Optional[Device]:
        device = self._credentials.device_named(application, name)
        return device if device is not None and device.enabled else None

    def profile(self, name: str) -> Optional[Profile]:
        return self._credentials.profile(name)

    def payload_schemas(self, profile: str) -> Optional[ProfileSchemas]:
        return self._schemas.schemas(profile)

    # -- what a device sends and reads -------------------------------------

    def record_telemetry(
        self, device_id: str, records: Sequence[TelemetryRecord]
    ) -> "Deferred[None]":
        return self._telemetry.record(device_id, records, self.dialect)

    def get_attributes(
        self,
        device_id: str,
        scope: AttributeScope,
        keys: Optional[Sequence[str]] = None,
    ) -> "Deferred[list[Attribute]]":
        if scope is AttributeScope.SERVER:
            return fail(InvalidArgument("server attributes are not the device's to read"))
        return self._attributes.get_attributes(device_id, scope, keys)

    def publish(self, device_id: str, publication: Publication) -> "Deferred[None]":
        return self._publish.publish(device_id, publication, self.dialect)

    def set_client_attributes(
        self, device_id: str, values: Mapping[str, JSONValue]
    ) -> "Deferred[None]":
        return self._attributes.set_attributes(
            device_id, AttributeScope.CLIENT, values, self.dialect
        )

    def subscribe_attributes(
        self, device_id: str, callback: AttributeCallback
    ) -> Unsubscribe:
        return self._held.subscribe(device_id, callback)

    def ota_download(self, device_id: str, kind: OtaKind) -> "Deferred[Optional[Download]]":
        return self._ota.download(device_id, kind)

    def request_claim(
        self, device_id: str, secret_key: str = "", duration_ms: int = 0
    ) -> "Deferred[Claim]":
        return self._claiming.request_claim(device_id, secret_key, duration_ms, self.dialect)

    def provision(self, request: ProvisionRequest) -> "Deferred[ProvisionResult]":
        return self._provisioning.provision(request, self.dialect)

    # -- RPC ---------------------------------------------------------------

    def subscribe_rpc(self, device_id: str, deliver: DeliverRpc, nstart: int = 1) -> Unsubscribe:
        return self._rpc.subscribe(device_id, deliver, nstart, self.dialect)

    def queued_rpcs(self, device_id: str) -> int:
        return self._rpc.queued(device_id)

    def reply_rpc(self, device_id: str, rpc_id: int, response: JSONValue) -> "Deferred[Rpc]":
        return self._rpc.reply(device_id, rpc_id, response, self.dialect)

    def client_rpc(
        self, device_id: str, method: str, params: JSONValue
    ) -> "Deferred[JSONValue]":
        device = self.enabled_device(device_id)
        if device is None:
            return fail(NotFound(f"no device {device_id!r}"))
        return self._client_rpc.call(device, method, params)

    # -- activity ----------------------------------------------------------

    def report_seen(self, device_id: str, via: SeenVia) -> None:
        self._activity.seen(device_id, via)

    def report_unreachable(self, device_id: str, reason: UnreachableReason) -> None:
        self._activity.unreachable(device_id, reason)

    # -- wrong credentials -------------------------------------------------

    def source_throttled(self, source: str) -> Optional[int]:
        return self._guard.throttled(source)

    def report_wrong_credentials(self, source: str) -> None:
        self._guard.failed(source)
