"""The OTA service: uploads, assignments pushing shared attributes, downloads, status."""

from __future__ import annotations

import hashlib
import zlib

import pytest

from gateway.domain.errors import Conflict, InvalidArgument, NotFound
from gateway.domain.model import AttributeScope, Device, Profile
from gateway.domain.ota import AssignmentTarget, ChecksumAlgorithm, OtaKind
from gateway.service.build import Services
from gateway.service.ota import checksum

from .conftest import failure, result

FW, SW = OtaKind.FIRMWARE, OtaKind.SOFTWARE
DEVICE, PROFILE = AssignmentTarget.DEVICE, AssignmentTarget.PROFILE
BODY = bytes(range(256)) * 8


def _device(services: Services, name: str = "d", profile: str = "default") -> Device:
    return result(services.registry.create_device(name, profile=profile)).device


def _shared(services: Services, device: Device) -> dict[str, object]:
    found = result(services.attributes.get_attributes(device.id, AttributeScope.SHARED))
    return {a.key: a.value for a in found}


def test_checksums_of_every_algorithm() -> None:
    """Each algorithm gives the lower-case hex digest (CRC32 as 8 hex digits)."""
    assert checksum(ChecksumAlgorithm.SHA256, BODY) == hashlib.sha256(BODY).hexdigest()
    assert checksum(ChecksumAlgorithm.SHA384, BODY) == hashlib.sha384(BODY).hexdigest()
    assert checksum(ChecksumAlgorithm.SHA512, BODY) == hashlib.sha512(BODY).hexdigest()
    assert checksum(ChecksumAlgorithm.MD5, BODY) == hashlib.md5(BODY).hexdigest()
    assert checksum(ChecksumAlgorithm.CRC32, BODY) == f"{zlib.crc32(BODY):08x}"


def test_upload_computes_or_verifies_the_checksum(services: Services) -> None:
    """An upload computes the checksum, accepts a matching given one and refuses a wrong one."""
    ota = services.ota
    package = result(ota.upload(FW, "fw", "1", BODY))
    assert package.checksum == hashlib.sha256(BODY).hexdigest()
    assert package.size == len(BODY) and package.content_type == "application/octet-stream"
    md5 = hashlib.md5(BODY).hexdigest()
    given = result(ota.upload(SW, "sw", "1", BODY, ChecksumAlgorithm.MD5, md5.upper()))
    assert given.checksum == md5 and given.checksum_algorithm is ChecksumAlgorithm.MD5
    wrong = failure(ota.upload(FW, "fw", "2", BODY, expected="00"), InvalidArgument)
    assert "checksum" in wrong.value.message
    failure(ota.upload(FW, "fw", "1", b"other"), Conflict)
    failure(ota.upload(FW, "", "1", BODY), InvalidArgument)
    failure(ota.upload(FW, "fw", "3", b""), InvalidArgument)
    assert [p.version for p in result(ota.list_packages(FW))] == ["1"]


def test_assignment_pushes_shared_attributes_to_observers(services: Services) -> None:
    """Assigning to a device writes the fw_* attributes and its observers hear them at once."""
    device = _device(services)
    heard: list[dict[str, object]] = []
    services.devices.subscribe_attributes(device.id, heard.append)
    package = result(services.ota.upload(FW, "fw", "1", BODY))
    result(services.ota.assign(FW, DEVICE, device.id, "fw", "1"))
    expected = {
        "fw_title": "fw", "fw_version": "1", "fw_tag": "fw 1", "fw_size": len(BODY),
        "fw_checksum": package.checksum, "fw_checksum_algorithm": "SHA256",
    }
    assert _shared(services, device) == expected
    assert heard == [expected]


def test_device_assignment_wins_over_profile(services: Services) -> None:
    """A device's own package wins over its profile's, and unassigning falls back to it."""
    result(services.registry.create_profile(Profile("p")))
    mine, other = _device(services, "mine", "p"), _device(services, "other", "p")
    for version in ("1", "2"):
        result(services.ota.upload(FW, "fw", version, BODY + version.encode()))
    result(services.ota.assign(FW, DEVICE, mine.id, "fw", "2"))
    result(services.ota.assign(FW, PROFILE, "p", "fw", "1"))
    assert _shared(services, mine)["fw_version"] == "2"
    assert _shared(services, other)["fw_version"] == "1"
    download = result(services.devices.ota_download(mine.id, FW))
    assert download is not None and download.content == BODY + b"2"
    result(services.ota.unassign(FW, DEVICE, mine.id))
    assert _shared(services, mine)["fw_version"] == "1"
    result(services.ota.unassign(FW, PROFILE, "p"))
    assert _shared(services, mine) == {} and _shared(services, other) == {}
    assert result(services.devices.ota_download(mine.id, FW)) is None
    failure(services.ota.unassign(FW, PROFILE, "p"), NotFound)


def test_downloads_share_one_body(services: Services) -> None:
    """Every download of a package gets the very same body object, not a copy."""
    a, b = _device(services, "a"), _device(services, "b")
    result(services.ota.upload(FW, "fw", "1", BODY))
    result(services.ota.assign(FW, PROFILE, "default", "fw", "1"))
    first = result(services.devices.ota_download(a.id, FW))
    second = result(services.devices.ota_download(b.id, FW))
    assert first is not None and second is not None
    assert first.content is second.content
    assert result(services.devices.ota_download(a.id, SW)) is None


def test_assigned_package_is_not_deleted(services: Services) -> None:
    """Deleting an assigned package is a Conflict; once unassigned it and its body go."""
    device = _device(services)
    result(services.ota.upload(FW, "fw", "1", BODY))
    result(services.ota.assign(FW, DEVICE, device.id, "fw", "1"))
    failure(services.ota.delete_package(FW, "fw", "1"), Conflict)
    result(services.ota.unassign(FW, DEVICE, device.id))
    result(services.ota.delete_package(FW, "fw", "1"))
    failure(services.ota.get_package(FW, "fw", "1"), NotFound)
    failure(services.ota.delete_package(FW, "fw", "1"), NotFound)


def test_status_shows_package_and_last_state(services: Services) -> None:
    """The status names the assigned package, where it comes from and the last fw_state."""
    device = _device(services)
    result(services.ota.upload(FW, "fw", "1", BODY))
    result(services.ota.assign(FW, PROFILE, "default", "fw", "1"))
    result(services.devices.record_telemetry(device.id, [(1000, {"fw_state": "DOWNLOADING"})]))
    result(services.devices.set_client_attributes(device.id, {"sw_state": "FAILED"}))
    fw, sw = result(services.ota.status(device.id))
    assert (fw.kind, fw.assigned_by, fw.state, fw.state_ts) == (FW, PROFILE, "DOWNLOADING", 1000)
    assert fw.package is not None and fw.package.version == "1"
    assert (sw.package, sw.state) == (None, "FAILED")
    failure(services.ota.status("ghost"), NotFound)


@pytest.mark.parametrize("target", ["ghost-device", "ghost-profile"])
def test_assigning_to_nothing_is_not_found(services: Services, target: str) -> None:
    """Assigning to a device or profile that does not exist is NotFound."""
    result(services.ota.upload(FW, "fw", "1", BODY))
    kind = DEVICE if target.endswith("device") else PROFILE
    failure(services.ota.assign(FW, kind, target, "fw", "1"), NotFound)


def test_moving_to_another_profile_tells_the_device(services: Services) -> None:
    """A device moved to a profile with another package is told of it; with none, it is untold."""
    for name in ("a", "b", "c"):
        result(services.registry.create_profile(Profile(name)))
    device = _device(services, "mover", "a")
    result(services.ota.upload(FW, "fw", "1", BODY))
    result(services.ota.upload(FW, "fw", "2", BODY + b"2"))
    result(services.ota.assign(FW, PROFILE, "a", "fw", "1"))
    result(services.ota.assign(FW, PROFILE, "b", "fw", "2"))
    moved = result(services.registry.update_device(device.id, profile="b"))
    result(services.ota.profile_changed(moved, "a"))
    assert _shared(services, device)["fw_version"] == "2"
    moved = result(services.registry.update_device(device.id, profile="c"))
    result(services.ota.profile_changed(moved, "b"))
    assert _shared(services, device) == {}
