"""Drogue's command endpoint: a command queued as a one-way RPC, 406 for a device not there."""

from __future__ import annotations

from tests.api.conftest import Api
from tests.service.conftest import result

PATH = "/api/command/v1alpha1/apps/example-app/devices/device1"


def test_command_is_queued_with_its_payload(api: Api) -> None:
    """The body of any content type becomes the one-way RPC's params, exactly as sent."""
    device = api.create_device("device1", application="example-app")
    answer = api.request(
        "POST", PATH, data=b"on \xc3\xa9", content_type="text/plain", params={"command": "led"}
    )
    assert answer.status == 202, answer.body
    (rpc,) = result(api.services.rpc.list(device["id"]))
    assert (rpc.method, rpc.params, rpc.oneway) == ("led", "on \u00e9", True)
    assert rpc.content_type == "text/plain" == answer.body["content_type"]


def test_unknown_or_disabled_device_is_not_acceptable(api: Api) -> None:
    """An unknown device, or a disabled one, is a 406 as in Drogue."""
    assert api.request("POST", PATH, data=b"x", params={"command": "led"}).status == 406
    api.create_device("device1", application="example-app", enabled=False)
    assert api.request("POST", PATH, data=b"x", params={"command": "led"}).status == 406


def test_command_name_is_required_and_the_key_too(api: Api) -> None:
    """No command name is a 400; no API key a 401."""
    api.create_device("device1", application="example-app")
    assert api.request("POST", PATH, data=b"x").status == 400
    assert api.request("POST", PATH, data=b"x", key=None, params={"command": "a"}).status == 401
