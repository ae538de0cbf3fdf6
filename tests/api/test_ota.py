"""The OTA routes: upload, list, show, delete, assign, unassign and device status."""

from __future__ import annotations

import hashlib
from typing import Any

from gateway.api.ota import MAX_PACKAGE
from gateway.api.router import MAX_BODY
from tests.api.conftest import Api

PACKAGES = "/api/v1/ota/packages"
BODY = b"\x7fELF firmware" * 100


def _upload(api: Api, body: bytes = BODY, **params: str) -> Any:
    query = {"title": "fw", "version": "1.0", **params}
    return api.request("POST", PACKAGES, data=body, content_type="application/x-fw", params=query)


def test_upload_list_show(api: Api) -> None:
    """An upload answers 201 with the computed checksum and content type, then lists and shows."""
    answer = _upload(api)
    assert answer.status == 201, answer.body
    assert answer.body == {
        "type": "firmware", "title": "fw", "version": "1.0",
        "checksum": hashlib.sha256(BODY).hexdigest(), "checksum_algorithm": "SHA256",
        "size": len(BODY), "content_type": "application/x-fw", "created": answer.body["created"],
    }
    assert api.get(PACKAGES).body == {"packages": [answer.body]}
    assert api.get(PACKAGES, params={"type": "software"}).body == {"packages": []}
    assert api.get(PACKAGES + "/firmware/fw/1.0").body == answer.body
    assert api.get(PACKAGES + "/firmware/fw/2.0").status == 404
    assert api.get(PACKAGES + "/hardware/fw/1.0").status == 404


def test_upload_checks_given_checksum_and_arguments(api: Api) -> None:
    """A wrong given checksum, an unknown algorithm or type, or no title is a 400 saying why."""
    md5 = hashlib.md5(BODY).hexdigest()
    assert _upload(api, algorithm="MD5", checksum=md5, type="software").status == 201
    wrong = _upload(api, checksum="00")
    assert wrong.status == 400 and "checksum" in wrong.body["error"]
    assert "algorithm" in _upload(api, algorithm="SHA1").body["error"]
    assert _upload(api, type="hardware").status == 400
    no_title = api.request("POST", PACKAGES, data=BODY, params={"version": "1"})
    assert no_title.status == 400
    assert _upload(api, algorithm="MD5", type="software").status == 409


def test_assign_unassign_and_status(api: Api) -> None:
    """Assigning pushes fw_* shared attributes; status shows it and the reported fw_state."""
    device = api.create_device("d1")
    path = f"/api/v1/devices/{device['id']}/ota/firmware"
    _upload(api)
    assert api.put(path, {"title": "fw", "version": "9"}).status == 404
    answer = api.put(path, {"title": "fw", "version": "1.0"})
    assert answer.status == 200
    assert answer.body["target_type"] == "device"
    shared = api.get(f"/api/v1/devices/{device['id']}/attributes",
                     params={"scope": "shared"}).body["shared"]
    assert shared["fw_version"] == "1.0"
    status = api.get(f"/api/v1/devices/{device['id']}/ota").body
    assert status["firmware"]["package"]["version"] == "1.0"
    assert status["firmware"]["assigned_by"] == "device"
    assert status["software"] == {
        "package": None, "assigned_by": None, "state": None, "state_ts": None,
    }
    assert api.delete(PACKAGES + "/firmware/fw/1.0").status == 409
    assert api.get("/api/v1/ota/assignments").body["assignments"] == [answer.body]
    assert api.delete(path).status == 204
    assert api.delete(path).status == 404
    assert api.delete(PACKAGES + "/firmware/fw/1.0").status == 204


def test_profile_assignment(api: Api) -> None:
    """A profile's assignment reaches its devices and can be removed."""
    device = api.create_device("d1")
    _upload(api)
    path = "/api/v1/profiles/default/ota/firmware"
    assert api.put(path, {"title": "fw", "version": "1.0"}).status == 200
    status = api.get(f"/api/v1/devices/{device['id']}/ota").body
    assert status["firmware"]["assigned_by"] == "profile"
    assert api.put("/api/v1/profiles/nope/ota/firmware",
                   {"title": "fw", "version": "1.0"}).status == 404
    assert api.delete(path).status == 204
    assert api.get("/api/v1/devices/nope/ota").status == 404


def test_ota_routes_need_the_key(api: Api) -> None:
    """Every OTA route needs the API key."""
    assert api.get(PACKAGES, key=None).status == 401
    no_key = api.request(
        "POST", PACKAGES, data=BODY, key=None, params={"title": "a", "version": "1"}
    )
    assert no_key.status == 401
    assert api.get(PACKAGES).body == {"packages": []}


def test_profile_change_through_the_api_updates_the_attributes(api: Api) -> None:
    """PATCHing a device onto a profile with a package pushes that package's fw_* attributes."""
    assert api.post("/api/v1/profiles", {"name": "p"}).status == 201
    device = api.create_device("d1")
    _upload(api)
    api.put("/api/v1/profiles/p/ota/firmware", {"title": "fw", "version": "1.0"})
    assert api.patch(f"/api/v1/devices/{device['id']}", {"profile": "p"}).status == 200
    shared = api.get(f"/api/v1/devices/{device['id']}/attributes",
                     params={"scope": "shared"}).body["shared"]
    assert shared["fw_title"] == "fw"


def test_packages_may_be_larger_than_other_bodies(api: Api) -> None:
    """An upload takes up to MAX_PACKAGE bytes, beyond the 1 MiB of other routes; more is 413."""
    big = bytes(range(256)) * (2 * MAX_BODY // 256)
    answer = _upload(api, body=big)
    assert answer.status == 201 and answer.body["size"] == len(big), answer.body
    assert api.post("/api/v1/devices", data=b" " * len(big)).status == 413
    too_big = _upload(api, body=b"x" * (MAX_PACKAGE + 1), version="2.0")
    assert too_big.status == 413
    assert too_big.body == {"error": f"the body is larger than {MAX_PACKAGE} bytes"}
