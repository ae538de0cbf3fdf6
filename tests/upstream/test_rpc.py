"""
Client-side RPCs forwarded to the application with treq (against an
in-memory twisted.web resource): JSON in, JSON out, errors as NoAnswer.
"""

from __future__ import annotations

import json
from typing import Any

import pytest_twisted
from treq.testing import StubTreq
from twisted.web.resource import Resource
from twisted.web.server import Request

from gateway.domain.errors import NoAnswer
from gateway.domain.model import Device
from gateway.upstream.rpc import RpcForwarder

DEVICE = Device("d1", "sensor", application="farm")


class App(Resource):
    """The application: records each call and answers with a fixed status and body."""

    isLeaf = True

    def __init__(self, status: int = 200, body: bytes = b'{"ok":true}') -> None:
        super().__init__()
        self.calls: list[Any] = []
        self.status = status
        self.body = body

    def render_POST(self, request: Request) -> bytes:
        assert request.content is not None
        self.calls.append((request.getHeader("content-type"), json.loads(request.content.read())))
        request.setResponseCode(self.status)
        return self.body


@pytest_twisted.ensureDeferred
async def test_posts_the_call_and_returns_the_json_answer() -> None:
    """The call is POSTed as JSON naming the device; the JSON answer is the reply."""
    app = App()
    forward = RpcForwarder(StubTreq(app), "http://app.invalid/rpc")
    assert await forward(DEVICE, "ping", {"n": 1}) == {"ok": True}
    assert app.calls == [(
        "application/json",
        {"device": {"id": "d1", "name": "sensor", "application": "farm"},
         "method": "ping", "params": {"n": 1}},
    )]


@pytest_twisted.ensureDeferred
async def test_error_status_or_non_json_is_no_answer() -> None:
    """A non-2xx status or a body that is not JSON is NoAnswer naming it."""
    for app, text in ((App(500, b"boom"), "HTTP 500"), (App(200, b"<html>"), "not JSON")):
        forward = RpcForwarder(StubTreq(app), "http://app.invalid/rpc")
        try:
            await forward(DEVICE, "m", None)
        except NoAnswer as e:
            assert text in e.message
        else:
            raise AssertionError("no NoAnswer")
