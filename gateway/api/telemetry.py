# -*- test-case-name: tests.api.test_telemetry -*-
"""Routes for device telemetry: the latest value of each key."""

from __future__ import annotations

from gateway.api.jsonio import split_keys
from gateway.api.router import Call, Param, Reply, Route
from gateway.api.schemas import ref
from gateway.service.build import Services

__all__ = ["telemetry_routes"]


def telemetry_routes(services: Services) -> list[Route]:
    telemetry = services.telemetry

    async def latest(call: Call) -> Reply:
        points = await telemetry.latest(call.params["id"], split_keys(call.query.get("keys")))
        return Reply(200, {p.key: {"ts": p.ts, "value": p.value} for p in points})

    return [
        Route(
            "GET", "/api/v1/devices/{id}/telemetry/latest", latest,
            "The latest value of each telemetry key", "telemetry",
            query=(Param("keys", "Comma-separated keys (default: all)."),),
            response=ref("LatestTelemetry"),
        ),
    ]
