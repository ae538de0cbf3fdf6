"""
OTA packages and their assignments (ThingsBoard's firmware and software
updates, reference section 6).

A package is named by its kind, title and version; its content lives in the
data directory under the SHA-256 hex of its bytes (C{content_sha256}), the
metadata in the store.  An assignment gives one package of a kind to a
device or to every device of a profile; a device's own assignment wins over
its profile's.
"""

from __future__ import annotations

import enum

import attrs

__all__ = [
    "OtaKind",
    "ChecksumAlgorithm",
    "OtaPackage",
    "AssignmentTarget",
    "OtaAssignment",
]


class OtaKind(enum.Enum):
    FIRMWARE = "firmware"
    SOFTWARE = "software"

    @property
    def prefix(self) -> str:
        """The prefix of its shared attributes and device state: C{fw} or C{sw}."""
        return "fw" if self is OtaKind.FIRMWARE else "sw"


class ChecksumAlgorithm(enum.Enum):
    """The algorithms ThingsBoard names in C{fw_checksum_algorithm}."""

    SHA256 = "SHA256"
    SHA384 = "SHA384"
    SHA512 = "SHA512"
    MD5 = "MD5"
    CRC32 = "CRC32"


@attrs.frozen
class OtaPackage:
    """
    @ivar checksum: lower-case hex, of C{checksum_algorithm}.
    @ivar content_sha256: names the content file (packages may share one).
    @ivar created: ms since the epoch.
    """

    kind: OtaKind
    title: str
    version: str
    checksum: str
    checksum_algorithm: ChecksumAlgorithm
    size: int
    content_type: str
    content_sha256: str
    created: int

    @property
    def tag(self) -> str:
        """ThingsBoard's C{fw_tag}: title and version."""
        return f"{self.title} {self.version}"


class AssignmentTarget(enum.Enum):
    DEVICE = "device"
    PROFILE = "profile"


@attrs.frozen
class OtaAssignment:
    """Package C{kind}/C{title}/C{version} given to a device (by id) or a profile (by name)."""

    kind: OtaKind
    target_type: AssignmentTarget
    target: str
    title: str
    version: str
