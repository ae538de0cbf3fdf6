"""
The Drogue dialect over the engine: publishes on /v1/{channel}, every form
of authentication, the event's shape, and commands waiting on C{ct}.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from twisted.internet.task import Clock

from gateway.coap import codec
from gateway.coap import numbers as n
from gateway.coap.layer import MessageLayer
from gateway.coap.peer import PeerIdentity
from gateway.coap.resource import Resource
from gateway.dialects.drogue import DrogueDialect
from gateway.dialects.drogue.shape import DROGUE_SHAPE, encode
from gateway.service.build import Services, memory_services
from tests.coap.support import PEER, Engine, FakeTransport, request
from tests.service.conftest import FAST_HASHER, result
from tests.service.test_registry import CERT_PEM

from .test_thingsboard import DTLSPeer

AUTH = 4209
BASIC = b"Basic " + base64.b64encode(b"device1@example-app:hey-rodney")


class Drogue:
    """The engine serving the Drogue dialect, with device1 of example-app."""

    def __init__(self, clock: Clock, services: Services) -> None:
        self.clock = clock
        self.services = services
        self.root = Resource()
        DrogueDialect(max_command_timeout=30).install(
            self.root, services.devices.for_dialect("drogue"), clock
        )
        self.transport = FakeTransport()
        self.server = Engine(MessageLayer(self.root, clock), self.transport)
        self.mid = 0
        registry = services.registry
        self.device = result(registry.create_device("device1", application="example-app")).device
        result(registry.set_basic(self.device.id, "device1", "hey-rodney"))

    def send(
        self, path: str, payload: bytes = b"", options: tuple[tuple[int, Any], ...] = (),
        code: int = n.POST, mtype: int = n.CON,
    ) -> list[Any]:
        self.mid += 1
        self.server.feed(request(code, path, mtype, self.mid, b"t", payload, options), PEER)
        return self.transport.take()

    def ask(self, path: str, payload: bytes = b"", **kwargs: Any) -> Any:
        (response,) = self.send(path, payload, **kwargs)
        return response

    def events(self) -> list[dict[str, Any]]:
        return [e["event"] for e in result(self.services.events.events())]


@pytest.fixture
def drogue(clock: Clock) -> Drogue:
    services = result(memory_services(clock, FAST_HASHER, shapes={"drogue": DROGUE_SHAPE}))
    return Drogue(clock, services)


def q(text: str) -> tuple[int, bytes]:
    return (n.URI_QUERY, text.encode())


def test_documented_publish_is_changed_and_shaped_as_drogue(drogue: Drogue) -> None:
    """Drogue's documented 4209 publish gets 2.04 and one event in Drogue's shape."""
    response = drogue.ask("v1/foo", b'{"temp": 21}', options=((AUTH, BASIC),))
    assert (response.mtype, response.code, response.payload) == (n.ACK, n.CHANGED, b"")
    (event,) = drogue.events()
    assert event["type"] == "io.drogue.event.v1"
    assert event["source"] == "drogue://example-app/device1"
    assert event["subject"] == "foo"
    assert (event["application"], event["device"], event["sender"]) == (
        "example-app", "device1", "device1",
    )
    assert event["partitionkey"] == "example%2Dapp/device1"
    assert event["datacontenttype"] == "application/json"
    assert event["data"] == {"temp": 21}
    assert "instance" in event


def test_device_names_are_percent_encoded_as_rust_does() -> None:
    """Every byte but ASCII letters and digits is percent-encoded in source and partition key."""
    assert encode("dev-1_ä") == "dev%2D1%5F%C3%A4"


def test_query_options_are_all_read_and_percent_decoded(drogue: Drogue) -> None:
    """Each Uri-Query option counts, decoded: data_schema and the suffix reach the event."""
    response = drogue.ask(
        "v1/state/room/1", b"raw",
        options=((n.CONTENT_FORMAT, 42), q("application=example-app"), q("device=device1"),
                 q("data_schema=urn%3Aschema"), (AUTH, b"Basic "
                 + base64.b64encode(b"device1:hey-rodney"))),
    )
    assert response.code == n.CHANGED
    (event,) = drogue.events()
    assert (event["subject"], event["subjectsuffix"], event["dataschema"]) == (
        "state", "room/1", "urn:schema",
    )
    assert event["datacontenttype"] == "application/octet-stream"
    assert base64.b64decode(event["data_base64"]) == b"raw"


@pytest.mark.parametrize(
    ("queries", "user"),
    [
        ((), b"device1@example-app"),
        (("application=example-app",), b"device1"),
        (("application=example-app", "device=device1"), b"device1"),
        (("device=device1",), b"device1@example-app"),
    ],
)
def test_each_basic_form_of_the_table(
    drogue: Drogue, queries: tuple[str, ...], user: bytes
) -> None:
    """Each option-4209 row of Drogue's table authenticates the device."""
    basic = b"Basic " + base64.b64encode(user + b":hey-rodney")
    options = (*(q(text) for text in queries), (AUTH, basic))
    assert drogue.ask("v1/t", b"{}", options=options).code == n.CHANGED


@pytest.mark.parametrize(
    "value",
    [
        b"Basic " + base64.b64encode(b"device1@example-app:wrong"),
        b"Basic " + base64.b64encode(b"device1:hey-rodney"),
        b"Bearer abc",
        b"Basic !!!",
    ],
)
def test_failed_credentials_are_forbidden(drogue: Drogue, value: bytes) -> None:
    """A wrong password, an unscoped user, another scheme or bad base64 is 4.03 as Drogue says."""
    response = drogue.ask("v1/t", b"{}", options=((AUTH, value),))
    assert (response.code, response.payload) == (n.FORBIDDEN, b"Authentication failed")
    assert drogue.events() == []


def test_no_credentials_is_unauthorized(drogue: Drogue) -> None:
    """A publish without 4209 or a DTLS identity is 4.01."""
    assert drogue.ask("v1/t", b"{}").code == n.UNAUTHORIZED


def test_psk_identity_device_at_app(drogue: Drogue) -> None:
    """A PSK session whose identity is device@app publishes; 4209 on it is refused."""
    result(drogue.services.registry.set_psk(drogue.device.id, "device1@example-app", b"k" * 16))
    peer = DTLSPeer(PeerIdentity("psk", "device1@example-app"))
    drogue.server.layer.receive(peer, request(n.POST, "v1/t", mid=500, payload=b"{}"))
    drogue.server.layer.receive(
        peer, request(n.POST, "v1/t", mid=501, payload=b"{}", options=((AUTH, BASIC),))
    )
    assert [codec.decode(d).code for d in peer.sent] == [n.CHANGED, n.FORBIDDEN]


def test_psk_identity_must_name_the_device(drogue: Drogue) -> None:
    """A PSK identity that is not the device's device@app is 4.03."""
    result(drogue.services.registry.set_psk(drogue.device.id, "psk-7", b"k" * 16))
    peer = DTLSPeer(PeerIdentity("psk", "psk-7"))
    drogue.server.layer.receive(peer, request(n.POST, "v1/t", mid=502, payload=b"{}"))
    assert codec.decode(peer.sent[0]).code == n.FORBIDDEN


def test_x509_certificate_of_the_device(drogue: Drogue) -> None:
    """A session whose client certificate is registered for the device publishes."""
    digest = result(drogue.services.registry.set_certificate(drogue.device.id, CERT_PEM))
    peer = DTLSPeer(PeerIdentity("x509", digest))
    drogue.server.layer.receive(peer, request(n.POST, "v1/t", mid=503, payload=b"{}"))
    stranger = DTLSPeer(PeerIdentity("x509", "0" * 64))
    drogue.server.layer.receive(stranger, request(n.POST, "v1/t", mid=504, payload=b"{}"))
    assert codec.decode(peer.sent[0]).code == n.CHANGED
    assert codec.decode(stranger.sent[0]).code == n.FORBIDDEN


def gateway_of(drogue: Drogue, allowed: bool) -> None:
    """gw1 (password gw-pass) and device2, which lists gw1 as its gateway if C{allowed}."""
    registry = drogue.services.registry
    gw = result(registry.create_device("gw1", application="example-app")).device
    result(registry.set_basic(gw.id, "gw1", "gw-pass"))
    result(registry.create_device(
        "device2", application="example-app", gateways=("gw1",) if allowed else ()
    ))


GW_BASIC = (AUTH, b"Basic " + base64.b64encode(b"gw1@example-app:gw-pass"))


def test_as_publishes_for_a_device_that_lists_the_gateway(drogue: Drogue) -> None:
    """With as=, a listed gateway's publish is the device's event, sent by the gateway."""
    gateway_of(drogue, allowed=True)
    assert drogue.ask("v1/t", b"{}", options=(q("as=device2"), GW_BASIC)).code == n.CHANGED
    (event,) = drogue.events()
    assert (event["device"], event["source"], event["sender"], event["partitionkey"]) == (
        "device2", "drogue://example-app/device2", "gw1", "example%2Dapp/gw1",
    )


def test_as_is_refused_for_a_device_that_does_not_list_the_gateway(drogue: Drogue) -> None:
    """A gateway not listed by the device, or an unknown device, is 4.03; nothing is published."""
    gateway_of(drogue, allowed=False)
    refused = drogue.ask("v1/t", b"{}", options=(q("as=device2"), GW_BASIC))
    unknown = drogue.ask("v1/t", b"{}", options=(q("as=nobody"), GW_BASIC))
    assert (refused.code, refused.payload) == (n.FORBIDDEN, b"Authentication failed")
    assert unknown.code == n.FORBIDDEN
    assert drogue.events() == []


def test_as_waits_for_the_devices_commands(drogue: Drogue) -> None:
    """A gateway waiting with as= and ct gets the command queued for the device."""
    gateway_of(drogue, allowed=True)
    device2 = drogue.services.credentials.device_named("example-app", "device2")
    assert device2 is not None
    result(drogue.services.rpc.enqueue(device2.id, "open", None, oneway=True))
    drogue.send("v1/t", b"{}", mtype=n.NON, options=(q("as=device2"), q("ct=5"), GW_BASIC))
    drogue.clock.advance(0)
    (response,) = drogue.transport.take()
    assert (response.code, response.payload) == (n.CONTENT, b"")
    assert [bytes(o.value) for o in response.opt._options[4210]] == [b"open"]


def test_bad_json_is_not_acceptable_with_a_reason(drogue: Drogue) -> None:
    """JSON Content-Format with a payload that is not JSON is 4.06 with the reason, no echo."""
    response = drogue.ask("v1/t", b"{nope", options=((n.CONTENT_FORMAT, 50), (AUTH, BASIC)))
    assert response.code == n.NOT_ACCEPTABLE
    assert response.payload.startswith(b"Rejected: invalid JSON")


@pytest.mark.parametrize(
    ("path", "queries", "reason"),
    [
        ("v1", (), b"Invalid data: Error parsing path: no channel"),
        ("v1/t/x", ("ct=soon",), b"Invalid data: ct must be whole seconds"),
        ("v1/t", ("flag",), b"Invalid data: query parameter 'flag' has no value"),
    ],
)
def test_bad_path_or_query_is_bad_request(
    drogue: Drogue, path: str, queries: tuple[str, ...], reason: bytes
) -> None:
    """A missing channel or an unparseable query is 4.00 with the reason, never silence."""
    response = drogue.ask(path, b"{}", options=(*(q(t) for t in queries), (AUTH, BASIC)))
    assert (response.code, response.payload) == (n.BAD_REQUEST, reason)


def test_other_methods_are_not_allowed(drogue: Drogue) -> None:
    """GET on a channel is 4.05."""
    assert drogue.ask("v1/t", code=n.GET, options=((AUTH, BASIC),)).code == n.METHOD_NOT_ALLOWED


def test_command_arriving_within_ct_is_content_with_4210(drogue: Drogue) -> None:
    """With ct, a CON publish is ACKed empty at once, then a command arrives as 2.05 with 4210."""
    (ack,) = drogue.send("v1/t", b"{}", options=(q("ct=10"), (AUTH, BASIC)))
    assert (ack.mtype, ack.code) == (n.ACK, n.EMPTY)
    rpc = result(drogue.services.rpc.enqueue(drogue.device.id, "reboot", "now", oneway=True))
    drogue.clock.advance(0)
    (response,) = drogue.transport.take()
    assert (response.mtype, response.code, response.payload) == (n.CON, n.CONTENT, b"now")
    assert [bytes(o.value) for o in response.opt._options[4210]] == [b"reboot"]
    done = result(drogue.services.rpc.get(drogue.device.id, rpc.id))
    assert done.state.value == "SUCCESSFUL"


@pytest.mark.parametrize(
    ("content_type", "content_format"),
    [("application/json", 50), ("text/plain", 0), ("TEXT/PLAIN; charset=utf-8", 0),
     ("application/x-unknown", None), (None, None)],
)
def test_command_content_type_goes_as_content_format(
    drogue: Drogue, content_type: str | None, content_format: int | None
) -> None:
    """A command's content type is its Content-Format when CoAP has one, else none is sent."""
    drogue.send("v1/t", b"{}", options=(q("ct=10"), (AUTH, BASIC)))
    result(drogue.services.rpc.enqueue(
        drogue.device.id, "set", "{}", oneway=True, content_type=content_type
    ))
    drogue.clock.advance(0)
    (response,) = drogue.transport.take()
    assert response.code == n.CONTENT
    assert response.opt.content_format == content_format


def test_ct_running_out_is_changed(drogue: Drogue) -> None:
    """No command within ct: 2.04 once it runs out (cut to the dialect's maximum)."""
    (ack,) = drogue.send("v1/t", b"{}", options=(q("commandTimeout=100"), (AUTH, BASIC)))
    assert ack.code == n.EMPTY
    drogue.clock.advance(29)
    assert drogue.transport.take() == []
    drogue.clock.advance(1)
    (response,) = drogue.transport.take()
    assert (response.mtype, response.code) == (n.CON, n.CHANGED)


def test_queued_command_goes_out_on_the_next_waiting_publish(drogue: Drogue) -> None:
    """A command sent while nobody waits is answered to the next publish with ct, NON as NON."""
    result(drogue.services.rpc.enqueue(drogue.device.id, "led", {"on": True}, oneway=True))
    assert drogue.send("v1/t", b"{}", mtype=n.NON, options=(q("ct=5"), (AUTH, BASIC))) == []
    drogue.clock.advance(0)
    (response,) = drogue.transport.take()
    assert (response.mtype, response.code) == (n.NON, n.CONTENT)
    assert json.loads(response.payload) == {"on": True}


def test_configure_refuses_unknown_and_bad_options() -> None:
    """Unknown options and a non-positive max_command_timeout are ValueErrors."""
    assert DrogueDialect().configure({"max_command_timeout": 5}).max_command_timeout == 5
    with pytest.raises(ValueError):
        DrogueDialect().configure({"colour": 1})
    with pytest.raises(ValueError):
        DrogueDialect().configure({"max_command_timeout": 0})


def test_plugin_provides_the_dialect() -> None:
    """The drogue plugin provides IDialect with Drogue's event shape."""
    from zope.interface.verify import verifyObject

    from gateway.dialect import IDialect
    from plugins.drogue import drogue

    assert verifyObject(IDialect, drogue)
    assert drogue.event_shape is DROGUE_SHAPE
