# -*- test-case-name: tests.service.test_registry -*-
"""
The device registry: devices, credentials and profiles, written to the
store and mirrored into the L{CredentialCache} once the write is durable.

A C{default} profile always exists (L{DeviceRegistry.ensure_default_profile}
creates it at start; it cannot be deleted).
"""

from __future__ import annotations

import secrets
import uuid
from typing import Any, Callable, Mapping, Optional, Sequence

import attrs
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from zope.interface import implementer

from gateway.domain.errors import Conflict, InvalidArgument, NotFound
from gateway.domain.model import (
    DEFAULT_APPLICATION,
    DEFAULT_PROFILE,
    Credential,
    CredentialInfo,
    CredentialKind,
    Device,
    PayloadFormat,
    PowerMode,
    Profile,
    ProvisionStrategy,
    token_digest,
)
from gateway.service.credentials import CredentialCache, certificate_sha256
from gateway.service.interfaces import CreatedDevice, IDeviceRegistry
from gateway.service.schemas import SCHEMA_FIELDS, compile_schemas
from gateway.store.interfaces import IStore
from gateway.store.unit import CreateDevice, PutCredential, UnitOfWork

__all__ = ["Also", "DeviceRegistry", "new_token", "new_device_id"]

log = Logger()

#: More writes that belong with a device's: a unit of work for the device.
Also = Callable[[Device], UnitOfWork]


def new_token() -> str:
    """A random URL-safe access token (20 bytes of entropy)."""
    return secrets.token_urlsafe(20)


def new_device_id() -> str:
    return uuid.uuid4().hex


def _require_text(what: str, value: str) -> None:
    if not isinstance(value, str) or not value or value != value.strip():
        raise InvalidArgument(f"{what} must be a non-empty string without surrounding blanks")


#: The longest Uri-Path option RFC 7252 allows, in bytes.
_MAX_SEGMENT = 255


def _check_token(token: str) -> None:
    """
    Refuse an access token a device could never present: it travels as one
    Uri-Path segment, so it holds no C{/}, no control character, is not
    C{.} or C{..} (removed from URIs) and fits in one option.
    """
    _require_text("access token", token)
    if "/" in token or token in (".", ".."):
        raise InvalidArgument("an access token must not contain '/' or be '.' or '..'")
    if any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 for c in token):
        raise InvalidArgument("an access token must not contain control characters")
    try:
        size = len(token.encode("utf-8"))
    except UnicodeEncodeError:
        raise InvalidArgument("an access token must be valid Unicode") from None
    if size > _MAX_SEGMENT:
        raise InvalidArgument(f"an access token takes at most {_MAX_SEGMENT} bytes of UTF-8")


#: A device's own power-saving settings: C{power_mode} and the timers.
POWER_FIELDS = ("power_mode", "psm_activity_timer", "edrx_cycle", "paging_transmission_window")


def _check_timer(field: str, value: object) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
        raise InvalidArgument(f"{field} must be a non-negative number of ms")


def _gateways(names: Sequence[str]) -> tuple[str, ...]:
    """The gateway names a device lists, checked: non-empty strings, each once."""
    if isinstance(names, str) or not all(isinstance(g, str) and g for g in names):
        raise InvalidArgument("gateways must be a list of device names")
    return tuple(dict.fromkeys(names))


def _power(power: Optional[Mapping[str, Any]]) -> dict[str, Any]:
    """A device's power-saving settings, checked (C{None} values unset them)."""
    changes = dict(power or {})
    unknown = sorted(set(changes) - set(POWER_FIELDS))
    if unknown:
        raise InvalidArgument(f"unknown power setting {unknown[0]!r}")
    mode = changes.get("power_mode")
    if mode is not None and not isinstance(mode, PowerMode):
        raise InvalidArgument("power_mode must be a PowerMode")
    for field in POWER_FIELDS[1:]:
        _check_timer(field, changes.get(field))
    return changes


def _check_profile(profile: Profile) -> None:
    _require_text("profile name", profile.name)
    for field in POWER_FIELDS[1:]:
        _check_timer(field, getattr(profile, field))
    if profile.provisioning is not ProvisionStrategy.DISABLED and not (
        profile.provision_key and profile.provision_secret
    ):
        raise InvalidArgument(
            "provisioning needs both provision_key and provision_secret"
        )
    if profile.payload_format is PayloadFormat.PROTOBUF or any(
        getattr(profile, field) is not None for field in SCHEMA_FIELDS
    ):
        compile_schemas(profile)


@implementer(IDeviceRegistry)
@attrs.define
class DeviceRegistry:
    _store: IStore
    _cache: CredentialCache
    _clock: IReactorTime
    _new_id: Callable[[], str] = new_device_id
    _new_token: Callable[[], str] = new_token

    # -- helpers -----------------------------------------------------------

    def _device(self, device_id: str) -> Device:
        device = self._cache.device(device_id)
        if device is None:
            raise NotFound(f"no device {device_id!r}")
        return device

    def _check_free(self, credential: Credential) -> None:
        # Fail fast from the cache; the store's check is the one that holds.
        holder = self._cache.credential(credential.kind, credential.lookup)
        if holder is not None and holder.device_id != credential.device_id:
            raise Conflict(
                f"this {credential.kind.value} credential is used by another device"
            )

    def _remember(self, credential: Credential) -> None:
        self._cache.put_credential(credential)
        log.info(
            "credential {kind} set for device {device_id}",
            kind=credential.kind.value,
            device_id=credential.device_id,
        )

    async def _put_credential(
        self, credential: Credential, also: Optional[UnitOfWork] = None
    ) -> None:
        self._check_free(credential)
        unit = UnitOfWork.of(PutCredential(credential))
        await self._store.commit(unit if also is None else unit + also)
        self._remember(credential)

    def ensure_default_profile(self) -> "Deferred[Profile]":
        """Create the C{default} profile unless it exists."""

        async def run() -> Profile:
            existing = await self._store.get_profile(DEFAULT_PROFILE)
            if existing is None:
                existing = Profile(DEFAULT_PROFILE)
                await self._store.put_profile(existing)
            self._cache.put_profile(existing)
            return existing

        return Deferred.fromCoroutine(run())

    # -- devices -----------------------------------------------------------

    def create_device(
        self,
        name: str,
        application: str = DEFAULT_APPLICATION,
        profile: str = DEFAULT_PROFILE,
        enabled: bool = True,
        access_token: Optional[str] = None,
        generate_token: bool = True,
        also: Optional[Also] = None,
        power: Optional[Mapping[str, Any]] = None,
        gateways: Sequence[str] = (),
    ) -> "Deferred[CreatedDevice]":
        """
        See L{IDeviceRegistry.create_device}.  The device and its token are
        one unit of work, with the writes C{also} returns for the new device
        (e.g. provisioning's state): all of them are stored, or none.
        """

        async def run() -> CreatedDevice:
            _require_text("device name", name)
            _require_text("application", application)
            settings = _power(power)
            settings["gateways"] = _gateways(gateways)
            if self._cache.profile(profile) is None:
                raise InvalidArgument(f"no profile {profile!r}")
            token = access_token
            if token is not None:
                _check_token(token)
            elif generate_token:
                token = self._new_token()
            # Every clash at once, so the operator fixes them in one go; the
            # store's own checks are the ones that hold under races.
            clashes = []
            if await self._store.find_device(application, name) is not None:
                clashes.append(f"device name {name!r} is taken in {application!r}")
            if token is not None and self._cache.credential(
                CredentialKind.ACCESS_TOKEN, token_digest(token)
            ):
                clashes.append("this access token is used by another device")
            if clashes:
                raise Conflict("; ".join(clashes))
            device = Device(
                id=self._new_id(),
                name=name,
                application=application,
                profile=profile,
                enabled=bool(enabled),
                created=self._clock.seconds(),
                **settings,
            )
            unit = UnitOfWork.of(CreateDevice(device))
            credential = None
            if token is not None:
                credential = Credential(
                    device.id, CredentialKind.ACCESS_TOKEN, token_digest(token)
                )
                unit = unit.then(PutCredential(credential))
            if also is not None:
                unit += also(device)
            await self._store.commit(unit)
            self._cache.put_device(device)
            log.info(
                "device {device_id} ({name!r} in {application!r}) created",
                device_id=device.id,
                name=name,
                application=application,
            )
            if credential is not None:
                self._remember(credential)
            return CreatedDevice(device, token)

        return Deferred.fromCoroutine(run())

    def get_device(self, device_id: str) -> "Deferred[Device]":
        async def run() -> Device:
            return self._device(device_id)

        return Deferred.fromCoroutine(run())

    def find_device(
        self, name: str, application: str = DEFAULT_APPLICATION
    ) -> "Deferred[Device]":
        async def run() -> Device:
            device = await self._store.find_device(application, name)
            if device is None:
                raise NotFound(f"no device {name!r} in {application!r}")
            return device

        return Deferred.fromCoroutine(run())

    def list_devices(
        self, application: Optional[str] = None
    ) -> "Deferred[list[Device]]":
        return self._store.list_devices(application)

    def update_device(
        self,
        device_id: str,
        name: Optional[str] = None,
        profile: Optional[str] = None,
        enabled: Optional[bool] = None,
        power: Optional[Mapping[str, Any]] = None,
        gateways: Optional[Sequence[str]] = None,
    ) -> "Deferred[Device]":
        async def run() -> Device:
            device = self._device(device_id)
            changes: dict[str, Any] = _power(power)
            if gateways is not None:
                changes["gateways"] = _gateways(gateways)
            if name is not None:
                _require_text("device name", name)
                changes["name"] = name
            if profile is not None:
                if self._cache.profile(profile) is None:
                    raise InvalidArgument(f"no profile {profile!r}")
                changes["profile"] = profile
            if enabled is not None:
                changes["enabled"] = bool(enabled)
            updated = attrs.evolve(device, **changes)
            await self._store.update_device(updated)
            self._cache.put_device(updated)
            return updated

        return Deferred.fromCoroutine(run())

    def delete_device(self, device_id: str) -> "Deferred[None]":
        async def run() -> None:
            await self._store.delete_device(device_id)
            self._cache.remove_device(device_id)
            log.info("device {device_id} deleted", device_id=device_id)

        return Deferred.fromCoroutine(run())

    # -- credentials -------------------------------------------------------

    def set_access_token(
        self,
        device_id: str,
        token: Optional[str] = None,
        also: Optional[Also] = None,
    ) -> "Deferred[str]":
        """
        See L{IDeviceRegistry.set_access_token}.  The new token replaces the
        old one in one write, in one unit of work with the writes C{also}
        returns for the device.
        """

        async def run() -> str:
            device = self._device(device_id)
            value = self._new_token() if token is None else token
            _check_token(value)
            await self._put_credential(
                Credential(device_id, CredentialKind.ACCESS_TOKEN, token_digest(value)),
                None if also is None else also(device),
            )
            return value

        return Deferred.fromCoroutine(run())

    def set_psk(
        self, device_id: str, identity: str, key: bytes
    ) -> "Deferred[None]":
        async def run() -> None:
            self._device(device_id)
            _require_text("PSK identity", identity)
            if not isinstance(key, bytes) or not key:
                raise InvalidArgument("PSK key must be non-empty bytes")
            await self._put_credential(
                Credential(device_id, CredentialKind.PSK, identity, key)
            )

        return Deferred.fromCoroutine(run())

    def set_certificate(self, device_id: str, pem: str) -> "Deferred[str]":
        async def run() -> str:
            self._device(device_id)
            try:
                cert = x509.load_pem_x509_certificate(pem.encode("ascii"))
            except (ValueError, TypeError, UnicodeError) as e:
                raise InvalidArgument(f"not a PEM certificate: {e}") from None
            der = cert.public_bytes(serialization.Encoding.DER)
            digest = certificate_sha256(der)
            await self._put_credential(
                Credential(
                    device_id, CredentialKind.X509, digest, pem.encode("ascii")
                )
            )
            return digest

        return Deferred.fromCoroutine(run())

    def set_basic(
        self, device_id: str, username: str, password: str
    ) -> "Deferred[None]":
        async def run() -> None:
            self._device(device_id)
            _require_text("username", username)
            if not isinstance(password, str) or not password:
                raise InvalidArgument("password must be a non-empty string")
            encoded = await self._cache.hash_password(password)
            await self._put_credential(
                Credential(
                    device_id,
                    CredentialKind.BASIC,
                    username,
                    encoded.encode("ascii"),
                )
            )

        return Deferred.fromCoroutine(run())

    def get_credentials(self, device_id: str) -> "Deferred[list[CredentialInfo]]":
        async def run() -> list[CredentialInfo]:
            self._device(device_id)
            return [c.info() for c in await self._store.get_credentials(device_id)]

        return Deferred.fromCoroutine(run())

    def delete_credential(
        self, device_id: str, kind: CredentialKind
    ) -> "Deferred[None]":
        async def run() -> None:
            self._device(device_id)
            if not await self._store.delete_credential(device_id, kind):
                raise NotFound(f"device {device_id!r} has no {kind.value} credential")
            self._cache.remove_credential(device_id, kind)

        return Deferred.fromCoroutine(run())

    # -- profiles ----------------------------------------------------------

    def create_profile(self, profile: Profile) -> "Deferred[Profile]":
        async def run() -> Profile:
            _check_profile(profile)
            if await self._store.get_profile(profile.name) is not None:
                raise Conflict(f"profile {profile.name!r} exists")
            await self._store.put_profile(profile)
            self._cache.put_profile(profile)
            return profile

        return Deferred.fromCoroutine(run())

    def update_profile(self, profile: Profile) -> "Deferred[Profile]":
        async def run() -> Profile:
            _check_profile(profile)
            if await self._store.get_profile(profile.name) is None:
                raise NotFound(f"no profile {profile.name!r}")
            await self._store.put_profile(profile)
            self._cache.put_profile(profile)
            return profile

        return Deferred.fromCoroutine(run())

    def get_profile(self, name: str) -> "Deferred[Profile]":
        async def run() -> Profile:
            profile = await self._store.get_profile(name)
            if profile is None:
                raise NotFound(f"no profile {name!r}")
            return profile

        return Deferred.fromCoroutine(run())

    def list_profiles(self) -> "Deferred[list[Profile]]":
        return self._store.list_profiles()

    def delete_profile(self, name: str) -> "Deferred[None]":
        async def run() -> None:
            if name == DEFAULT_PROFILE:
                raise Conflict("the default profile cannot be deleted")
            await self._store.delete_profile(name)
            self._cache.remove_profile(name)

        return Deferred.fromCoroutine(run())
