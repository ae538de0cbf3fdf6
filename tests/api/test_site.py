"""The API site's access log."""

from __future__ import annotations

from twisted.logger import globalLogPublisher
from twisted.web.resource import Resource
from twisted.web.test.requesthelper import DummyRequest

from gateway.api.site import ApiSite


def test_request_logged_as_structured_debug_event() -> None:
    """A finished request is logged once as a debug event with method, path and code."""
    events: list[dict] = []
    globalLogPublisher.addObserver(events.append)
    try:
        request = DummyRequest([b"healthz"])
        request.method = b"GET"
        request.uri = b"/healthz"
        request.code = 200
        ApiSite(Resource()).log(request)
    finally:
        globalLogPublisher.removeObserver(events.append)
    [event] = [e for e in events if e.get("log_namespace") == "gateway.api.access"]
    assert (event["method"], event["uri"], event["code"]) == ("GET", "/healthz", 200)
    assert event["log_level"].name == "debug"
