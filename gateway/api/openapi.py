# -*- test-case-name: tests.api.test_openapi -*-
"""
The OpenAPI 3.0 document of the API, built from the same route table the
router serves, so the two cannot drift apart.
"""

from __future__ import annotations

from typing import Any, Sequence

import gateway
from gateway.api.router import Route
from gateway.api.schemas import COMPONENTS, ref

__all__ = ["openapi_document"]

_REASONS = {
    200: "OK",
    201: "Created",
    202: "Accepted: queued, not finished yet",
    204: "No content",
    400: "Bad JSON, argument or query parameter",
    401: "Missing or wrong bearer key",
    404: "No such route, device or profile",
    405: "Method not allowed on this path",
    409: "Conflict with existing state",
    413: "Body too large",
    415: "The body is not application/json",
    500: "Internal error (logged)",
}


def _error(status: int) -> dict[str, Any]:
    return {
        "description": _REASONS[status],
        "content": {"application/json": {"schema": ref("Error")}},
    }


def _operation(route: Route) -> dict[str, Any]:
    method = route.method.lower()
    op_id = method + "".join(
        s.strip("{}").replace("-", "_").title().replace("_", "")
        for s in route.segments
        if s not in ("api", "v1")
    )
    parameters: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in route.path_params
    ]
    parameters += [
        {
            "name": p.name,
            "in": "query",
            "required": p.required,
            "description": p.description,
            "schema": {"type": "string"},
        }
        for p in route.query
    ]
    success: dict[str, Any] = {"description": _REASONS.get(route.status, "OK")}
    if route.response is not None:
        success["content"] = {"application/json": {"schema": dict(route.response)}}
    responses: dict[str, Any] = {str(route.status): success}
    errors = [400, 404, 500] if route.public else [400, 401, 404, 405, 409, 500]
    if route.request is not None:
        errors += [413, 415]
    for status in sorted(errors):
        responses[str(status)] = _error(status)
    op: dict[str, Any] = {
        "operationId": op_id,
        "summary": route.summary,
        "tags": [route.tag],
        "responses": responses,
    }
    if parameters:
        op["parameters"] = parameters
    if route.request is not None:
        op["requestBody"] = {
            "required": True,
            "content": {
                "*/*" if route.raw_body else "application/json": {"schema": dict(route.request)}
            },
        }
    if route.public:
        op["security"] = []
    return op


def openapi_document(routes: Sequence[Route]) -> dict[str, Any]:
    """The OpenAPI 3.0.3 document describing C{routes}."""
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route)
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "coap-gateway northbound API",
            "version": getattr(gateway, "__version__", "0.1.0"),
            "description": (
                "Manage the devices, credentials, profiles, attributes, "
                "telemetry, RPCs and OTA packages of a coap-gateway. Every route but /healthz and "
                "/api/openapi.json needs 'Authorization: Bearer <key>'. "
                'Errors are {"error": "..."}.'
            ),
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": COMPONENTS,
        },
    }
