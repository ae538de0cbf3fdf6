# -*- test-case-name: tests.service.test_provisioning -*-
"""
ThingsBoard device provisioning (reference section 4).

 - The profile is found by C{provisionDeviceKey}; an unknown key, a wrong
   secret (compared in constant time) or a profile with provisioning
   disabled give NOT_FOUND.
 - C{allow_create_new}: a device of that name (application C{default}) is
   created; if it already exists with this profile it is provisioned in
   place, with another profile NOT_FOUND.
 - C{check_pre_provisioned}: the device must already exist with this
   profile, otherwise NOT_FOUND.
 - A device already provisioned (server attribute C{provisionState} =
   C{"provisioned"}) gives FAILURE, as do a token used by another device and
   credential types other than ACCESS_TOKEN (not supported yet).
 - Without C{deviceName} a random name is used, as ThingsBoard does.
 - The device, its token, its C{provisionState} and the upstream event
   (C{data} C{{"deviceName", "profile", "created"}}, never the token) are
   one unit of work: a failed provisioning leaves no device, no token, no
   state and no event behind (and an existing device keeps its old token);
   a full outbox is a FAILURE.
"""

from __future__ import annotations

import hmac
import uuid
from typing import Callable

import attrs
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from zope.interface import implementer

from gateway.domain.errors import ServiceError, Unavailable
from gateway.domain.model import (
    DEFAULT_APPLICATION,
    AttributeScope,
    Device,
    ProvisionStrategy,
)
from gateway.service.attributes import AttributeService, now_ms
from gateway.service.interfaces import (
    IProvisioningService,
    ProvisionRequest,
    ProvisionResult,
    ProvisionStatus,
)
from gateway.service.registry import DeviceRegistry
from gateway.service.uplinks import RetryAfter, fixed_retry_after
from gateway.store.interfaces import IStore
from gateway.store.unit import SetAttributes, UnitOfWork
from gateway.store.values import encode_json
from gateway.upstream.events import EventFactory, UplinkKind

__all__ = ["ProvisioningService", "PROVISION_STATE_KEY", "PROVISIONED"]

log = Logger()

PROVISION_STATE_KEY = "provisionState"
PROVISIONED = "provisioned"

_NOT_FOUND = ProvisionResult(ProvisionStatus.NOT_FOUND)
_FAILURE = ProvisionResult(ProvisionStatus.FAILURE)


@implementer(IProvisioningService)
@attrs.define
class ProvisioningService:
    _store: IStore
    _registry: DeviceRegistry
    _attributes: AttributeService
    _clock: IReactorTime
    _events: EventFactory
    _retry_after: RetryAfter = fixed_retry_after

    def provision(
        self, request: ProvisionRequest, dialect: str = "api"
    ) -> "Deferred[ProvisionResult]":
        return Deferred.fromCoroutine(self._provision(request, dialect))

    def _mark_provisioned(self, dialect: str, created: bool) -> Callable[[Device], UnitOfWork]:
        def writes(device: Device) -> UnitOfWork:
            now = now_ms(self._clock)
            data = encode_json(
                {"deviceName": device.name, "profile": device.profile, "created": created}
            )
            return UnitOfWork.of(
                # A server-scope attribute: no subscriber hears of it.
                SetAttributes(
                    device.id, AttributeScope.SERVER, {PROVISION_STATE_KEY: PROVISIONED}, now
                ),
                self._events.event(UplinkKind.PROVISION, device, dialect, now, data),
            )

        return writes

    async def _provisioned(self, device: Device) -> bool:
        state = await self._attributes.get_attributes(
            device.id, AttributeScope.SERVER, [PROVISION_STATE_KEY]
        )
        return bool(state) and state[0].value == PROVISIONED

    async def _provision(self, request: ProvisionRequest, dialect: str) -> ProvisionResult:
        if not request.provision_key or not request.provision_secret:
            return _NOT_FOUND
        profile = await self._store.find_profile_by_provision_key(
            request.provision_key
        )
        if (
            profile is None
            or profile.provisioning is ProvisionStrategy.DISABLED
            or profile.provision_secret is None
            or not hmac.compare_digest(
                profile.provision_secret.encode("utf-8"),
                request.provision_secret.encode("utf-8"),
            )
        ):
            return _NOT_FOUND
        # What an unauthenticated sender gets wrong is logged at debug only.
        if request.credentials_type != "ACCESS_TOKEN":
            log.debug(
                "provisioning with {credentials_type} is not supported",
                credentials_type=request.credentials_type,
            )
            return _FAILURE
        name = request.device_name or str(uuid.uuid4())
        device = await self._store.find_device(DEFAULT_APPLICATION, name)
        try:
            if device is None:
                if profile.provisioning is not ProvisionStrategy.ALLOW_CREATE_NEW:
                    return _NOT_FOUND
                created = await self._registry.create_device(
                    name,
                    profile=profile.name,
                    access_token=request.token,
                    also=self._mark_provisioned(dialect, created=True),
                )
                device = created.device
                token = created.access_token
            else:
                if device.profile != profile.name:
                    return _NOT_FOUND
                if await self._provisioned(device):
                    return _FAILURE
                token = await self._registry.set_access_token(
                    device.id, request.token, also=self._mark_provisioned(dialect, created=False)
                )
        except Unavailable as e:
            # Not the device's mistake: it is to try again (5.03 + Max-Age).
            raise Unavailable(e.message, self._retry_after()) from None
        except ServiceError as e:
            log.debug(
                "provisioning {name!r} failed: {error}", name=name, error=e.message
            )
            return _FAILURE
        log.info(
            "device {device_id} ({name!r}) provisioned with profile {profile}",
            device_id=device.id,
            name=name,
            profile=profile.name,
        )
        return ProvisionResult(
            ProvisionStatus.SUCCESS, "ACCESS_TOKEN", token, device
        )
