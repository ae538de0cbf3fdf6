"""
End to end: the full gateway service on loopback ports with a temporary data
directory, driven over real HTTP, stopped and started again on the same data.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest_twisted
import treq
from twisted.logger import LogPublisher

from gateway.application.compose import build_service
from gateway.application.gateway import GatewayService
from gateway.domain.model import AttributeScope
from gateway.tap import Options


def _reactor() -> Any:
    from twisted.internet import reactor

    return reactor


def _gateway(data_dir: Path) -> GatewayService:
    options = Options(environ={"GATEWAY_API_KEY": "e2e-key"})
    options.parseOptions(
        [
            "--data-dir", str(data_dir),
            "--coap-bind", "127.0.0.1",
            "--coap-port", "0",
            "--api-port", "0",
        ]
    )
    return build_service(options["settings"], _reactor(), LogPublisher())


async def _call(top: GatewayService, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    address = top.api_address()
    assert address is not None
    headers = {b"Authorization": [b"Bearer e2e-key"]}
    data = None
    if body is not None:
        headers[b"Content-Type"] = [b"application/json"]
        data = json.dumps(body).encode()
    response = await treq.request(
        method,
        f"http://{address[0]}:{address[1]}{path}",
        headers=headers,
        data=data,
        persistent=False,
    )
    raw = await response.content()
    return response.code, json.loads(raw) if raw else None


@pytest_twisted.ensureDeferred
async def test_device_survives_a_restart(tmp_path: Path) -> None:
    """A device created over HTTP keeps its token, attributes and telemetry across a restart."""
    data_dir = tmp_path / "var"
    top = _gateway(data_dir)
    top.startService()
    await top.whenListening()
    try:
        status, device = await _call(
            top,
            "POST",
            "/api/v1/devices",
            {"name": "sensor-1", "credentials": {"type": "access_token", "token": "A1_TEST"}},
        )
        assert status == 201
        status, _ = await _call(
            top, "POST", f"/api/v1/devices/{device['id']}/attributes/shared", {"interval": 30}
        )
        assert status == 200
        layer = top.service_layer
        assert layer is not None
        await layer.attributes.set_attributes(device["id"], AttributeScope.CLIENT, {"fw": "1"})
        await layer.telemetry.record(device["id"], [(1234, {"t": 21.5})])
    finally:
        await top.stopService()

    again = _gateway(data_dir)
    again.startService()
    await again.whenListening()
    try:
        status, found = await _call(again, "GET", "/api/v1/devices?name=sensor-1")
        assert status == 200
        assert [d["id"] for d in found["devices"]] == [device["id"]]
        layer = again.service_layer
        assert layer is not None
        authenticated = layer.credentials.authenticate_token("A1_TEST")
        assert authenticated is not None and authenticated.id == device["id"]
        status, attributes = await _call(again, "GET", f"/api/v1/devices/{device['id']}/attributes")
        assert attributes == {"client": {"fw": "1"}, "shared": {"interval": 30}, "server": {}}
        status, latest = await _call(
            again, "GET", f"/api/v1/devices/{device['id']}/telemetry/latest"
        )
        assert latest == {"t": {"ts": 1234, "value": 21.5}}
        status, health = await _call(again, "GET", "/healthz")
        assert (status, health) == (200, {"status": "ok"})
    finally:
        await again.stopService()
