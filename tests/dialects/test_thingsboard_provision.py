"""
POST /api/v1/provision: ThingsBoard's request and response JSON.
"""

from __future__ import annotations

import json

import pytest

from gateway.coap import numbers as n
from gateway.domain.model import Profile, ProvisionStrategy
from tests.coap.support import option
from tests.service.conftest import result

from .conftest import Harness

KEY, SECRET = "prov-key", "prov-secret"


@pytest.fixture
def provisioning(tb: Harness) -> Harness:
    profile = Profile(
        "sensors",
        provisioning=ProvisionStrategy.ALLOW_CREATE_NEW,
        provision_key=KEY,
        provision_secret=SECRET,
    )
    result(tb.services.registry.create_profile(profile))
    return tb


def _body(**fields: object) -> bytes:
    base: dict[str, object] = {"provisionDeviceKey": KEY, "provisionDeviceSecret": SECRET}
    base.update(fields)
    return json.dumps(base).encode()


def test_success_creates_device_and_token(provisioning: Harness) -> None:
    """SUCCESS is 2.01 with the token; the device then authenticates with it."""
    tb = provisioning
    response = tb.ask(n.POST, "api/v1/provision", _body(deviceName="new-1", token="NEWTOKEN"))
    assert response.code == n.CREATED
    assert json.loads(response.payload) == {
        "credentialsValue": "NEWTOKEN",
        "credentialsType": "ACCESS_TOKEN",
        "status": "SUCCESS",
    }
    assert list(json.loads(response.payload)) == ["credentialsValue", "credentialsType", "status"]
    assert option(response, n.CONTENT_FORMAT) is None
    device = tb.services.credentials.authenticate_token("NEWTOKEN")
    assert device is not None and device.name == "new-1" and device.profile == "sensors"
    assert tb.ask(n.POST, "api/v1/NEWTOKEN/telemetry", b'{"a":1}').code == n.CREATED


def test_success_with_generated_token_and_token_path(provisioning: Harness) -> None:
    """Without a token one is generated; /api/v1/{x}/provision works too."""
    tb = provisioning
    response = tb.ask(n.POST, "api/v1/whatever/provision", _body(deviceName="new-2"))
    body = json.loads(response.payload)
    assert (response.code, body["status"]) == (n.CREATED, "SUCCESS")
    assert tb.services.credentials.authenticate_token(body["credentialsValue"]) is not None


def test_not_found(provisioning: Harness) -> None:
    """A wrong secret or unknown key is 4.00 NOT_FOUND with ThingsBoard's message."""
    for body in (_body(provisionDeviceSecret="wrong"), _body(provisionDeviceKey="nope")):
        response = provisioning.ask(n.POST, "api/v1/provision", body)
        assert response.code == n.BAD_REQUEST
        assert json.loads(response.payload) == {
            "errorMsg": "Provision data was not found!",
            "status": "NOT_FOUND",
        }


def test_failure_when_provisioned_twice(provisioning: Harness) -> None:
    """Provisioning the same device twice is 4.00 FAILURE."""
    tb = provisioning
    assert tb.ask(n.POST, "api/v1/provision", _body(deviceName="twice")).code == n.CREATED
    response = tb.ask(n.POST, "api/v1/provision", _body(deviceName="twice"))
    assert response.code == n.BAD_REQUEST
    assert json.loads(response.payload) == {
        "errorMsg": "Failed to provision device!",
        "status": "FAILURE",
    }


def test_missing_key_or_bad_json_is_plain_400(provisioning: Harness) -> None:
    """A request without key or secret, or not JSON, is a plain 4.00."""
    for body in (b'{"provisionDeviceKey":"k"}', b"{bad", b"", b"[]"):
        response = provisioning.ask(n.POST, "api/v1/provision", body)
        assert response.code == n.BAD_REQUEST, body
        assert b"status" not in response.payload


def test_lenient_request_is_read(provisioning: Harness) -> None:
    """A provisioning request with unquoted names and values is read as ThingsBoard reads it."""
    body = f"{{provisionDeviceKey:{KEY}, provisionDeviceSecret:'{SECRET}', deviceName:n-3}}"
    response = provisioning.ask(n.POST, "api/v1/provision", body.encode())
    assert response.code == n.CREATED, response.payload
    assert json.loads(response.payload)["status"] == "SUCCESS"
