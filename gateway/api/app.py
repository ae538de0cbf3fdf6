# -*- test-case-name: tests.api.test_app -*-
"""
The API's route table and resource: L{build_api}C{(services, key)} is the
twisted.web resource the gateway serves on C{api.bind}:C{api.port}.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gateway.api.attributes import attribute_routes
from gateway.api.cluster import cluster_routes
from gateway.api.commands import command_routes
from gateway.api.devices import device_routes
from gateway.api.dtls import DtlsReport, dtls_off, dtls_routes
from gateway.api.openapi import openapi_document
from gateway.api.ota import ota_routes
from gateway.api.profiles import profile_routes
from gateway.api.router import Call, Reply, Route, Router
from gateway.api.rpc import rpc_routes
from gateway.api.schemas import ref
from gateway.api.status import status_routes
from gateway.api.telemetry import telemetry_routes
from gateway.api.upstream import UpstreamReport, upstream_routes
from gateway.service.build import Services

__all__ = ["build_routes", "build_api"]


def _local_only() -> Mapping[str, Any]:
    return {"forwarding": False, "url": None, "mode": None}


def build_routes(
    services: Services, upstream: UpstreamReport = _local_only, dtls: DtlsReport = dtls_off
) -> list[Route]:
    """Every route of the API, the OpenAPI document's included."""
    routes: list[Route] = []
    routes += device_routes(services)
    routes += attribute_routes(services)
    routes += telemetry_routes(services)
    routes += rpc_routes(services)
    routes += command_routes(services)
    routes += ota_routes(services)
    routes += profile_routes(services)
    routes += status_routes(services)
    routes += cluster_routes(services)
    routes += upstream_routes(services, upstream)
    routes += dtls_routes(dtls)
    document: dict[str, Any] = {}

    async def health(call: Call) -> Reply:
        return Reply(200, {"status": "ok"})

    async def openapi(call: Call) -> Reply:
        return Reply(200, document)

    routes += [
        Route("GET", "/healthz", health, "Liveness check", "meta", public=True,
              response=ref("Health")),
        Route("GET", "/api/openapi.json", openapi, "This OpenAPI document", "meta",
              public=True, response={"type": "object"}),
    ]
    document.update(openapi_document(routes))
    return routes


def build_api(
    services: Services,
    key: str,
    upstream: UpstreamReport = _local_only,
    dtls: DtlsReport = dtls_off,
) -> Router:
    """
    The API resource over C{services}, guarded by the bearer C{key};
    C{upstream} reports the state of what drains the outbox, C{dtls} the
    DTLS listener's.
    """
    return Router(build_routes(services, upstream, dtls), key)
