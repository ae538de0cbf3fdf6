"""Tests for the attribute routes of the API."""

from __future__ import annotations

from typing import Any

from gateway.domain.model import AttributeScope
from tests.api.conftest import Api
from tests.service.conftest import result


def _device(api: Api) -> str:
    return str(api.create_device("a")["id"])


def test_get_all_scopes(api: Api) -> None:
    """GET attributes answers every scope, including the device's client attributes."""
    device = _device(api)
    result(api.services.attributes.set_attributes(device, AttributeScope.CLIENT, {"fw": "1.0"}))
    answer = api.get(f"/api/v1/devices/{device}/attributes")
    assert answer.status == 200
    assert answer.body == {"client": {"fw": "1.0"}, "shared": {}, "server": {}}


def test_set_get_by_scope_and_keys(api: Api) -> None:
    """POST writes a scope; ?scope= and ?keys= narrow what GET answers."""
    device = _device(api)
    path = f"/api/v1/devices/{device}/attributes"
    answer = api.post(path + "/server", {"a": 1, "b": {"x": [1, 2]}, "c": None})
    assert (answer.status, answer.body) == (200, {"scope": "server", "updated": ["a", "b", "c"]})
    assert api.get(path, params={"scope": "server"}).body == {
        "server": {"a": 1, "b": {"x": [1, 2]}, "c": None}
    }
    assert api.get(path, params={"scope": "server", "keys": "a,c"}).body == {
        "server": {"a": 1, "c": None}
    }
    assert api.get(path, params={"keys": "a"}).body == {
        "client": {},
        "shared": {},
        "server": {"a": 1},
    }


def test_shared_change_reaches_subscribers(api: Api) -> None:
    """Setting and deleting shared attributes notifies the device's subscribers at once."""
    device = _device(api)
    heard: list[dict[str, Any]] = []
    api.services.attributes.subscribe(device, heard.append)
    path = f"/api/v1/devices/{device}/attributes/shared"
    api.post(path, {"interval": 30})
    answer = api.delete(path, params={"keys": "interval,missing"})
    assert (answer.status, answer.body) == (200, {"scope": "shared", "deleted": ["interval"]})
    assert heard == [{"interval": 30}, {"deleted": ["interval"]}]


def test_errors(api: Api) -> None:
    """Bad scopes, bodies and keys are 400; an unknown device 404."""
    device = _device(api)
    path = f"/api/v1/devices/{device}/attributes"
    assert api.post(path + "/client", {"a": 1}).status == 400
    assert api.post(path + "/bogus", {"a": 1}).status == 400
    assert api.post(path + "/shared", [1]).status == 400
    assert api.post(path + "/shared", {"": 1}).status == 400
    assert api.get(path, params={"scope": "bogus"}).status == 400
    assert api.get(path, params={"keys": ","}).status == 400
    assert api.delete(path + "/shared").status == 400
    assert api.delete(path + "/client", params={"keys": "a"}).status == 400
    assert api.get("/api/v1/devices/nope/attributes").status == 404
    assert api.post("/api/v1/devices/nope/attributes/shared", {"a": 1}).status == 404
    assert api.delete("/api/v1/devices/nope/attributes/shared", params={"keys": "a"}).status == 404
