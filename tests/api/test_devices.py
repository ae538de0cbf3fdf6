"""
Tests for the device routes of the API: creation with each kind of
credential, listing and finding, showing, changing, deleting.
"""

from __future__ import annotations

import hashlib

from gateway.domain.model import CredentialKind
from tests.api.conftest import Api
from tests.service.conftest import result
from tests.service.test_registry import _self_signed


def test_create_generates_a_token_shown_once(api: Api) -> None:
    """A device created without credentials gets an access token, shown in that response only."""
    answer = api.post("/api/v1/devices", {"name": "sensor-1"})
    assert answer.status == 201
    body = answer.body
    token = body["access_token"]
    assert answer.header("location") == f"/api/v1/devices/{body['id']}"
    assert body["name"] == "sensor-1"
    assert (body["application"], body["profile"], body["enabled"]) == ("default", "default", True)
    assert body["credentials"] == [
        {"type": "access_token", "sha256": hashlib.sha256(token.encode()).hexdigest()}
    ]
    assert api.services.credentials.authenticate_token(token).id == body["id"]
    shown = api.get(f"/api/v1/devices/{body['id']}").body
    assert "access_token" not in shown


def test_create_with_given_token(api: Api) -> None:
    """A given access token is the one that authenticates."""
    body = api.create_device(
        "sensor-1", credentials={"type": "access_token", "token": "A1_TEST_TOKEN"}
    )
    assert body["access_token"] == "A1_TEST_TOKEN"
    assert api.services.credentials.authenticate_token("A1_TEST_TOKEN").name == "sensor-1"


def test_create_with_psk(api: Api) -> None:
    """A PSK credential (hex key) is set and no token is generated."""
    body = api.create_device(
        "psk-dev", credentials={"type": "psk", "identity": "id-1", "key": "00a1ff"}
    )
    assert "access_token" not in body
    assert body["credentials"] == [{"type": "psk", "identity": "id-1"}]
    device, key = api.services.credentials.psk_for_identity("id-1")
    assert (device.id, key) == (body["id"], b"\x00\xa1\xff")


def test_create_with_certificate(api: Api) -> None:
    """An X.509 credential is matched by the SHA-256 of the certificate."""
    pem = _self_signed()
    body = api.create_device("x509-dev", credentials={"type": "x509", "certificate": pem})
    [info] = body["credentials"]
    assert info["type"] == "x509"
    device = api.services.credentials.authenticate_certificate_sha256(info["sha256"])
    assert device.id == body["id"]


def test_create_with_password_defaults_username_to_name(api: Api) -> None:
    """A basic credential without a username uses the device name."""
    body = api.create_device("drogue-1", credentials={"type": "basic", "password": "pw"})
    assert body["credentials"] == [{"type": "basic", "username": "drogue-1"}]
    device = result(api.services.credentials.authenticate_basic("drogue-1", "pw"))
    assert device.id == body["id"]


def test_gateways_are_created_shown_and_patched(api: Api) -> None:
    """A device's gateways are set at creation, shown, replaced by a patch and checked."""
    body = api.create_device("device2", gateways=["gw1"])
    assert body["gateways"] == ["gw1"]
    patched = api.patch(f"/api/v1/devices/{body['id']}", {"gateways": []})
    assert (patched.status, patched.body["gateways"]) == (200, [])
    assert api.patch(f"/api/v1/devices/{body['id']}", {"gateways": "gw1"}).status == 400


def test_create_with_bad_certificate_leaves_no_device(api: Api) -> None:
    """A credential the registry rejects fails creation and leaves no device behind."""
    answer = api.post(
        "/api/v1/devices",
        {"name": "bad", "credentials": {"type": "x509", "certificate": "not pem"}},
    )
    assert answer.status == 400
    assert api.get("/api/v1/devices", params={"name": "bad"}).body == {"devices": []}


def test_create_validation(api: Api) -> None:
    """Missing names, wrong types, unknown fields, bad credentials and profiles are 400."""
    cases = [
        {},
        {"name": ""},
        {"name": 3},
        {"name": "a", "enabled": "yes"},
        {"name": "a", "colour": "red"},
        {"name": "a", "profile": "nope"},
        {"name": "a", "credentials": {"type": "magic"}},
        {"name": "a", "credentials": {"type": "psk", "identity": "i", "key": "xyz"}},
        {"name": "a", "credentials": {"type": "psk", "identity": "i"}},
        {"name": "a", "credentials": {"type": "access_token", "password": "p"}},
        ["name", "a"],
    ]
    for body in cases:
        answer = api.post("/api/v1/devices", body)
        assert answer.status == 400, body
        assert isinstance(answer.body["error"], str)


def test_duplicate_name_or_token_is_409(api: Api) -> None:
    """A taken name in the application, or a taken token, is a conflict."""
    api.create_device("a", credentials={"type": "access_token", "token": "T"})
    assert api.post("/api/v1/devices", {"name": "a"}).status == 409
    answer = api.post(
        "/api/v1/devices", {"name": "b", "credentials": {"type": "access_token", "token": "T"}}
    )
    assert answer.status == 409
    assert api.post("/api/v1/devices", {"name": "a", "application": "other"}).status == 201


def test_name_and_token_clash_both_reported(api: Api) -> None:
    """Creating a device whose name and token are both taken names both clashes in the 409."""
    api.create_device("a", credentials={"type": "access_token", "token": "T"})
    answer = api.post(
        "/api/v1/devices", {"name": "a", "credentials": {"type": "access_token", "token": "T"}}
    )
    assert (answer.status, answer.body["error"]) == (
        409, "device name 'a' is taken in 'default'; this access token is used by another device"
    )


def test_created_is_integer_ms(api: Api) -> None:
    """A device's created time is integer ms since the epoch, as telemetry ts, everywhere."""
    api.clock.advance(0.25)
    body = api.create_device("a")
    assert body["created"] == 1_700_000_000_250
    assert api.get(f"/api/v1/devices/{body['id']}").body["created"] == 1_700_000_000_250
    assert api.get("/api/v1/devices").body["devices"][0]["created"] == 1_700_000_000_250


def test_pending_claim_is_shown_without_its_secret(api: Api) -> None:
    """GET .../claim shows a claim (times, whether it needs a secret, never it) until it expires."""
    device_id = api.create_device("a")["id"]
    path = f"/api/v1/devices/{device_id}/claim"
    none = api.get(path)
    assert none.status == 404
    assert none.body == {"error": f"device {device_id!r} has no pending claim"}
    start = int(api.clock.seconds() * 1000)
    result(api.services.claiming.request_claim(device_id, "s3cret", 60_000))
    shown = api.get(path)
    assert (shown.status, shown.body) == (200, {
        "created": start, "expires_at": start + 60_000, "secret_required": True,
    })
    assert b"s3cret" not in shown.raw
    api.clock.advance(60)
    assert api.get(path).status == 404
    assert api.get("/api/v1/devices/nope/claim").status == 404


def test_list_find_and_filter(api: Api) -> None:
    """The list is ordered by name and filters by ?name= and ?application=."""
    api.create_device("b")
    api.create_device("a")
    api.create_device("a", application="farm")
    names = [d["name"] for d in api.get("/api/v1/devices").body["devices"]]
    assert names == ["a", "a", "b"]
    farm = api.get("/api/v1/devices", params={"application": "farm"}).body["devices"]
    assert [(d["name"], d["application"]) for d in farm] == [("a", "farm")]
    found = api.get("/api/v1/devices", params={"name": "b"}).body["devices"]
    assert [d["name"] for d in found] == ["b"]
    found = api.get("/api/v1/devices", params={"name": "a", "application": "farm"}).body
    assert [d["application"] for d in found["devices"]] == ["farm"]
    assert api.get("/api/v1/devices", params={"name": "zz"}).body == {"devices": []}


def test_show_unknown_is_404(api: Api) -> None:
    """An unknown device id is 404 with an error message."""
    answer = api.get("/api/v1/devices/nope")
    assert answer.status == 404
    assert "nope" in answer.body["error"]


def test_patch(api: Api) -> None:
    """PATCH renames, changes profile and disables; a disabled device does not authenticate."""
    body = api.create_device("a", credentials={"type": "access_token", "token": "T"})
    api.post("/api/v1/profiles", {"name": "p"})
    answer = api.patch(
        f"/api/v1/devices/{body['id']}", {"name": "b", "profile": "p", "enabled": False}
    )
    assert answer.status == 200
    assert (answer.body["name"], answer.body["profile"], answer.body["enabled"]) == (
        "b",
        "p",
        False,
    )
    assert api.services.credentials.authenticate_token("T") is None


def test_patch_errors(api: Api) -> None:
    """PATCH with bad fields is 400, on an unknown device 404."""
    body = api.create_device("a")
    assert api.patch(f"/api/v1/devices/{body['id']}", {"enabled": 1}).status == 400
    assert api.patch(f"/api/v1/devices/{body['id']}", {"id": "x"}).status == 400
    assert api.patch(f"/api/v1/devices/{body['id']}", {"profile": "zz"}).status == 400
    assert api.patch("/api/v1/devices/nope", {"enabled": True}).status == 404


def test_delete(api: Api) -> None:
    """DELETE answers 204 without a body, then the device is gone and its token dead."""
    body = api.create_device("a")
    answer = api.delete(f"/api/v1/devices/{body['id']}")
    assert (answer.status, answer.raw) == (204, b"")
    assert api.get(f"/api/v1/devices/{body['id']}").status == 404
    assert api.delete(f"/api/v1/devices/{body['id']}").status == 404
    assert api.services.credentials.authenticate_token(body["access_token"]) is None


def test_put_credentials(api: Api) -> None:
    """PUT credentials sets each kind; a new token replaces the old one."""
    body = api.create_device("a")
    path = f"/api/v1/devices/{body['id']}/credentials"
    answer = api.put(path, {"type": "access_token"})
    assert answer.status == 200
    new = answer.body["token"]
    assert new != body["access_token"]
    assert api.services.credentials.authenticate_token(body["access_token"]) is None
    assert api.services.credentials.authenticate_token(new).id == body["id"]
    assert api.put(path, {"type": "access_token", "token": "T2"}).body == {
        "type": "access_token",
        "token": "T2",
    }
    assert api.put(path, {"type": "psk", "identity": "i", "key": "0102"}).body == {
        "type": "psk",
        "identity": "i",
    }
    answer = api.put(path, {"type": "x509", "certificate": _self_signed()})
    assert answer.body["type"] == "x509" and len(answer.body["sha256"]) == 64
    answer = api.put(path, {"type": "basic", "username": "u", "password": "p"})
    assert answer.body == {"type": "basic", "username": "u"}
    kinds = {c["type"] for c in api.get(f"/api/v1/devices/{body['id']}").body["credentials"]}
    assert kinds == {k.value for k in CredentialKind}


def test_put_credentials_errors(api: Api) -> None:
    """Bad credentials are 400, a credential of another device 409, an unknown device 404."""
    a = api.create_device("a", credentials={"type": "access_token", "token": "TA"})
    b = api.create_device("b")
    path = f"/api/v1/devices/{b['id']}/credentials"
    assert api.put(path, {"type": "psk", "identity": "i", "key": ""}).status == 400
    assert api.put(path, {"type": "basic"}).status == 400
    assert api.put(path, {"token": "x"}).status == 400
    assert api.put(path, {"type": "access_token", "token": "TA"}).status == 409
    assert api.put("/api/v1/devices/nope/credentials", {"type": "access_token"}).status == 404
    assert api.services.credentials.authenticate_token("TA").id == a["id"]
