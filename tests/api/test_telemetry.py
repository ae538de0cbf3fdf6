"""Tests for the telemetry route of the API."""

from __future__ import annotations

from tests.api.conftest import Api
from tests.service.conftest import result


def test_latest(api: Api) -> None:
    """GET telemetry/latest answers the newest value and ts of each key, or of ?keys=."""
    device = api.create_device("a")["id"]
    result(api.services.telemetry.record(device, [(1000, {"t": 20, "h": 50}), (2000, {"t": 21})]))
    path = f"/api/v1/devices/{device}/telemetry/latest"
    assert api.get(path).body == {"t": {"ts": 2000, "value": 21}, "h": {"ts": 1000, "value": 50}}
    assert api.get(path, params={"keys": "h"}).body == {"h": {"ts": 1000, "value": 50}}


def test_latest_empty_and_unknown(api: Api) -> None:
    """A device without telemetry answers {}; an unknown device 404."""
    device = api.create_device("a")["id"]
    assert api.get(f"/api/v1/devices/{device}/telemetry/latest").body == {}
    assert api.get("/api/v1/devices/nope/telemetry/latest").status == 404
