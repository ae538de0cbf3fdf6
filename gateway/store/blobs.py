# -*- test-case-name: tests.store.test_blobs -*-
"""
Content-addressed files: OTA package bodies, kept in the data directory
(C{<data_dir>/ota/<sha256 hex>}) rather than in a database column, so a
package is read once into memory and shared by every download of it.

A file is written to a temporary name in the same directory, flushed to
disk and renamed, so a crash never leaves a partial body under its name.
L{MemoryBlobs} behaves the same without files (the memory backend, tests).
Calls are synchronous: bodies are bounded by the API's body limit.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path

import attrs
from zope.interface import Interface, implementer

from gateway.domain.errors import NotFound

__all__ = ["IBlobStore", "BlobDirectory", "MemoryBlobs", "sha256_hex"]


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _check_name(sha256: str) -> str:
    # A name is a digest, never a path: nothing outside the directory.
    if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
        raise NotFound(f"no content {sha256!r}")
    return sha256


class IBlobStore(Interface):
    """Bodies stored once each under the SHA-256 hex of their bytes."""

    def put(data: bytes) -> str:
        """Store C{data} (a no-op if stored already); its SHA-256 hex."""

    def get(sha256: str) -> bytes:
        """The body stored under C{sha256}; L{NotFound} if there is none."""

    def delete(sha256: str) -> bool:
        """Forget the body; C{True} if there was one."""


@implementer(IBlobStore)
@attrs.define
class MemoryBlobs:
    _bodies: dict[str, bytes] = attrs.field(factory=dict)

    def put(self, data: bytes) -> str:
        name = sha256_hex(data)
        self._bodies.setdefault(name, bytes(data))
        return name

    def get(self, sha256: str) -> bytes:
        found = self._bodies.get(_check_name(sha256))
        if found is None:
            raise NotFound(f"no content {sha256!r}")
        return found

    def delete(self, sha256: str) -> bool:
        return self._bodies.pop(_check_name(sha256), None) is not None


@implementer(IBlobStore)
@attrs.frozen
class BlobDirectory:
    """The files of one directory, created (owner-only) on the first L{put}."""

    path: Path

    def put(self, data: bytes) -> str:
        name = sha256_hex(data)
        target = self.path / name
        if target.exists():
            return name
        os.makedirs(self.path, mode=0o700, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=self.path, prefix=".upload-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(temporary, target)
        except BaseException:
            os.unlink(temporary)
            raise
        return name

    def get(self, sha256: str) -> bytes:
        try:
            return (self.path / _check_name(sha256)).read_bytes()
        except FileNotFoundError:
            raise NotFound(f"no content {sha256!r}") from None

    def delete(self, sha256: str) -> bool:
        try:
            (self.path / _check_name(sha256)).unlink()
        except FileNotFoundError:
            return False
        return True
