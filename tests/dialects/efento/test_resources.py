"""
The Efento dialect over the engine: the four endpoints, cloud-token
authentication, the answers to CON and NON, refusals with their reasons, and
a queued configuration returned in the 2.01.
"""

from __future__ import annotations

import struct
from typing import Any

import pytest
from twisted.internet.task import Clock

from gateway.coap import numbers as n
from gateway.coap.layer import MessageLayer
from gateway.coap.resource import Resource
from gateway.dialects.efento import EfentoDialect
from gateway.dialects.efento.schema import EfentoSchema
from gateway.domain.model import AttributeScope, RpcState
from gateway.service.build import Services, memory_services
from tests.coap.support import PEER, Engine, FakeTransport, request
from tests.service.conftest import FAST_HASHER, result

TOKEN = "efento-token"
TS = 1_700_000_000


class Efento:
    """The engine serving the Efento dialect, with one device holding L{TOKEN}."""

    def __init__(self, clock: Clock, services: Services, dialect: EfentoDialect) -> None:
        self.clock = clock
        self.services = services
        self.root = Resource()
        dialect.install(self.root, services.devices.for_dialect("efento"), clock)
        self.transport = FakeTransport()
        self.server = Engine(MessageLayer(self.root, clock), self.transport)
        self.mid = 0
        self.device = result(services.registry.create_device("sensor", access_token=TOKEN)).device

    def send(
        self, path: str, payload: bytes = b"", code: int = n.POST, mtype: int = n.CON
    ) -> list[Any]:
        self.mid += 1
        self.server.feed(request(code, path, mtype, self.mid, b"t", payload), PEER)
        return self.transport.take()

    def ask(self, path: str, payload: bytes = b"", **kwargs: Any) -> Any:
        (response,) = self.send(path, payload, **kwargs)
        return response

    def latest(self) -> dict[str, Any]:
        points = result(self.services.telemetry.latest(self.device.id))
        return {p.key: (p.ts, p.value) for p in points}

    def events(self) -> list[dict[str, Any]]:
        return [e["event"] for e in result(self.services.events.events())]


@pytest.fixture
def efento(clock: Clock) -> Efento:
    clock.advance(TS + 0.5 - clock.seconds())
    return Efento(clock, result(memory_services(clock, FAST_HASHER)), EfentoDialect())


def measurements(schema: EfentoSchema, token: str = TOKEN, **fields: Any) -> bytes:
    message: Any = schema.measurements(
        serial_num=b"\x00\x01", cloud_token=token, battery_status=True,
        measurement_period_base=60, measurement_period_factor=1, **fields,
    )
    message.channels.add(type=1, timestamp=TS - 60, sample_offsets=[215, 216])
    return bytes(message.SerializeToString())


def test_measurements_con_are_created_and_recorded(efento: Efento, schema: EfentoSchema) -> None:
    """A CON ProtoMeasurements gets a piggybacked 2.01, its samples telemetry, with an event."""
    response = efento.ask("efento/m", measurements(schema))
    assert (response.mtype, response.code, response.payload) == (n.ACK, n.CREATED, b"")
    latest = efento.latest()
    assert latest["temperature_1"] == (TS * 1000, 21.6)
    assert latest["serial"] == (TS * 1000, "0001")
    (event,) = efento.events()
    assert event["dialect"] == "efento"


def test_measurements_non_get_a_non(efento: Efento, schema: EfentoSchema) -> None:
    """A NON ProtoMeasurements is answered with a NON 2.01 (the reference answers nothing)."""
    response = efento.ask("efento/m", measurements(schema), mtype=n.NON)
    assert (response.mtype, response.code) == (n.NON, n.CREATED)
    assert "temperature_1" in efento.latest()


def test_device_info_is_telemetry_stamped_on_arrival(efento: Efento, schema: EfentoSchema) -> None:
    """A ProtoDeviceInfo is one record stamped with the clock."""
    payload = schema.device_info(cloud_token=TOKEN, sw_version=1546).SerializeToString()
    response = efento.ask("efento/i", payload)
    assert response.code == n.CREATED
    assert efento.latest()["sw_version"] == (int((TS + 0.5) * 1000), 1546)


def test_configuration_is_client_attributes(efento: Efento, schema: EfentoSchema) -> None:
    """A ProtoConfig becomes client attributes in its JSON form, without the cloud token."""
    payload = schema.config(cloud_token=TOKEN, transmission_interval=600).SerializeToString()
    assert efento.ask("efento/c", payload).code == n.CREATED
    attributes = result(
        efento.services.attributes.get_attributes(efento.device.id, AttributeScope.CLIENT)
    )
    values = {a.key: a.value for a in attributes}
    assert values["transmissionInterval"] == 600
    assert values["measurementPeriodBase"] == 0
    assert "cloudToken" not in values


def test_time_is_four_big_endian_bytes(efento: Efento) -> None:
    """GET /efento/t is 2.05 with the clock's epoch seconds as 4 big-endian bytes."""
    response = efento.ask("efento/t", code=n.GET)
    assert response.code == n.CONTENT
    assert response.payload == struct.pack(">I", TS)


def test_unknown_token_is_unauthorized_and_counted(efento: Efento, schema: EfentoSchema) -> None:
    """A cloud token that is no device's access token is 4.01 with a reason; nothing is stored."""
    response = efento.ask("efento/m", measurements(schema, token="nobody"))
    assert (response.code, response.payload) == (n.UNAUTHORIZED, b"Unknown cloud token")
    assert efento.latest() == {} and efento.events() == []
    (source,) = efento.services.guard.sources()
    assert source.wrong == 1


@pytest.mark.parametrize("path, name", [
    ("efento/m", b"ProtoMeasurements"),
    ("efento/i", b"ProtoDeviceInfo"),
    ("efento/c", b"ProtoConfig"),
])
def test_undecodable_payload_is_bad_request(efento: Efento, path: str, name: bytes) -> None:
    """A payload that does not decode is 4.00 naming the message (not the reference's 5.00)."""
    response = efento.ask(path, b"\x0a\xff\xff")
    assert response.code == n.BAD_REQUEST
    assert response.payload.startswith(b"Invalid " + name)
    assert efento.latest() == {} and efento.events() == []


def test_measurements_without_channels_are_bad_request(
    efento: Efento, schema: EfentoSchema
) -> None:
    """An authenticated ProtoMeasurements without channels is 4.00 saying so."""
    payload = schema.measurements(cloud_token=TOKEN).SerializeToString()
    response = efento.ask("efento/m", payload)
    assert (response.code, response.payload) == (
        n.BAD_REQUEST, b"Invalid ProtoMeasurements: the message has no channels"
    )


@pytest.mark.parametrize("code, path, reason", [
    (n.GET, "efento/m", b"No Efento endpoint for GET /efento/m: only /efento/t answers GET"),
    (n.POST, "efento/t", b"No Efento endpoint for POST /efento/t: POST goes to /efento/m, "
                         b"/efento/i or /efento/c"),
    (n.POST, "efento", b"No Efento endpoint for POST /efento: POST goes to /efento/m, "
                       b"/efento/i or /efento/c"),
    (n.POST, "efento/m/x", b"No Efento endpoint for POST /efento/m/x: POST goes to /efento/m, "
                           b"/efento/i or /efento/c"),
    (n.PUT, "efento/m", b"No Efento endpoint for PUT /efento/m: Efento uses POST and GET"),
    (n.DELETE, "efento/t", b"No Efento endpoint for DELETE /efento/t: Efento uses POST and GET"),
])
def test_anything_else_is_bad_request(efento: Efento, code: int, path: str, reason: bytes) -> None:
    """Other paths and methods are 4.00 with the reason."""
    response = efento.ask(path, b"", code=code)
    assert (response.code, response.payload) == (n.BAD_REQUEST, reason)


def test_queued_configuration_goes_out_in_the_answer(efento: Efento, schema: EfentoSchema) -> None:
    """A queued 'config' RPC is the 2.01's payload, encoded as ProtoConfig, and is then done."""
    rpc = result(efento.services.rpc.enqueue(
        efento.device.id, "config", {"transmissionInterval": 900, "requestDeviceInfo": True},
        oneway=True,
    ))
    assert efento.send("efento/m", measurements(schema)) == []
    efento.clock.advance(0)
    (response,) = efento.transport.take()
    assert (response.mtype, response.code) == (n.ACK, n.CREATED)
    config: Any = schema.config.FromString(response.payload)
    assert (config.transmission_interval, config.request_device_info) == (900, True)
    done = result(efento.services.rpc.get(efento.device.id, rpc.id))
    assert done.state is RpcState.SUCCESSFUL
    # Once sent, the next uplink is answered at once, empty.
    assert efento.ask("efento/m", measurements(schema)).payload == b""


def test_other_rpcs_fail_and_the_answer_goes_empty(efento: Efento, schema: EfentoSchema) -> None:
    """An RPC the sensor cannot take (other method, params no ProtoConfig) fails; 2.01 is empty."""
    first = result(efento.services.rpc.enqueue(efento.device.id, "reboot", None, oneway=True))
    second = result(efento.services.rpc.enqueue(
        efento.device.id, "config", {"noSuchField": 1}, oneway=True,
    ))
    for rpc in (first, second):
        assert efento.send("efento/m", measurements(schema)) == []
        efento.clock.advance(0)
        (response,) = efento.transport.take()
        assert (response.code, response.payload) == (n.CREATED, b"")
        assert result(efento.services.rpc.get(efento.device.id, rpc.id)).state is RpcState.FAILED
