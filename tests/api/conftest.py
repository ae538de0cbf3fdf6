"""
Fixtures: the API resource over the in-memory service layer, driven in
memory with L{treq.testing.StubTreq} (no sockets).
"""

from __future__ import annotations

import json
from typing import Any, Optional

import attrs
import pytest
from treq.testing import StubTreq
from twisted.internet.task import Clock

from gateway.api.app import build_api
from gateway.api.router import Router
from gateway.service.build import Services
from tests.service.conftest import result

KEY = "test-api-key"
BASE = "http://gateway.invalid"


@attrs.frozen
class Answer:
    status: int
    body: Any
    headers: dict[str, list[str]]
    raw: bytes

    def header(self, name: str) -> Optional[str]:
        values = self.headers.get(name.lower())
        return values[0] if values else None


@attrs.define
class Api:
    """Requests to the API resource, answered synchronously."""

    router: Router
    services: Services
    clock: Clock
    stub: StubTreq = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self.stub = StubTreq(self.router)

    def request(
        self,
        method: str,
        path: str,
        json_body: Any = None,
        *,
        data: Optional[bytes] = None,
        key: Optional[str] = KEY,
        content_type: Optional[str] = "application/json",
        params: Optional[dict[str, str]] = None,
    ) -> Answer:
        headers: dict[bytes, list[bytes]] = {}
        if key is not None:
            headers[b"Authorization"] = [b"Bearer " + key.encode()]
        if json_body is not None:
            data = json.dumps(json_body).encode()
        if data is not None and content_type is not None:
            headers[b"Content-Type"] = [content_type.encode()]
        d = self.stub.request(method, BASE + path, headers=headers, data=data, params=params)
        self.stub.flush()
        response = result(d)
        d2 = response.content()
        self.stub.flush()
        raw = result(d2)
        body = json.loads(raw) if raw else None
        headers_out = {
            k.decode().lower(): [v.decode() for v in vs]
            for k, vs in response.headers.getAllRawHeaders()
        }
        return Answer(response.code, body, headers_out, raw)

    def get(self, path: str, **kw: Any) -> Answer:
        return self.request("GET", path, **kw)

    def post(self, path: str, body: Any = None, **kw: Any) -> Answer:
        return self.request("POST", path, body, **kw)

    def put(self, path: str, body: Any = None, **kw: Any) -> Answer:
        return self.request("PUT", path, body, **kw)

    def patch(self, path: str, body: Any = None, **kw: Any) -> Answer:
        return self.request("PATCH", path, body, **kw)

    def delete(self, path: str, **kw: Any) -> Answer:
        return self.request("DELETE", path, **kw)

    def create_device(self, name: str, **fields: Any) -> dict[str, Any]:
        answer = self.post("/api/v1/devices", {"name": name, **fields})
        assert answer.status == 201, answer.body
        return answer.body  # type: ignore[no-any-return]


@pytest.fixture
def api(services: Services, clock: Clock) -> Api:
    return Api(build_api(services, KEY), services, clock)
