# -*- test-case-name: tests.api.test_ota -*-
"""
OTA packages and their assignments (firmware and software).

 - C{POST /api/v1/ota/packages?type=&title=&version=[&algorithm=&checksum=]}:
   the raw body is the package (its Content-Type is kept); the checksum
   (SHA256 by default; SHA384, SHA512, MD5, CRC32) is computed, or verified
   when given (400 if it does not match).  201 with the package.
 - C{GET /api/v1/ota/packages[?type=]}, C{GET|DELETE
   /api/v1/ota/packages/{type}/{title}/{version}}: an assigned package is
   not deleted (409: unassign it first).
 - C{PUT|DELETE /api/v1/devices/{id}/ota/{type}} and
   C{/api/v1/profiles/{name}/ota/{type}}, C{{"title","version"}}: assign or
   unassign; the devices concerned are told through their shared
   attributes.  C{GET /api/v1/ota/assignments[?type=]} lists them.
 - C{GET /api/v1/devices/{id}/ota}: the device's packages and the last
   C{fw_state}/C{sw_state} it reported.

An upload's body is at most L{MAX_PACKAGE} bytes: half of the engine's
default block-wise budget (C{max_transfer_bytes}, 16 MiB), in which a
package being downloaded counts once, so downloads of other bodies keep
room beside it.
"""

from __future__ import annotations

from typing import Any, Optional

from gateway.api.jsonio import ApiError, expect_object, require_str
from gateway.api.router import Call, Param, RawBody, Reply, Route
from gateway.api.schemas import ref
from gateway.domain.ota import (
    AssignmentTarget,
    ChecksumAlgorithm,
    OtaAssignment,
    OtaKind,
    OtaPackage,
)
from gateway.service.build import Services
from gateway.service.ota import OtaStatus

__all__ = ["ota_routes", "package_json"]

#: The largest package an upload takes, in bytes.
MAX_PACKAGE = 8 * 1024 * 1024

PACKAGES = "/api/v1/ota/packages"
PACKAGE = PACKAGES + "/{type}/{title}/{version}"


def package_json(p: OtaPackage) -> dict[str, Any]:
    return {
        "type": p.kind.value,
        "title": p.title,
        "version": p.version,
        "checksum": p.checksum,
        "checksum_algorithm": p.checksum_algorithm.value,
        "size": p.size,
        "content_type": p.content_type,
        "created": p.created,
    }


def _assignment_json(a: OtaAssignment) -> dict[str, Any]:
    return {
        "type": a.kind.value,
        "target_type": a.target_type.value,
        "target": a.target,
        "title": a.title,
        "version": a.version,
    }


def _status_json(s: OtaStatus) -> dict[str, Any]:
    return {
        "package": None if s.package is None else package_json(s.package),
        "assigned_by": None if s.assigned_by is None else s.assigned_by.value,
        "state": s.state,
        "state_ts": s.state_ts,
    }


def _kind(text: Optional[str]) -> OtaKind:
    try:
        return OtaKind(text or "firmware")
    except ValueError:
        raise ApiError(400, "type must be 'firmware' or 'software'") from None


def _path_kind(text: str) -> OtaKind:
    try:
        return OtaKind(text)
    except ValueError:
        raise ApiError(404, f"no OTA type {text!r}") from None


def _optional_kind(text: Optional[str]) -> Optional[OtaKind]:
    return None if text is None else _kind(text)


def _algorithm(text: Optional[str]) -> ChecksumAlgorithm:
    try:
        return ChecksumAlgorithm((text or "SHA256").upper().replace("-", ""))
    except ValueError:
        names = ", ".join(a.value for a in ChecksumAlgorithm)
        raise ApiError(400, f"algorithm must be one of {names}") from None


def ota_routes(services: Services) -> list[Route]:
    ota = services.ota

    async def upload(call: Call) -> Reply:
        body = call.body if isinstance(call.body, RawBody) else RawBody(b"")
        package = await ota.upload(
            _kind(call.query.get("type")),
            call.query["title"],
            call.query["version"],
            body.data,
            _algorithm(call.query.get("algorithm")),
            call.query.get("checksum"),
            body.content_type,
        )
        return Reply(201, package_json(package))

    async def list_packages(call: Call) -> Reply:
        found = await ota.list_packages(_optional_kind(call.query.get("type")))
        return Reply(200, {"packages": [package_json(p) for p in found]})

    def _key(call: Call) -> tuple[OtaKind, str, str]:
        return _path_kind(call.params["type"]), call.params["title"], call.params["version"]

    async def get_package(call: Call) -> Reply:
        return Reply(200, package_json(await ota.get_package(*_key(call))))

    async def delete_package(call: Call) -> Reply:
        await ota.delete_package(*_key(call))
        return Reply(204)

    async def assign(call: Call, target_type: AssignmentTarget, target: str) -> Reply:
        body = expect_object(call.body, ("title", "version"), ("title", "version"))
        assignment = await ota.assign(
            _path_kind(call.params["type"]), target_type, target,
            require_str(body, "title"), require_str(body, "version"),
        )
        return Reply(200, _assignment_json(assignment))

    async def unassign(call: Call, target_type: AssignmentTarget, target: str) -> Reply:
        await ota.unassign(_path_kind(call.params["type"]), target_type, target)
        return Reply(204)

    async def assign_device(call: Call) -> Reply:
        return await assign(call, AssignmentTarget.DEVICE, call.params["id"])

    async def unassign_device(call: Call) -> Reply:
        return await unassign(call, AssignmentTarget.DEVICE, call.params["id"])

    async def assign_profile(call: Call) -> Reply:
        return await assign(call, AssignmentTarget.PROFILE, call.params["name"])

    async def unassign_profile(call: Call) -> Reply:
        return await unassign(call, AssignmentTarget.PROFILE, call.params["name"])

    async def assignments(call: Call) -> Reply:
        found = await ota.list_assignments(_optional_kind(call.query.get("type")))
        return Reply(200, {"assignments": [_assignment_json(a) for a in found]})

    async def status(call: Call) -> Reply:
        device_id = call.params["id"]
        found = await ota.status(device_id)
        return Reply(200, {"device": device_id, **{s.kind.value: _status_json(s) for s in found}})

    type_param = Param("type", "firmware (default) or software.")
    assignment_body = ref("OtaAssign")
    return [
        Route(
            "POST", PACKAGES, upload, "Upload an OTA package (the raw body)", "ota",
            status=201,
            query=(
                type_param,
                Param("title", "The package's title.", required=True),
                Param("version", "The package's version.", required=True),
                Param("algorithm", "SHA256 (default), SHA384, SHA512, MD5 or CRC32."),
                Param("checksum", "The expected checksum (hex); refused if it differs."),
            ),
            request={"type": "string", "format": "binary"}, response=ref("OtaPackage"),
            raw_body=True, max_body=MAX_PACKAGE,
        ),
        Route("GET", PACKAGES, list_packages, "List OTA packages", "ota",
              query=(Param("type", "Only packages of this type."),),
              response=ref("OtaPackageList")),
        Route("GET", PACKAGE, get_package, "Show an OTA package", "ota",
              response=ref("OtaPackage")),
        Route("DELETE", PACKAGE, delete_package,
              "Delete an OTA package (409 while it is assigned)", "ota", status=204),
        Route("GET", "/api/v1/ota/assignments", assignments, "List OTA assignments", "ota",
              query=(Param("type", "Only assignments of this type."),),
              response=ref("OtaAssignmentList")),
        Route("PUT", "/api/v1/devices/{id}/ota/{type}", assign_device,
              "Assign an OTA package to a device (wins over its profile's)", "ota",
              request=assignment_body, response=ref("OtaAssignment")),
        Route("DELETE", "/api/v1/devices/{id}/ota/{type}", unassign_device,
              "Remove a device's OTA assignment", "ota", status=204),
        Route("PUT", "/api/v1/profiles/{name}/ota/{type}", assign_profile,
              "Assign an OTA package to every device of a profile", "ota",
              request=assignment_body, response=ref("OtaAssignment")),
        Route("DELETE", "/api/v1/profiles/{name}/ota/{type}", unassign_profile,
              "Remove a profile's OTA assignment", "ota", status=204),
        Route("GET", "/api/v1/devices/{id}/ota", status,
              "A device's OTA packages and last reported states", "ota",
              response=ref("OtaStatus")),
    ]
