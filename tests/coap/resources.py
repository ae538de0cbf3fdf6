"""Small resources for the engine tests."""

from __future__ import annotations

from typing import Any

from twisted.internet import defer
from txthings import coap as tx

from gateway.coap import errors
from gateway.coap import numbers as n
from gateway.coap.resource import Resource


class Text(Resource):
    """GET answers its text; POST/PUT record the body and answer 2.04."""

    def __init__(self, text: bytes = b"hello", content_format: int | None = n.TEXT_PLAIN) -> None:
        super().__init__()
        self.text = text
        self.content_format = content_format
        self.received: list[Any] = []

    def render_GET(self, request: Any) -> Any:
        self.received.append(request)
        response = tx.Message(code=n.CONTENT, payload=self.text)
        if self.content_format is not None:
            response.opt.content_format = self.content_format
        return response

    def render_POST(self, request: Any) -> Any:
        self.received.append(request)
        return tx.Message(code=n.CHANGED, payload=str(len(request.payload)).encode())

    render_PUT = render_POST


class Observable(Text):
    observable = True


class Later(Resource):
    """Answers each GET when the test fires the Deferred it kept."""

    def __init__(self) -> None:
        super().__init__()
        self.pending: list[defer.Deferred[Any]] = []
        self.requests: list[Any] = []

    def render_GET(self, request: Any) -> Any:
        d: defer.Deferred[Any] = defer.Deferred()
        self.pending.append(d)
        self.requests.append(request)
        return d


class Broken(Resource):
    def render_GET(self, request: Any) -> Any:
        raise RuntimeError("secret payload must not be logged")

    def render_POST(self, request: Any) -> Any:
        return defer.fail(ValueError("deferred failure"))

    def render_PUT(self, request: Any) -> Any:
        raise errors.Forbidden("no")


class Option4209(Text):
    understood_options = frozenset({4209})


def tree(**children: Resource) -> Resource:
    root = Resource()
    for name, child in children.items():
        root.putChild(name.encode(), child)
    return root
