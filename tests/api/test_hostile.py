"""
The API against hostile bodies and planted values (issue 15, items 5, 8
and 9): bodies refused before they are spooled, bad JSON as 400, every
request finished, tokens that could never authenticate refused, and wrong
credentials in C{GET /api/v1/status}.
"""

from __future__ import annotations

import json
from typing import Any, Optional, Sequence

import attrs
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.logger import globalLogPublisher

from gateway.api.app import build_api
from gateway.api.ota import MAX_PACKAGE
from gateway.api.router import MAX_BODY
from gateway.api.site import ApiSite
from gateway.domain.model import Attribute, AttributeScope
from gateway.service.build import Services, build_services
from gateway.store.memory import MemoryStore
from tests.service.conftest import FAST_HASHER, result

from .conftest import KEY, Api


@attrs.define
class PlantedStore(MemoryStore):
    """Answers a lone surrogate among the attributes, as a database written before the check."""

    def get_attributes(
        self, device_id: str, scope: AttributeScope, keys: Optional[Sequence[str]] = None
    ) -> "Deferred[list[Attribute]]":
        d = super().get_attributes(device_id, scope, keys)
        if scope is AttributeScope.SHARED:
            d.addCallback(lambda found: [*found, Attribute(scope, "planted", "\ud800", 1)])
        return d


def test_planted_value_answers_500_and_the_api_goes_on(clock: Clock) -> None:
    """A stored value JSON cannot encode finishes its request with a 500; the API still answers."""
    services = result(build_services(PlantedStore(), clock, FAST_HASHER))
    api = Api(build_api(services, KEY), services, clock)
    device = api.create_device("d")
    events: list[dict[str, Any]] = []
    globalLogPublisher.addObserver(events.append)
    try:
        answer = api.get(f"/api/v1/devices/{device['id']}/attributes")
    finally:
        globalLogPublisher.removeObserver(events.append)
    assert (answer.status, answer.body) == (500, {"error": "internal error"})
    assert len([e for e in events if e.get("log_failure") is not None]) == 1
    assert api.get("/healthz").status == 200
    assert api.get(f"/api/v1/devices/{device['id']}").status == 200


def test_nested_and_surrogate_bodies_are_400(api: Api) -> None:
    """A body nested past the parser's depth, or with a lone surrogate escape, is a 400."""
    device = api.create_device("d")
    path = f"/api/v1/devices/{device['id']}/attributes/shared"
    deep = api.post(path, data=b"[" * 100_000 + b"]" * 100_000)
    assert deep.status == 400
    assert deep.body == {"error": "the body is not valid JSON: nested too deeply"}
    lone = api.post(path, data=b'{"k":"\\ud800"}')
    assert lone.status == 400
    assert lone.body == {"error": "invalid Unicode: lone surrogate at character 6"}
    assert result(
        api.services.attributes.get_attributes(device["id"], AttributeScope.SHARED)
    ) == []


def test_tokens_with_a_slash_refused_at_creation(api: Api) -> None:
    """A token holding '/' could never authenticate over CoAP: creating or setting it is a 400."""
    refusal = {"error": "an access token must not contain '/' or be '.' or '..'"}
    created = api.post(
        "/api/v1/devices", {"name": "d", "credentials": {"type": "access_token", "token": "a/b"}}
    )
    assert (created.status, created.body) == (400, refusal)
    device = api.create_device("e")
    answer = api.put(
        f"/api/v1/devices/{device['id']}/credentials",
        {"type": "access_token", "token": "a/b"},
    )
    assert (answer.status, answer.body) == (400, refusal)
    assert [d["name"] for d in api.get("/api/v1/devices").body["devices"]] == ["e"]


def test_status_counts_wrong_credentials_per_source(api: Api) -> None:
    """GET /api/v1/status shows the wrong credentials of each source, behind the key."""
    for _ in range(11):
        if api.services.devices.source_throttled("10.0.0.7") is None:
            api.services.devices.report_wrong_credentials("10.0.0.7")
    api.services.devices.report_wrong_credentials("10.0.0.8")
    assert api.get("/api/v1/status", key=None).status == 401
    answer = api.get("/api/v1/status")
    assert answer.status == 200
    assert answer.body == {"wrong_credentials": {"total": 11, "throttled": 1, "sources": [
        {"source": "10.0.0.7", "wrong": 10, "throttled": 1, "retry_after": 6},
        {"source": "10.0.0.8", "wrong": 1, "throttled": 0, "retry_after": None},
    ]}}


# -- bodies refused before they are read ---------------------------------------


def _connect(services: Services) -> tuple[Any, StringTransport]:
    site = ApiSite(build_api(services, KEY))
    site.timeOut = None  # no idle timer on the global reactor
    channel = site.buildProtocol(None)
    transport = StringTransport()
    channel.makeConnection(transport)
    return channel, transport


def _head(
    length: Optional[int], key: Optional[str] = None, target: bytes = b"/api/v1/devices"
) -> bytes:
    lines = [b"POST " + target + b" HTTP/1.1", b"Host: gateway"]
    lines.append(b"Content-Type: application/json")
    framing = b"Transfer-Encoding: chunked" if length is None else b"Content-Length: %d" % length
    lines.append(framing)
    if key is not None:
        lines.append(b"Authorization: Bearer " + key.encode())
    return b"\r\n".join(lines) + b"\r\n\r\n"


def _code(transport: StringTransport) -> int:
    return int(transport.value().split(b" ", 2)[1])


def _refusal(transport: StringTransport) -> tuple[int, Any]:
    """The status and JSON body of an early refusal (sent with a Content-Length)."""
    body = transport.value().partition(b"\r\n\r\n")[2]
    return _code(transport), json.loads(body)


def test_body_without_key_refused_before_it_is_read(services: Services) -> None:
    """A 100 MB body without the key is a 401 on the headers alone; none of it is kept."""
    channel, transport = _connect(services)
    channel.dataReceived(_head(100 * 1024 * 1024, key="wrong"))
    assert _refusal(transport) == (401, {
        "error": "a valid 'Authorization: Bearer <key>' header is required"
    })
    assert transport.disconnecting
    channel.dataReceived(b"x" * 65536)
    # The HTTP/1.1 channel inside twisted.web's protocol switcher holds the request.
    assert channel._channel.requests[-1].content.read() == b""
    assert result(services.registry.list_devices()) == []


def test_body_over_the_limit_refused_before_it_is_read(services: Services) -> None:
    """With the key, a Content-Length over the limit is a 413 at once and the connection closes."""
    channel, transport = _connect(services)
    channel.dataReceived(_head(MAX_BODY + 1, key=KEY))
    assert _refusal(transport) == (413, {"error": f"the body is larger than {MAX_BODY} bytes"})
    assert transport.disconnecting


def test_an_ota_upload_has_its_own_limit_on_the_headers(services: Services) -> None:
    """An OTA upload is refused on its headers only above MAX_PACKAGE, other routes above 1 MiB."""
    upload = b"/api/v1/ota/packages?title=fw&version=1"
    channel, transport = _connect(services)
    channel.dataReceived(_head(MAX_PACKAGE + 1, key=KEY, target=upload))
    assert _refusal(transport) == (413, {"error": f"the body is larger than {MAX_PACKAGE} bytes"})
    channel, transport = _connect(services)
    channel.dataReceived(_head(MAX_BODY + 1, key=KEY, target=upload))
    assert transport.value() == b"" and not transport.disconnecting  # reading on


def test_chunked_body_counted_as_it_comes(services: Services) -> None:
    """A chunked body is refused with 413 once it passes the limit, and no handler runs."""
    channel, transport = _connect(services)
    channel.dataReceived(_head(None, key=KEY))
    chunk = b"x" * 65536
    for _ in range(MAX_BODY // len(chunk) + 1):
        channel.dataReceived(b"%x\r\n%s\r\n" % (len(chunk), chunk))
    assert _code(transport) == 413
    channel.dataReceived(b"0\r\n\r\n")
    assert result(services.registry.list_devices()) == []


def test_body_with_key_within_the_limit_is_served(services: Services) -> None:
    """The early checks let an authorised body within the limit through to its handler."""
    channel, transport = _connect(services)
    body = b'{"name":"d"}'
    channel.dataReceived(_head(len(body), key=KEY) + body)
    assert _code(transport) == 201
    assert [d.name for d in result(services.registry.list_devices())] == ["d"]
