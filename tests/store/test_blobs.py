"""The IBlobStore contract, run against the directory and the in-memory bodies."""

from __future__ import annotations

from pathlib import Path

import pytest
from zope.interface.verify import verifyObject

from gateway.domain.errors import NotFound
from gateway.store.blobs import BlobDirectory, IBlobStore, MemoryBlobs, sha256_hex


@pytest.fixture(params=["memory", "directory"])
def blobs(request: pytest.FixtureRequest, tmp_path: Path) -> IBlobStore:
    if request.param == "memory":
        return MemoryBlobs()
    return BlobDirectory(tmp_path / "ota")


def test_provides_interface(blobs: IBlobStore) -> None:
    """Both implementations provide IBlobStore completely."""
    assert verifyObject(IBlobStore, blobs)


def test_put_get_delete(blobs: IBlobStore) -> None:
    """A body is stored under its SHA-256, read back whole, stored once and deleted."""
    name = blobs.put(b"firmware")
    assert name == sha256_hex(b"firmware")
    assert blobs.put(b"firmware") == name
    assert blobs.get(name) == b"firmware"
    assert blobs.delete(name) is True
    assert blobs.delete(name) is False
    with pytest.raises(NotFound):
        blobs.get(name)


def test_names_are_digests(blobs: IBlobStore) -> None:
    """A name that is not a SHA-256 hex digest (a path, say) is not found."""
    with pytest.raises(NotFound):
        blobs.get("../gateway.db")


def test_directory_leaves_no_temporary_file(tmp_path: Path) -> None:
    """The directory holds only the renamed body, owner-only, after a put."""
    blobs = BlobDirectory(tmp_path / "ota")
    name = blobs.put(b"x" * 10_000)
    assert [p.name for p in (tmp_path / "ota").iterdir()] == [name]
    assert (tmp_path / "ota").stat().st_mode & 0o077 == 0
