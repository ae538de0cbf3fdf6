# -*- test-case-name: tests.api.test_upstream -*-
"""
Routes for the outbox and the upstream: events kept locally, the
forwarder's state, and the dead letters (list, replay, discard).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Optional

from gateway.api.jsonio import ApiError
from gateway.api.router import Call, Param, Reply, Route
from gateway.api.schemas import ref
from gateway.service.build import Services

__all__ = ["upstream_routes", "UpstreamReport"]

#: The upstream service's own state (see L{gateway.upstream.forwarder.Forwarder.report}).
UpstreamReport = Callable[[], Mapping[str, Any]]

_PAGE = (
    Param("after", "Only entries after this position (paging; default 0)."),
    Param("limit", "At most this many entries (1 to 1000, default 100)."),
)
_IDS = (Param("ids", "Comma-separated positions (default: every dead letter)."),)


def _number(call: Call, name: str, default: int) -> int:
    text = call.query.get(name)
    if text is None:
        return default
    if not text.isdigit():
        raise ApiError(400, f"{name!r} must be a non-negative integer")
    return int(text)


def _ids(call: Call) -> Optional[list[int]]:
    text = call.query.get("ids")
    if text is None:
        return None
    ids = [part.strip() for part in text.split(",") if part.strip()]
    if not ids or not all(i.isdigit() for i in ids):
        raise ApiError(400, "'ids' must list positions, e.g. ids=4,7")
    return [int(i) for i in ids]


def _next(entries: list[dict[str, Any]], limit: int) -> Optional[int]:
    return entries[-1]["position"] if len(entries) == limit else None


def upstream_routes(services: Services, report: UpstreamReport) -> list[Route]:
    log = services.events

    async def events(call: Call) -> Reply:
        limit = _number(call, "limit", 100)
        found = await log.events(
            call.query.get("device"), call.query.get("type"), _number(call, "after", 0), limit
        )
        return Reply(200, {"events": found, "next": _next(found, limit)})

    async def status(call: Call) -> Reply:
        return Reply(200, {**report(), **await log.depth()})

    async def dead_letters(call: Call) -> Reply:
        limit = _number(call, "limit", 100)
        found = await log.dead_letters(_number(call, "after", 0), limit)
        return Reply(200, {"dead_letters": found, "next": _next(found, limit)})

    async def replay(call: Call) -> Reply:
        return Reply(200, {"replayed": await log.replay(_ids(call))})

    async def discard(call: Call) -> Reply:
        return Reply(200, {"discarded": await log.discard(_ids(call))})

    dead = "/api/v1/upstream/dead-letters"
    return [
        Route(
            "GET", "/api/v1/events", events,
            "Events held in the outbox (not yet forwarded, or kept locally)", "upstream",
            query=(
                Param("device", "Only this device's events (its id)."),
                Param("type", "Only events of this type."),
                *_PAGE,
            ),
            response=ref("EventPage"),
        ),
        Route("GET", "/api/v1/upstream", status, "The outbox and the forwarder", "upstream",
              response=ref("UpstreamStatus")),
        Route("GET", dead, dead_letters, "Events the upstream refused", "upstream",
              query=_PAGE, response=ref("DeadLetterPage")),
        Route("POST", f"{dead}/replay", replay, "Send dead letters again", "upstream",
              query=_IDS, response=ref("Replayed")),
        Route("DELETE", dead, discard, "Discard dead letters", "upstream",
              query=_IDS, response=ref("Discarded")),
    ]
