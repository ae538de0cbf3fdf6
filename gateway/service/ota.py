# -*- test-case-name: tests.service.test_ota -*-
"""
OTA packages (firmware and software): upload, assignment, download.

 - L{OtaService.upload} computes the package's checksum (SHA-256 unless
   another algorithm is named), or verifies the one given, stores the body
   once in the blob store (by its SHA-256) and the metadata in the store.
 - L{OtaService.assign} gives a package to a device or to a profile; a
   device's own assignment wins over its profile's.  Every device whose
   package changes hears it as shared attributes (C{fw_title fw_version
   fw_tag fw_size fw_checksum fw_checksum_algorithm}, C{sw_*} for software)
   through the attribute service, so observing devices hear it at once and
   sleeping ones at their next window.  Unassigning falls back to the
   profile's package, or deletes those attributes; so does a device's move
   to another profile (L{OtaService.profile_changed}).  C{fw_url} is not sent:
   ThingsBoard sends it only for packages hosted elsewhere, and every
   package here is served by the gateway.
 - L{OtaService.delete_package} refuses an assigned package (unassign it
   first): a device must never be told of a package it cannot download.
 - L{OtaService.download}: the device's package and its body, read once
   per package and shared by every download (never copied per device).
 - L{OtaService.status}: a device's assigned packages and the last
   C{fw_state}/C{sw_state} it reported (as telemetry or client attribute).
"""

from __future__ import annotations

import hashlib
import zlib
from typing import Optional

import attrs
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from gateway.domain.errors import InvalidArgument, NotFound
from gateway.domain.model import AttributeScope, Device, JSONValue
from gateway.domain.ota import (
    AssignmentTarget,
    ChecksumAlgorithm,
    OtaAssignment,
    OtaKind,
    OtaPackage,
)
from gateway.service.attributes import AttributeService, now_ms
from gateway.service.credentials import CredentialCache
from gateway.service.interfaces import Download
from gateway.store.blobs import IBlobStore
from gateway.store.interfaces import IPackageStore, IStore
from gateway.store.unit import (
    AssignPackage,
    DeletePackage,
    PutPackage,
    UnassignPackage,
    UnitOfWork,
)

__all__ = ["OtaService", "OtaStatus", "checksum", "package_attributes"]

log = Logger()

#: The suffixes of the shared attributes an assignment sets.
_ATTRIBUTES = ("title", "version", "tag", "size", "checksum", "checksum_algorithm")

_DEFAULT_CONTENT_TYPE = "application/octet-stream"


def checksum(algorithm: ChecksumAlgorithm, data: bytes) -> str:
    """The lower-case hex checksum of C{data}."""
    if algorithm is ChecksumAlgorithm.CRC32:
        return f"{zlib.crc32(data):08x}"
    return hashlib.new(algorithm.value.replace("SHA", "sha").lower(), data).hexdigest()


def package_attributes(package: OtaPackage) -> dict[str, JSONValue]:
    """The shared attributes that tell a device of its package."""
    p = package.kind.prefix
    return {
        f"{p}_title": package.title,
        f"{p}_version": package.version,
        f"{p}_tag": package.tag,
        f"{p}_size": package.size,
        f"{p}_checksum": package.checksum,
        f"{p}_checksum_algorithm": package.checksum_algorithm.value,
    }


@attrs.frozen
class OtaStatus:
    """
    What a device has of one kind: its package (C{None}: none), where the
    assignment comes from, and the last state it reported (with its ms).
    """

    kind: OtaKind
    package: Optional[OtaPackage]
    assigned_by: Optional[AssignmentTarget]
    state: Optional[JSONValue]
    state_ts: Optional[int]


@attrs.define
class OtaService:
    _store: IStore
    _packages: IPackageStore
    _blobs: IBlobStore
    _attributes: AttributeService
    _cache: CredentialCache
    _clock: IReactorTime
    #: Package bodies read so far, by SHA-256: one copy per package.
    _bodies: dict[str, bytes] = attrs.field(factory=dict)

    # -- packages ----------------------------------------------------------

    def upload(
        self,
        kind: OtaKind,
        title: str,
        version: str,
        data: bytes,
        algorithm: ChecksumAlgorithm = ChecksumAlgorithm.SHA256,
        expected: Optional[str] = None,
        content_type: Optional[str] = None,
    ) -> "Deferred[OtaPackage]":
        """
        Store a package.  L{InvalidArgument} for an empty title, version or
        body, or a C{expected} checksum the body does not have; L{Conflict}
        if the kind, title and version are taken.
        """

        async def run() -> OtaPackage:
            if not title or not version:
                raise InvalidArgument("a package needs a title and a version")
            if not data:
                raise InvalidArgument("a package needs content")
            computed = checksum(algorithm, data)
            if expected is not None and expected.strip().lower() != computed:
                raise InvalidArgument(
                    f"the {algorithm.value} checksum of the content is {computed}, not {expected}"
                )
            name = self._blobs.put(data)
            package = OtaPackage(
                kind, title, version, computed, algorithm, len(data),
                content_type or _DEFAULT_CONTENT_TYPE, name, now_ms(self._clock),
            )
            try:
                await self._store.commit(UnitOfWork.of(PutPackage(package)))
            except BaseException:
                await self._forget_body(name)
                raise
            log.info(
                "OTA {kind} {title} {version} uploaded ({size} bytes)",
                kind=kind.value, title=title, version=version, size=len(data),
            )
            return package

        return Deferred.fromCoroutine(run())

    def list_packages(self, kind: Optional[OtaKind] = None) -> "Deferred[list[OtaPackage]]":
        return self._packages.list_packages(kind)

    def get_package(self, kind: OtaKind, title: str, version: str) -> "Deferred[OtaPackage]":
        """The package; L{NotFound} if there is none."""

        async def run() -> OtaPackage:
            return await self._require(kind, title, version)

        return Deferred.fromCoroutine(run())

    async def _require(self, kind: OtaKind, title: str, version: str) -> OtaPackage:
        found = await self._packages.get_package(kind, title, version)
        if found is None:
            raise NotFound(f"no {kind.value} {title!r} {version!r}")
        return found

    def delete_package(self, kind: OtaKind, title: str, version: str) -> "Deferred[None]":
        """Delete a package and its body; L{Conflict} while it is assigned."""

        async def run() -> None:
            (gone,) = await self._store.commit(
                UnitOfWork.of(DeletePackage(kind, title, version))
            )
            await self._forget_body(gone.content_sha256)

        return Deferred.fromCoroutine(run())

    async def _forget_body(self, name: str) -> None:
        """Delete a body no package uses any longer."""
        if any(p.content_sha256 == name for p in await self._packages.list_packages()):
            return
        self._bodies.pop(name, None)
        self._blobs.delete(name)

    # -- assignments -------------------------------------------------------

    def assign(
        self,
        kind: OtaKind,
        target_type: AssignmentTarget,
        target: str,
        title: str,
        version: str,
    ) -> "Deferred[OtaAssignment]":
        """
        Give the package to a device (by id) or profile (by name) and tell
        every device whose package changes.  L{NotFound} for a missing
        package, device or profile.
        """

        async def run() -> OtaAssignment:
            assignment = OtaAssignment(kind, target_type, target, title, version)
            affected = await self._devices_of(target_type, target)
            before = {d.id: await self._effective(d, kind) for d in affected}
            await self._store.commit(UnitOfWork.of(AssignPackage(assignment)))
            await self._tell(affected, kind, before)
            return assignment

        return Deferred.fromCoroutine(run())

    def unassign(
        self, kind: OtaKind, target_type: AssignmentTarget, target: str
    ) -> "Deferred[OtaAssignment]":
        """Remove an assignment (L{NotFound} if there is none) and tell the devices."""

        async def run() -> OtaAssignment:
            affected = await self._devices_of(target_type, target)
            before = {d.id: await self._effective(d, kind) for d in affected}
            (gone,) = await self._store.commit(
                UnitOfWork.of(UnassignPackage(kind, target_type, target))
            )
            if gone is None:
                raise NotFound(f"{target_type.value} {target!r} has no {kind.value} assigned")
            await self._tell(affected, kind, before)
            return gone

        return Deferred.fromCoroutine(run())

    def list_assignments(
        self, kind: Optional[OtaKind] = None
    ) -> "Deferred[list[OtaAssignment]]":
        return self._packages.list_assignments(kind)

    def profile_changed(self, device: Device, old_profile: str) -> "Deferred[None]":
        """C{device} moved from C{old_profile}: tell it of its new packages, if they differ."""

        async def run() -> None:
            was = attrs.evolve(device, profile=old_profile)
            for kind in OtaKind:
                await self._tell([device], kind, {device.id: await self._effective(was, kind)})

        return Deferred.fromCoroutine(run())

    async def _devices_of(self, target_type: AssignmentTarget, target: str) -> list[Device]:
        if target_type is AssignmentTarget.DEVICE:
            device = self._cache.device(target)
            return [] if device is None else [device]
        return [d for d in await self._store.list_devices() if d.profile == target]

    async def _effective(
        self, device: Device, kind: OtaKind
    ) -> tuple[Optional[OtaPackage], Optional[AssignmentTarget]]:
        """The device's package of C{kind}: its own assignment's, else its profile's."""
        for target_type, target in (
            (AssignmentTarget.DEVICE, device.id),
            (AssignmentTarget.PROFILE, device.profile),
        ):
            a = await self._packages.get_assignment(kind, target_type, target)
            if a is not None:
                return await self._packages.get_package(kind, a.title, a.version), target_type
        return None, None

    async def _tell(
        self,
        devices: list[Device],
        kind: OtaKind,
        before: dict[str, tuple[Optional[OtaPackage], Optional[AssignmentTarget]]],
    ) -> None:
        for device in devices:
            package, _ = await self._effective(device, kind)
            if package == before[device.id][0]:
                continue
            if package is None:
                keys = [f"{kind.prefix}_{k}" for k in _ATTRIBUTES]
                await self._attributes.delete_attributes(device.id, AttributeScope.SHARED, keys)
            else:
                await self._attributes.set_attributes(
                    device.id, AttributeScope.SHARED, package_attributes(package)
                )

    # -- devices -----------------------------------------------------------

    def download(self, device_id: str, kind: OtaKind) -> "Deferred[Optional[Download]]":
        """The device's package of C{kind} and its body, or C{None} if it has none."""

        async def run() -> Optional[Download]:
            device = self._cache.device(device_id)
            if device is None:
                raise NotFound(f"no device {device_id!r}")
            package, _ = await self._effective(device, kind)
            if package is None:
                return None
            body = self._bodies.get(package.content_sha256)
            if body is None:
                body = self._blobs.get(package.content_sha256)
                self._bodies[package.content_sha256] = body
            return Download(package, body)

        return Deferred.fromCoroutine(run())

    def status(self, device_id: str) -> "Deferred[list[OtaStatus]]":
        """The device's firmware and software status; L{NotFound} for no device."""

        async def run() -> list[OtaStatus]:
            device = self._cache.device(device_id)
            if device is None:
                raise NotFound(f"no device {device_id!r}")
            keys = [f"{kind.prefix}_state" for kind in OtaKind]
            reported = {
                a.key: (a.value, a.last_update_ts)
                for a in await self._store.get_attributes(
                    device_id, AttributeScope.CLIENT, keys
                )
            }
            for point in await self._store.get_latest_telemetry(device_id, keys):
                if point.key not in reported or point.ts >= reported[point.key][1]:
                    reported[point.key] = (point.value, point.ts)
            found = []
            for kind in OtaKind:
                package, by = await self._effective(device, kind)
                state, ts = reported.get(f"{kind.prefix}_state", (None, None))
                found.append(OtaStatus(kind, package, by, state, ts))
            return found

        return Deferred.fromCoroutine(run())
