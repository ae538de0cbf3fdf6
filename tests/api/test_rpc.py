"""
The RPC routes of the API: send (waiting for the reply or not), list,
show, cancel, and a device's reachability and power-saving settings.
"""

from __future__ import annotations

import json
from typing import Any

from twisted.internet.defer import Deferred

from gateway.domain.model import Rpc
from gateway.service.interfaces import Delivery
from tests.api.conftest import BASE, KEY, Api
from tests.service.conftest import result

START_MS = 1_700_000_000_000


class Listening:
    """A device subscribed to its RPCs; it acknowledges each at once and records it."""

    def __init__(self, api: Api, device_id: str) -> None:
        self.sent: list[Rpc] = []
        api.services.devices.subscribe_rpc(device_id, self.deliver)
        api.clock.advance(0)

    def deliver(self, rpc: Rpc) -> "Deferred[Delivery]":
        self.sent.append(rpc)
        d: Deferred[Delivery] = Deferred()
        d.callback("ack")
        return d


def start(api: Api, path: str, body: Any) -> "Deferred[Any]":
    """Send a POST whose answer comes later; fires with (status, body)."""
    d = api.stub.post(
        BASE + path, data=json.dumps(body).encode(),
        headers={b"Authorization": [b"Bearer " + KEY.encode()],
                 b"Content-Type": [b"application/json"]},
    )

    async def read() -> Any:
        response = await d
        return response.code, json.loads(await response.content())

    return Deferred.fromCoroutine(read())


def finish(api: Api, d: "Deferred[Any]") -> Any:
    api.stub.flush()
    return result(d)


def test_two_way_answers_with_the_device_reply(api: Api) -> None:
    """A two-way RPC waits for the device's reply and answers 200 with it as the body."""
    device = api.create_device("d")["id"]
    listening = Listening(api, device)
    d = start(api, f"/api/v1/devices/{device}/rpc", {"method": "getTemp", "params": {"u": "C"}})
    api.stub.flush()
    assert not d.called
    (sent,) = listening.sent
    assert (sent.method, sent.params) == ("getTemp", {"u": "C"})
    result(api.services.devices.reply_rpc(device, sent.id, {"t": 21}))
    assert finish(api, d) == (200, {"t": 21})


def test_one_way_answers_with_the_rpc(api: Api) -> None:
    """A one-way RPC answers 200 with the RPC, SUCCESSFUL, once acknowledged."""
    device = api.create_device("d")["id"]
    Listening(api, device)
    status, body = finish(api, start(api, f"/api/v1/devices/{device}/rpc",
                                     {"method": "reboot", "oneway": True}))
    assert status == 200
    assert (body["state"], body["oneway"], body["method"]) == ("SUCCESSFUL", True, "reboot")


def test_unsent_within_timeout_is_202_and_no_wait_at_once(api: Api) -> None:
    """Nobody listening: 202 with the queued RPC after its timeout; ?wait=false at once."""
    device = api.create_device("d")["id"]
    path = f"/api/v1/devices/{device}/rpc"
    d = start(api, path, {"method": "m", "timeout": 3000})
    api.clock.advance(3)
    status, body = finish(api, d)
    assert (status, body["state"], body["timeout"]) == (202, "QUEUED", 3000)
    now = api.post(path + "?wait=false", {"method": "n", "expirationTime": START_MS + 60_000})
    assert (now.status, now.body["state"], now.body["expires_at"]) == (
        202, "QUEUED", START_MS + 60_000,
    )
    assert now.header("Location") == f"{path}/{now.body['id']}"


def test_timed_out_two_way_is_504(api: Api) -> None:
    """A two-way RPC the device never answers ends 504 with the reason."""
    device = api.create_device("d")["id"]
    Listening(api, device)
    d = start(api, f"/api/v1/devices/{device}/rpc", {"method": "m", "timeout": 1000})
    api.clock.advance(1)
    status, body = finish(api, d)
    assert status == 504 and "TIMEOUT" in body["error"]


def test_list_show_cancel(api: Api) -> None:
    """RPCs are listed (by state), shown, and an unfinished one cancelled; then 409."""
    device = api.create_device("d")["id"]
    path = f"/api/v1/devices/{device}/rpc"
    first = api.post(path + "?wait=false", {"method": "a"}).body
    api.post(path + "?wait=false", {"method": "b"})
    assert [r["method"] for r in api.get(path).body["rpcs"]] == ["a", "b"]
    cancelled = api.delete(f"{path}/{first['id']}")
    assert (cancelled.status, cancelled.body["state"]) == (200, "FAILED")
    assert api.delete(f"{path}/{first['id']}").status == 409
    assert [r["method"] for r in api.get(path, params={"state": "queued"}).body["rpcs"]] == ["b"]
    assert api.get(f"{path}/{first['id']}").body["error"] == "cancelled"
    assert api.get(f"{path}/999").status == 404
    assert api.get(f"{path}/x").status == 404
    assert api.get(path, params={"state": "nope"}).status == 400


def test_bad_bodies_and_full_queue(api: Api) -> None:
    """No method, a bad field or an unknown device are refused; a full queue is 409."""
    device = api.create_device("d")["id"]
    path = f"/api/v1/devices/{device}/rpc?wait=false"
    assert api.post(path, {"params": 1}).status == 400
    assert api.post(path, {"method": "m", "oneway": "yes"}).status == 400
    assert api.post(path, {"method": "m", "timeout": -1}).status == 400
    assert api.post(path, {"method": "m", "extra": 1}).status == 400
    assert api.post("/api/v1/devices/nope/rpc?wait=false", {"method": "m"}).status == 404
    for _ in range(100):
        assert api.post(path, {"method": "m"}).status == 202
    full = api.post(path, {"method": "m"})
    assert full.status == 409 and "full" in full.body["error"]


def test_reachability_and_power_settings(api: Api) -> None:
    """A device's own power settings are set through the API and its reachability shown."""
    device = api.create_device("d", power_mode="psm", psm_activity_timer=4000)
    assert (device["power_mode"], device["psm_activity_timer"]) == ("psm", 4000)
    reach = api.get(f"/api/v1/devices/{device['id']}/reachability").body
    assert reach == {"power_mode": "psm", "state": "asleep", "awake_until": None,
                     "next_window": None, "last_heard": None}
    api.services.devices.report_seen(device["id"], "uplink")
    reach = api.get(f"/api/v1/devices/{device['id']}/reachability").body
    assert (reach["state"], reach["awake_until"]) == ("awake", START_MS + 4000)
    patched = api.patch(f"/api/v1/devices/{device['id']}", {"power_mode": None}).body
    assert patched["power_mode"] is None and patched["psm_activity_timer"] == 4000
    assert api.patch(f"/api/v1/devices/{device['id']}", {"power_mode": "x"}).status == 400
    assert api.get("/api/v1/devices/nope/reachability").status == 404
