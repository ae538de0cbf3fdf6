# -*- test-case-name: tests.api.test_devices -*-
"""
Routes for devices, their credentials and their pending claim.

A device is created with at most one credential; without one it gets a
generated access token.  An access token (given or generated) is returned in
clear in that response only: the store keeps its digest.

A device may carry its own power-saving settings (C{power_mode} and the
timers in ms; C{null} is unset: its profile's apply).

Times are integer milliseconds since the epoch, as telemetry's C{ts}: a
device's C{created} is converted here, at the boundary, from the clock's
float seconds the service layer and store keep (so no stored row changes).
A claim is shown without its secret, only whether it has one.
"""

from __future__ import annotations

import binascii
from typing import Any, Optional

import attrs

from gateway.api.jsonio import (
    ApiError,
    expect_object,
    optional_bool,
    optional_int,
    optional_str,
    require_str,
)
from gateway.api.router import Call, Param, Reply, Route
from gateway.api.schemas import ref
from gateway.domain.errors import NotFound
from gateway.domain.model import (
    DEFAULT_APPLICATION,
    Claim,
    CredentialInfo,
    CredentialKind,
    Device,
    PowerMode,
)
from gateway.service.build import Services
from gateway.service.interfaces import IDeviceRegistry

__all__ = [
    "CredentialSpec",
    "device_json",
    "credential_json",
    "claim_json",
    "device_routes",
    "power_settings",
]

BASE = "/api/v1/devices"

_LOOKUP_NAMES = {
    CredentialKind.ACCESS_TOKEN: "sha256",
    CredentialKind.PSK: "identity",
    CredentialKind.X509: "sha256",
    CredentialKind.BASIC: "username",
}


#: A device's own power-saving settings, as the API names them.
POWER_FIELDS = ("power_mode", "psm_activity_timer", "edrx_cycle", "paging_transmission_window")


def device_json(device: Device) -> dict[str, Any]:
    return {
        "id": device.id,
        "name": device.name,
        "application": device.application,
        "profile": device.profile,
        "enabled": device.enabled,
        "created": int(device.created * 1000),
        "power_mode": None if device.power_mode is None else device.power_mode.value,
        "psm_activity_timer": device.psm_activity_timer,
        "edrx_cycle": device.edrx_cycle,
        "paging_transmission_window": device.paging_transmission_window,
        "gateways": list(device.gateways),
    }


def power_settings(obj: dict[str, Any]) -> dict[str, Any]:
    """The power-saving settings an object gives (C{null}: unset)."""
    power: dict[str, Any] = {}
    for name in POWER_FIELDS:
        if name not in obj:
            continue
        if name == "power_mode":
            value = obj[name]
            try:
                power[name] = None if value is None else PowerMode(value)
            except ValueError:
                choices = ", ".join(m.value for m in PowerMode)
                raise ApiError(400, f"'power_mode' must be one of {choices} or null") from None
        else:
            power[name] = optional_int(obj, name)
    return power


def _gateway_names(obj: dict[str, Any]) -> Optional[list[str]]:
    """The C{gateways} an object gives: the devices that may publish for this one."""
    value = obj.get("gateways")
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(g, str) and g for g in value):
        raise ApiError(400, "'gateways' must be a list of device names")
    return value


def claim_json(claim: Claim) -> dict[str, Any]:
    """A pending claim without its secret."""
    return {
        "created": claim.created,
        "expires_at": claim.expires_at,
        "secret_required": bool(claim.secret_key),
    }


def credential_json(info: CredentialInfo) -> dict[str, Any]:
    """A credential without secrets: its kind and lookup key."""
    return {"type": info.kind.value, _LOOKUP_NAMES[info.kind]: info.lookup}


@attrs.frozen
class CredentialSpec:
    """A credential as the API receives it, checked."""

    kind: CredentialKind
    token: Optional[str] = None
    identity: str = ""
    key: bytes = b""
    certificate: str = ""
    username: Optional[str] = None
    password: str = ""

    @classmethod
    def parse(cls, value: Any) -> "CredentialSpec":
        obj = expect_object(
            value,
            ("type", "token", "identity", "key", "certificate", "username", "password"),
            ("type",),
            what="credentials",
        )
        try:
            kind = CredentialKind(obj["type"])
        except (ValueError, TypeError):
            raise ApiError(
                400, "credentials 'type' must be access_token, psk, x509 or basic"
            ) from None
        fields = {
            CredentialKind.ACCESS_TOKEN: {"type", "token"},
            CredentialKind.PSK: {"type", "identity", "key"},
            CredentialKind.X509: {"type", "certificate"},
            CredentialKind.BASIC: {"type", "username", "password"},
        }[kind]
        extra = sorted(set(obj) - fields)
        if extra:
            raise ApiError(400, f"credentials of type {kind.value}: unknown field {extra[0]!r}")
        if kind is CredentialKind.ACCESS_TOKEN:
            return cls(kind, token=optional_str(obj, "token"))
        if kind is CredentialKind.PSK:
            try:
                key = binascii.unhexlify(require_str(obj, "key"))
            except (binascii.Error, ValueError):
                raise ApiError(400, "'key' must be hexadecimal") from None
            return cls(kind, identity=require_str(obj, "identity"), key=key)
        if kind is CredentialKind.X509:
            return cls(kind, certificate=require_str(obj, "certificate"))
        return cls(
            kind,
            username=optional_str(obj, "username"),
            password=require_str(obj, "password"),
        )

    async def apply(self, registry: IDeviceRegistry, device: Device) -> dict[str, Any]:
        """Set this credential on C{device}; the API's description of it."""
        if self.kind is CredentialKind.ACCESS_TOKEN:
            token = await registry.set_access_token(device.id, self.token)
            return {"type": self.kind.value, "token": token}
        if self.kind is CredentialKind.PSK:
            await registry.set_psk(device.id, self.identity, self.key)
            return {"type": self.kind.value, "identity": self.identity}
        if self.kind is CredentialKind.X509:
            digest = await registry.set_certificate(device.id, self.certificate)
            return {"type": self.kind.value, "sha256": digest}
        username = self.username or device.name
        await registry.set_basic(device.id, username, self.password)
        return {"type": self.kind.value, "username": username}


def device_routes(services: Services) -> list[Route]:
    registry = services.registry

    async def shown(device: Device) -> dict[str, Any]:
        body = device_json(device)
        body["credentials"] = [
            credential_json(c) for c in await registry.get_credentials(device.id)
        ]
        return body

    async def create(call: Call) -> Reply:
        obj = expect_object(
            call.body,
            ("name", "application", "profile", "enabled", "credentials", "gateways",
             *POWER_FIELDS),
            ("name",),
        )
        name = require_str(obj, "name")
        application = optional_str(obj, "application") or DEFAULT_APPLICATION
        profile = optional_str(obj, "profile") or "default"
        enabled = optional_bool(obj, "enabled")
        spec = None if obj.get("credentials") is None else CredentialSpec.parse(obj["credentials"])
        token_spec = spec is None or spec.kind is CredentialKind.ACCESS_TOKEN
        created = await registry.create_device(
            name,
            application=application,
            profile=profile,
            enabled=True if enabled is None else enabled,
            access_token=spec.token if spec is not None and token_spec else None,
            generate_token=token_spec,
            power=power_settings(obj),
            gateways=_gateway_names(obj) or (),
        )
        device = created.device
        if spec is not None and not token_spec:
            try:
                await spec.apply(registry, device)
            except BaseException:
                await registry.delete_device(device.id)
                raise
        body = await shown(device)
        if created.access_token is not None:
            body["access_token"] = created.access_token
        return Reply(201, body, {"Location": f"{BASE}/{device.id}"})

    async def list_(call: Call) -> Reply:
        application = call.query.get("application") or None
        name = call.query.get("name")
        if name is not None:
            try:
                found = [
                    await registry.find_device(name, application or DEFAULT_APPLICATION)
                ]
            except NotFound:
                found = []
        else:
            found = await registry.list_devices(application)
        return Reply(200, {"devices": [device_json(d) for d in found]})

    async def show(call: Call) -> Reply:
        return Reply(200, await shown(await registry.get_device(call.params["id"])))

    async def patch(call: Call) -> Reply:
        obj = expect_object(call.body, ("name", "profile", "enabled", "gateways", *POWER_FIELDS))
        before = await registry.get_device(call.params["id"])
        device = await registry.update_device(
            call.params["id"],
            name=optional_str(obj, "name"),
            profile=optional_str(obj, "profile"),
            enabled=optional_bool(obj, "enabled"),
            power=power_settings(obj),
            gateways=_gateway_names(obj),
        )
        if device.profile != before.profile:
            # Its OTA packages may come from the new profile.
            await services.ota.profile_changed(device, before.profile)
        return Reply(200, await shown(device))

    async def delete(call: Call) -> Reply:
        await registry.delete_device(call.params["id"])
        return Reply(204)

    async def put_credentials(call: Call) -> Reply:
        device = await registry.get_device(call.params["id"])
        spec = CredentialSpec.parse(call.body)
        return Reply(200, await spec.apply(registry, device))

    async def claim(call: Call) -> Reply:
        device = await registry.get_device(call.params["id"])
        pending = await services.claiming.get_claim(device.id)
        if pending is None:
            raise NotFound(f"device {device.id!r} has no pending claim")
        return Reply(200, claim_json(pending))

    one = BASE + "/{id}"
    return [
        Route(
            "POST", BASE, create, "Create a device (and its credential)", "devices",
            status=201, request=ref("DeviceCreate"), response=ref("Device"),
        ),
        Route(
            "GET", BASE, list_, "List devices, or find one by name", "devices",
            query=(
                Param("name", "Only the device with this name (in ?application=)."),
                Param("application", "Only devices of this application."),
            ),
            response=ref("DeviceList"),
        ),
        Route("GET", one, show, "Show a device and its credentials", "devices",
              response=ref("Device")),
        Route(
            "PATCH", one, patch,
            "Rename, re-profile, enable or disable a device, or set its power saving",
            "devices", request=ref("DevicePatch"), response=ref("Device"),
        ),
        Route("DELETE", one, delete, "Delete a device and all it owns", "devices",
              status=204),
        Route(
            "PUT", one + "/credentials", put_credentials,
            "Set a credential (replacing one of the same type)", "devices",
            request=ref("Credentials"), response=ref("CredentialsSet"),
        ),
        Route(
            "GET", one + "/claim", claim,
            "The claim the device asked for, until it expires (404: none)", "devices",
            response=ref("Claim"),
        ),
    ]
