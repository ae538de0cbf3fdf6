"""
Tests for the OpenAPI document: valid OpenAPI 3.0, and the same set of
operations as the router serves.
"""

from __future__ import annotations

import re

from openapi_spec_validator import validate

from tests.api.conftest import Api


def test_document_is_valid_openapi(api: Api) -> None:
    """The served document passes the OpenAPI 3.0 validator."""
    validate(api.get("/api/openapi.json").body)


def test_document_lists_exactly_the_served_routes(api: Api) -> None:
    """Every route of the router is documented and every documented operation is served."""
    document = api.get("/api/openapi.json").body
    documented = {
        (method.upper(), path)
        for path, operations in document["paths"].items()
        for method in operations
    }
    served = {(r.method, r.path) for r in api.router.routes}
    assert documented == served
    for method, path in sorted(documented):
        concrete = re.sub(r"\{[^}]+\}", "x", path)
        answer = api.request(method, concrete, {} if method in ("POST", "PUT", "PATCH") else None)
        assert answer.status not in (405,), (method, path)
        assert answer.body != {"error": "no such route"}, (method, path)


def test_undocumented_method_is_not_served(api: Api) -> None:
    """A method absent from the document on a documented path is 405."""
    document = api.get("/api/openapi.json").body
    for path, operations in document["paths"].items():
        concrete = re.sub(r"\{[^}]+\}", "x", path)
        for method in ("get", "post", "put", "patch", "delete"):
            if method not in operations:
                answer = api.request(method.upper(), concrete, {} if method != "get" else None)
                assert answer.status == 405, (method, path)
