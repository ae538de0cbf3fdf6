"""
The whole service layer over the configured store, across a restart.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import pytest_twisted

from gateway.config import load_config
from gateway.domain.model import AttributeScope, Profile, TelemetryPoint
from gateway.service.build import open_services

from .conftest import FAST_HASHER


def _reactor():  # type: ignore[no-untyped-def]
    from twisted.internet import reactor

    return reactor


@pytest_twisted.ensureDeferred
async def test_restart_through_services(tmp_path: Path) -> None:
    """Everything made through the services is there, cached and authenticating, after a reopen."""
    data = str(tmp_path / "var" / "gateway.db")
    s = await open_services(_reactor(), "sqlite", data, FAST_HASHER)
    await s.registry.create_profile(Profile("nb", psm_activity_timer=10000))
    created = await s.registry.create_device("a", profile="nb")
    dev = created.device
    await s.registry.set_basic(dev.id, "user", "pw")
    await s.registry.set_psk(dev.id, "ident", b"key")
    await s.attributes.set_attributes(dev.id, AttributeScope.SHARED, {"cfg": {"x": [1, 2]}})
    await s.telemetry.record(dev.id, [(5, {"t": 1})])
    await s.claiming.request_claim(dev.id, "sec")
    assert await s.credentials.authenticate_basic("user", "pw") == dev
    await s.close()

    s = await open_services(_reactor(), "sqlite", data, FAST_HASHER)
    try:
        assert s.credentials.authenticate_token(created.access_token or "") == dev
        assert s.credentials.psk_for_identity("ident") == (dev, b"key")
        assert await s.credentials.authenticate_basic("user", "pw") == dev
        assert await s.credentials.authenticate_basic("user", "bad") is None
        assert (await s.registry.get_profile("nb")).psm_activity_timer == 10000
        assert [p.name for p in await s.registry.list_profiles()] == ["default", "nb"]
        attrs = await s.attributes.get_attributes(dev.id, AttributeScope.SHARED)
        assert [(a.key, a.value) for a in attrs] == [("cfg", {"x": [1, 2]})]
        assert await s.telemetry.latest(dev.id) == [TelemetryPoint("t", 1, 5)]
        assert await s.claiming.claim(dev.id, "sec")
    finally:
        await s.close()
    assert (tmp_path / "var" / "gateway.db").exists()


@pytest_twisted.ensureDeferred
async def test_storage_path_from_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """[storage] path names the database file, relative to the working directory."""
    monkeypatch.chdir(tmp_path)
    storage = load_config(None, {"GATEWAY_STORAGE_PATH": "db/devices.sqlite"}).storage
    s = await open_services(_reactor(), storage.backend, str(storage.database_path), FAST_HASHER)
    created = await s.registry.create_device("a")
    await s.close()
    assert (tmp_path / "db" / "devices.sqlite").is_file()
    assert not (tmp_path / "var").exists()
    path = str(tmp_path / "db" / "devices.sqlite")
    s = await open_services(_reactor(), "sqlite", path, FAST_HASHER)
    try:
        assert s.credentials.authenticate_token(created.access_token or "") == created.device
    finally:
        await s.close()


@pytest_twisted.ensureDeferred
async def test_memory_backend_keeps_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the memory backend the services work, write no file, and forget everything on reopen."""
    monkeypatch.chdir(tmp_path)
    storage = load_config(None, {"GATEWAY_STORAGE_BACKEND": "memory"}).storage
    s = await open_services(_reactor(), storage.backend, str(storage.database_path), FAST_HASHER)
    created = await s.registry.create_device("a")
    assert s.credentials.authenticate_token(created.access_token or "") == created.device
    await s.close()
    s = await open_services(_reactor(), storage.backend, str(storage.database_path), FAST_HASHER)
    try:
        assert await s.registry.list_devices() == []
    finally:
        await s.close()
    assert list(tmp_path.iterdir()) == []
