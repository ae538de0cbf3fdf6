# -*- test-case-name: tests.api.test_hostile -*-
"""
C{GET /api/v1/status} (bearer key): what the gateway has refused, for an
operator watching for hostile senders.  Today: wrong credentials, in total
and per source address (L{gateway.service.guard}).
"""

from __future__ import annotations

from typing import Any

from gateway.api.router import Call, Reply, Route
from gateway.service.build import Services

__all__ = ["status_routes"]

_COUNT: dict[str, Any] = {"type": "integer", "minimum": 0}

_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["wrong_credentials"],
    "properties": {
        "wrong_credentials": {
            "type": "object",
            "required": ["total", "throttled", "sources"],
            "properties": {
                "total": _COUNT,
                "throttled": _COUNT,
                "sources": {
                    "type": "array",
                    "description": "Remembered source addresses, most recently failed last.",
                    "items": {
                        "type": "object",
                        "required": ["source", "wrong", "throttled", "retry_after"],
                        "properties": {
                            "source": {"type": "string"},
                            "wrong": _COUNT,
                            "throttled": _COUNT,
                            "retry_after": {
                                "type": "integer",
                                "nullable": True,
                                "description": "Seconds until it may authenticate again.",
                            },
                        },
                    },
                },
            },
        },
    },
}


def status_routes(services: Services) -> list[Route]:
    guard = services.guard

    async def status(call: Call) -> Reply:
        sources = [
            {"source": s.source, "wrong": s.wrong, "throttled": s.throttled,
             "retry_after": s.retry_after}
            for s in guard.sources()
        ]
        return Reply(200, {"wrong_credentials": {
            "total": guard.wrong_total, "throttled": guard.throttled_total, "sources": sources,
        }})

    return [
        Route("GET", "/api/v1/status", status, "Refusals: wrong credentials per source",
              "meta", response=_SCHEMA),
    ]
