"""Tests for the profile routes of the API."""

from __future__ import annotations

from tests.api.conftest import Api


def test_default_profile_listed_and_undeletable(api: Api) -> None:
    """The default profile is always listed and deleting it is 409."""
    names = [p["name"] for p in api.get("/api/v1/profiles").body["profiles"]]
    assert names == ["default"]
    answer = api.delete("/api/v1/profiles/default")
    assert answer.status == 409
    assert "default" in answer.body["error"]


def test_create_show_patch_delete(api: Api) -> None:
    """A profile is created with its fields, shown, changed in part and deleted."""
    answer = api.post(
        "/api/v1/profiles",
        {
            "name": "nb",
            "payload_format": "protobuf",
            "telemetry_proto": 'syntax = "proto3"; message M {}',
            "power_mode": "psm",
            "psm_activity_timer": 10000,
        },
    )
    assert answer.status == 201
    assert answer.header("location") == "/api/v1/profiles/nb"
    assert answer.body["payload_format"] == "protobuf"
    assert answer.body["provisioning"] == "disabled"
    shown = api.get("/api/v1/profiles/nb").body
    assert shown == answer.body
    patched = api.patch(
        "/api/v1/profiles/nb",
        {
            "power_mode": "edrx",
            "edrx_cycle": 81920,
            "provisioning": "allow_create_new",
            "provision_key": "k",
            "provision_secret": "s",
        },
    ).body
    assert (patched["power_mode"], patched["edrx_cycle"], patched["psm_activity_timer"]) == (
        "edrx",
        81920,
        10000,
    )
    assert (api.delete("/api/v1/profiles/nb").status) == 204
    assert api.get("/api/v1/profiles/nb").status == 404


def test_profile_in_use_is_409(api: Api) -> None:
    """A profile a device uses cannot be deleted."""
    api.post("/api/v1/profiles", {"name": "p"})
    api.create_device("a", profile="p")
    assert api.delete("/api/v1/profiles/p").status == 409


def test_errors(api: Api) -> None:
    """Bad fields are 400, a taken name 409, unknown profiles 404, renaming 400."""
    assert api.post("/api/v1/profiles", {"name": "default"}).status == 409
    for body in (
        {},
        {"name": "x", "power_mode": "turbo"},
        {"name": "x", "edrx_cycle": -1},
        {"name": "x", "edrx_cycle": True},
        {"name": "x", "telemetry_proto": 5},
        {"name": "x", "provisioning": "allow_create_new"},
        {"name": "x", "colour": "red"},
    ):
        assert api.post("/api/v1/profiles", body).status == 400, body
    assert api.patch("/api/v1/profiles/nope", {"power_mode": "psm"}).status == 404
    assert api.patch("/api/v1/profiles/default", {"name": "other"}).status == 400
    assert api.delete("/api/v1/profiles/nope").status == 404


def test_strict_json_is_a_boolean(api: Api) -> None:
    """strict_json is off by default, set and cleared with booleans, and refused otherwise."""
    assert api.post("/api/v1/profiles", {"name": "s"}).body["strict_json"] is False
    assert api.patch("/api/v1/profiles/s", {"strict_json": True}).body["strict_json"] is True
    refused = api.patch("/api/v1/profiles/s", {"strict_json": "yes"})
    assert refused.status == 400
    assert refused.body["error"] == "'strict_json' must be true or false"
    assert api.get("/api/v1/profiles/s").body["strict_json"] is True


def test_bad_protobuf_schema_is_400_naming_it(api: Api) -> None:
    """A schema that does not compile is a 400 naming the schema field, its line and why."""
    bad = {
        "name": "pb",
        "payload_format": "protobuf",
        "rpc_request_proto": 'syntax = "proto3";\nmessage R { required string m = 1; }',
    }
    answer = api.post("/api/v1/profiles", bad)
    assert answer.status == 400
    assert answer.body["error"] == (
        "rpc_request_proto: rpc_request.proto, line 2: required fields are not allowed in proto3"
    )
    assert api.post("/api/v1/profiles", {"name": "pb", "payload_format": "protobuf"}).status == 201
    patch = {"telemetry_proto": 'syntax = "proto2"; message T {}'}
    refused = api.patch("/api/v1/profiles/pb", patch)
    assert (refused.status, refused.body["error"].split(":")[0]) == (400, "telemetry_proto")
    assert api.get("/api/v1/profiles/pb").body["telemetry_proto"] is None
