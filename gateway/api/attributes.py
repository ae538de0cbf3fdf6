# -*- test-case-name: tests.api.test_attributes -*-
"""
Routes for device attributes.  The API writes the shared and server scopes;
the client scope is the device's own and is read-only here.  A shared change
reaches observing devices through the L{AttributeService}'s subscribers.
"""

from __future__ import annotations

from typing import Any

from gateway.api.jsonio import ApiError, split_keys
from gateway.api.router import Call, Param, Reply, Route
from gateway.api.schemas import ref
from gateway.domain.model import AttributeScope
from gateway.service.build import Services

__all__ = ["attribute_routes"]

BASE = "/api/v1/devices/{id}/attributes"

_WRITABLE = (AttributeScope.SHARED, AttributeScope.SERVER)


def _scope(text: str, writable: bool) -> AttributeScope:
    try:
        scope = AttributeScope(text)
    except ValueError:
        raise ApiError(400, f"unknown attribute scope {text!r}") from None
    if writable and scope not in _WRITABLE:
        raise ApiError(400, "only the shared and server scopes can be written")
    return scope


def attribute_routes(services: Services) -> list[Route]:
    attributes = services.attributes

    async def get(call: Call) -> Reply:
        device_id = call.params["id"]
        keys = split_keys(call.query.get("keys"))
        scope = call.query.get("scope")
        scopes = list(AttributeScope) if scope is None else [_scope(scope, False)]
        body: dict[str, Any] = {}
        for s in scopes:
            found = await attributes.get_attributes(device_id, s, keys)
            body[s.value] = {a.key: a.value for a in found}
        return Reply(200, body)

    async def set_(call: Call) -> Reply:
        scope = _scope(call.params["scope"], True)
        values = call.body
        if not isinstance(values, dict):
            raise ApiError(400, "body must be a JSON object of attribute key to value")
        await attributes.set_attributes(call.params["id"], scope, values)
        return Reply(200, {"scope": scope.value, "updated": sorted(values)})

    async def delete(call: Call) -> Reply:
        scope = _scope(call.params["scope"], True)
        keys = split_keys(call.query.get("keys"))
        assert keys is not None  # a required parameter
        gone = await attributes.delete_attributes(call.params["id"], scope, keys)
        return Reply(200, {"scope": scope.value, "deleted": sorted(gone)})

    keys = Param("keys", "Comma-separated keys (default: all).")
    return [
        Route(
            "GET", BASE, get, "Read attributes (all scopes, or ?scope=)", "attributes",
            query=(Param("scope", "client, shared or server."), keys),
            response=ref("Attributes"),
        ),
        Route(
            "POST", BASE + "/{scope}", set_,
            "Set shared or server attributes (shared ones are pushed to devices)",
            "attributes", request=ref("AttributeValues"), response=ref("AttributesUpdated"),
        ),
        Route(
            "DELETE", BASE + "/{scope}", delete, "Delete shared or server attributes",
            "attributes",
            query=(Param("keys", "Comma-separated keys to delete.", required=True),),
            response=ref("AttributesDeleted"),
        ),
    ]
