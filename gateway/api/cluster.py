# -*- test-case-name: tests.api.test_cluster -*-
"""
C{GET /api/v1/cluster} (bearer key): the gateway nodes sharing the store,
as their heartbeats show them (L{gateway.service.cluster}).
"""

from __future__ import annotations

from typing import Any

from gateway.api.router import Call, Reply, Route
from gateway.service.build import Services

__all__ = ["cluster_routes"]

_MS: dict[str, Any] = {"type": "integer", "description": "ms since the epoch"}

_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["node_id", "nodes"],
    "properties": {
        "node_id": {"type": "string", "description": "The node that answers."},
        "nodes": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["node_id", "alive", "started", "last_heartbeat", "partitions"],
                "properties": {
                    "node_id": {"type": "string"},
                    "alive": {
                        "type": "boolean",
                        "description": "Its last heartbeat is at most three intervals old.",
                    },
                    "started": _MS,
                    "last_heartbeat": _MS,
                    "partitions": {
                        "type": "array",
                        "items": {"type": "integer", "minimum": 0},
                        "description": "The outbox partitions it owned (PostgreSQL only).",
                    },
                },
            },
        },
    },
}


def cluster_routes(services: Services) -> list[Route]:
    async def cluster(call: Call) -> Reply:
        return Reply(200, await services.cluster.status())

    return [
        Route("GET", "/api/v1/cluster", cluster,
              "The gateway nodes: alive, partitions owned, last heartbeat", "meta",
              response=_SCHEMA),
    ]
