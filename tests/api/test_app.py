"""
Tests for the router conventions of L{gateway.api}: authentication, JSON
bodies, query parameters and error bodies.
"""

from __future__ import annotations

from typing import Any

import pytest
from treq.testing import StubTreq
from twisted.logger import capturedLogs

from gateway.api.router import MAX_BODY, Call, Reply, Route, Router
from tests.api.conftest import Api
from tests.service.conftest import result


def test_healthz_needs_no_key(api: Api) -> None:
    """GET /healthz answers {"status": "ok"} without a bearer key."""
    answer = api.get("/healthz", key=None)
    assert (answer.status, answer.body) == (200, {"status": "ok"})
    assert answer.header("content-type") == "application/json"


def test_openapi_needs_no_key(api: Api) -> None:
    """GET /api/openapi.json is public."""
    answer = api.get("/api/openapi.json", key=None)
    assert answer.status == 200
    assert answer.body["openapi"].startswith("3.0")


@pytest.mark.parametrize("key", [None, "wrong", ""])
def test_missing_or_wrong_key_is_401(api: Api, key: Any) -> None:
    """A request without the right bearer key gets 401 and a WWW-Authenticate challenge."""
    answer = api.get("/api/v1/devices", key=key)
    assert answer.status == 401
    assert "error" in answer.body
    assert (answer.header("www-authenticate") or "").startswith("Bearer")


def test_other_scheme_is_401(api: Api) -> None:
    """Basic authentication carrying the key is not accepted."""
    d = api.stub.get(
        "http://gateway.invalid/api/v1/devices", headers={b"Authorization": [b"Basic test-api-key"]}
    )
    api.stub.flush()
    assert result(d).code == 401


def test_unknown_route_is_404_after_authentication(api: Api) -> None:
    """An unknown path is 401 without the key and 404 with it, so routes are not probed."""
    assert api.get("/api/v1/nothing", key=None).status == 401
    answer = api.get("/api/v1/nothing")
    assert (answer.status, answer.body) == (404, {"error": "no such route"})


def test_wrong_method_is_405_with_allow(api: Api) -> None:
    """A known path with another method gets 405 and lists the allowed methods."""
    answer = api.put("/api/v1/devices", {"name": "x"})
    assert answer.status == 405
    assert answer.header("allow") == "GET, POST"
    assert "error" in answer.body


def test_non_json_body_is_415(api: Api) -> None:
    """A body that is not application/json gets 415."""
    answer = api.post("/api/v1/devices", data=b"name=x", content_type="text/plain")
    assert answer.status == 415
    assert answer.body == {"error": "the body must be application/json"}


def test_json_with_charset_is_accepted(api: Api) -> None:
    """application/json with a charset parameter is JSON."""
    answer = api.post(
        "/api/v1/devices", data=b'{"name": "x"}', content_type="application/json; charset=utf-8"
    )
    assert answer.status == 201


def test_bad_json_is_400(api: Api) -> None:
    """Malformed JSON gets 400 naming the problem."""
    answer = api.post("/api/v1/devices", data=b"{nope")
    assert answer.status == 400
    assert answer.body["error"].startswith("the body is not valid JSON")


def test_empty_body_is_400(api: Api) -> None:
    """A route that takes a body rejects an empty one with 400."""
    assert api.post("/api/v1/devices", data=b"").status == 400


def test_body_too_large_is_413(api: Api) -> None:
    """A body above the limit gets 413."""
    answer = api.post("/api/v1/devices", data=b" " * (MAX_BODY + 1))
    assert answer.status == 413


def test_unknown_query_parameter_is_400(api: Api) -> None:
    """A misspelt query parameter is reported instead of ignored."""
    answer = api.get("/api/v1/devices", params={"nmae": "x"})
    assert (answer.status, answer.body) == (400, {"error": "unknown query parameter 'nmae'"})


def test_unexpected_error_is_500_logged_once() -> None:
    """A handler failing with an unexpected exception gets 500 and one logged failure."""
    async def boom(call: Call) -> Reply:
        raise RuntimeError("secret detail")

    router = Router([Route("GET", "/boom", boom, "fails", "test")], "k")
    stub = StubTreq(router)
    with capturedLogs() as events:
        d = stub.get("http://x/boom", headers={b"Authorization": [b"Bearer k"]})
        stub.flush()
        response = result(d)
        body = result(response.json())
    assert response.code == 500
    assert body == {"error": "internal error"}
    failures = [e for e in events if "log_failure" in e]
    assert len(failures) == 1
    assert failures[0]["path"] == "/boom"


def test_router_needs_a_key() -> None:
    """A router cannot be built with an empty key."""
    with pytest.raises(ValueError):
        Router([], "")


def test_percent_encoded_segments_are_decoded(api: Api) -> None:
    """Path parameters are percent-decoded before they reach the handler."""
    api.post("/api/v1/profiles", {"name": "a b"})
    answer = api.get("/api/v1/profiles/a%20b")
    assert (answer.status, answer.body["name"]) == (200, "a b")
