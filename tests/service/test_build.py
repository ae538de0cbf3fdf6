"""
The whole service layer over a real SQLite file, across a restart.
"""

from __future__ import annotations

from pathlib import Path

import pytest_twisted

from gateway.domain.model import AttributeScope, Profile, TelemetryPoint
from gateway.service.build import open_services

from .conftest import FAST_HASHER


def _reactor():  # type: ignore[no-untyped-def]
    from twisted.internet import reactor

    return reactor


@pytest_twisted.ensureDeferred
async def test_restart_through_services(tmp_path: Path) -> None:
    """Everything made through the services is there, cached and authenticating, after a reopen."""
    data = str(tmp_path / "var")
    s = await open_services(_reactor(), data, FAST_HASHER)
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

    s = await open_services(_reactor(), data, FAST_HASHER)
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
