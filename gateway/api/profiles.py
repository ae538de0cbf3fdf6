# -*- test-case-name: tests.api.test_profiles -*-
"""
Routes for device profiles.  The C{default} profile always exists and
cannot be deleted (409).
"""

from __future__ import annotations

import enum
from typing import Any

import attrs

from gateway.api.jsonio import ApiError, expect_object, optional_int, require_str
from gateway.api.router import Call, Reply, Route
from gateway.api.schemas import ref
from gateway.domain.model import PayloadFormat, PowerMode, Profile, ProvisionStrategy
from gateway.service.build import Services

__all__ = ["profile_json", "profile_changes", "profile_routes"]

BASE = "/api/v1/profiles"

_ENUMS: dict[str, type[enum.Enum]] = {
    "payload_format": PayloadFormat,
    "power_mode": PowerMode,
    "provisioning": ProvisionStrategy,
}
_TIMERS = ("psm_activity_timer", "edrx_cycle", "paging_transmission_window")
_FLAGS = ("strict_json",)
FIELDS = tuple(f.name for f in attrs.fields(Profile))


def profile_json(profile: Profile) -> dict[str, Any]:
    body: dict[str, Any] = {}
    for name in FIELDS:
        value = getattr(profile, name)
        body[name] = value.value if isinstance(value, enum.Enum) else value
    return body


def profile_changes(obj: dict[str, Any]) -> dict[str, Any]:
    """Profile fields (but the name) of a checked JSON object."""
    changes: dict[str, Any] = {}
    for name, value in obj.items():
        if name == "name":
            continue
        if name in _ENUMS:
            kind = _ENUMS[name]
            try:
                changes[name] = kind(value)
            except ValueError:
                choices = ", ".join(str(m.value) for m in kind)
                raise ApiError(400, f"{name!r} must be one of {choices}") from None
        elif name in _TIMERS:
            changes[name] = optional_int(obj, name)
        elif name in _FLAGS:
            if not isinstance(value, bool):
                raise ApiError(400, f"{name!r} must be true or false")
            changes[name] = value
        elif value is not None and not isinstance(value, str):
            raise ApiError(400, f"{name!r} must be a string or null")
        else:
            changes[name] = value
    return changes


def profile_routes(services: Services) -> list[Route]:
    registry = services.registry

    async def create(call: Call) -> Reply:
        obj = expect_object(call.body, FIELDS, ("name",))
        profile = Profile(require_str(obj, "name"), **profile_changes(obj))
        created = await registry.create_profile(profile)
        return Reply(201, profile_json(created), {"Location": f"{BASE}/{profile.name}"})

    async def list_(call: Call) -> Reply:
        profiles = await registry.list_profiles()
        return Reply(200, {"profiles": [profile_json(p) for p in profiles]})

    async def show(call: Call) -> Reply:
        return Reply(200, profile_json(await registry.get_profile(call.params["name"])))

    async def patch(call: Call) -> Reply:
        name = call.params["name"]
        obj = expect_object(call.body, FIELDS)
        if obj.get("name", name) != name:
            raise ApiError(400, "a profile cannot be renamed")
        current = await registry.get_profile(name)
        updated = await registry.update_profile(attrs.evolve(current, **profile_changes(obj)))
        return Reply(200, profile_json(updated))

    async def delete(call: Call) -> Reply:
        await registry.delete_profile(call.params["name"])
        return Reply(204)

    one = BASE + "/{name}"
    return [
        Route("POST", BASE, create, "Create a profile", "profiles", status=201,
              request=ref("Profile"), response=ref("Profile")),
        Route("GET", BASE, list_, "List profiles", "profiles", response=ref("ProfileList")),
        Route("GET", one, show, "Show a profile", "profiles", response=ref("Profile")),
        Route("PATCH", one, patch, "Change some fields of a profile", "profiles",
              request=ref("ProfilePatch"), response=ref("Profile")),
        Route("DELETE", one, delete,
              "Delete a profile (not 'default', nor one in use: 409)", "profiles",
              status=204),
    ]
