"""Tests for the outbox and upstream routes of the API."""

from __future__ import annotations

from typing import Any

from twisted.internet.task import Clock

from gateway.api.app import build_api
from gateway.service.build import Services
from tests.api.conftest import KEY, Api
from tests.service.conftest import result


def _uplinks(api: Api, count: int) -> list[str]:
    a = api.create_device("a")["id"]
    b = api.create_device("b")["id"]
    for i in range(count):
        result(api.services.telemetry.record(a if i % 2 == 0 else b, [(i, {"t": i})]))
    return [a, b]


def test_events_are_listed_and_paged(api: Api) -> None:
    """GET /api/v1/events lists held CloudEvents oldest first, by device, paged with after."""
    a, b = _uplinks(api, 5)
    page = api.get("/api/v1/events", params={"limit": "2"}).body
    assert [e["event"]["data"][0]["ts"] for e in page["events"]] == [0, 1]
    assert page["next"] == page["events"][-1]["position"]
    rest = api.get("/api/v1/events", params={"after": str(page["next"])}).body
    assert [e["event"]["data"][0]["ts"] for e in rest["events"]] == [2, 3, 4]
    assert rest["next"] is None
    mine = api.get("/api/v1/events", params={"device": b}).body["events"]
    assert [(e["event"]["deviceid"], e["event"]["sequence"]) for e in mine] == [(b, 1), (b, 2)]
    typed = api.get("/api/v1/events", params={"type": "io.coap-gateway.claim.v1"}).body
    assert typed["events"] == []


def test_bad_paging_is_400(api: Api) -> None:
    """A non-numeric after, or a limit outside 1..1000, is a 400."""
    assert api.get("/api/v1/events", params={"after": "x"}).status == 400
    assert api.get("/api/v1/events", params={"limit": "0"}).status == 400
    assert api.get("/api/v1/upstream/dead-letters", params={"limit": "1001"}).status == 400


def test_upstream_status_without_forwarding(api: Api, clock: Clock) -> None:
    """GET /api/v1/upstream gives the outbox depth and the oldest event's age."""
    assert api.get("/api/v1/upstream").body == {
        "forwarding": False, "url": None, "mode": None, "depth": 0, "oldest_age": None
    }
    _uplinks(api, 2)
    clock.advance(30)
    body = api.get("/api/v1/upstream").body
    assert (body["depth"], body["oldest_age"]) == (2, 30.0)


def test_upstream_status_includes_the_forwarders(services: Services, clock: Clock) -> None:
    """The upstream service's own report is part of GET /api/v1/upstream."""
    report: dict[str, Any] = {"forwarding": True, "url": "http://x/e", "delivered": 7}
    api = Api(build_api(services, KEY, lambda: report), services, clock)
    body = api.get("/api/v1/upstream").body
    assert body == {**report, "depth": 0, "oldest_age": None}


def test_dead_letters_replay_and_discard(api: Api) -> None:
    """Dead letters are listed with their answer, replayed by id, and discarded."""
    _uplinks(api, 3)
    outbox = api.services.outbox
    held = result(outbox.peek(10))
    for e in held:
        result(outbox.dead_letter(e.position, 400, "no such schema", 5))
    listed = api.get("/api/v1/upstream/dead-letters").body["dead_letters"]
    assert [(d["position"], d["status"], d["reason"], d["failed"]) for d in listed] == [
        (e.position, 400, "no such schema", 5) for e in held
    ]
    assert listed[0]["event"]["id"] == held[0].event_id
    replay = f"/api/v1/upstream/dead-letters/replay?ids={held[0].position}"
    assert api.post(replay).body == {"replayed": 1}
    assert [e.event_id for e in result(outbox.peek(10))] == [held[0].event_id]
    assert api.delete("/api/v1/upstream/dead-letters", params={"ids": "x"}).status == 400
    assert api.delete("/api/v1/upstream/dead-letters").body == {"discarded": 2}
    assert api.post("/api/v1/upstream/dead-letters/replay").body == {"replayed": 0}


def test_routes_need_the_key(api: Api) -> None:
    """The outbox routes are not public."""
    assert api.get("/api/v1/events", key=None).status == 401
    assert api.get("/api/v1/upstream", key=None).status == 401
