"""
The CloudEvents written for uplinks: exactly the documented attributes, and
read back by the CloudEvents SDK.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone

from cloudevents.core.bindings.http import from_binary
from cloudevents.core.formats.json import JSONFormat

from gateway.domain.model import Device
from gateway.store.unit import AppendTelemetry, OutboxEvent
from gateway.upstream.events import (
    EventFactory,
    EventShape,
    UplinkKind,
    binary,
    new_id,
    rfc3339,
    structured,
)

DEVICE = Device("abc123", "boiler 1", application="plant")


def _ids() -> EventFactory:
    counter = iter(range(1, 1000))
    return EventFactory("gw-1", new_id=lambda: f"00000000-0000-4000-8000-{next(counter):012d}")


def _held(op, sequence: int = 7) -> OutboxEvent:  # type: ignore[no-untyped-def]
    return OutboxEvent(1, op.device_id, sequence, op.event_id, op.type, op.time_ms,
                       op.received_ms, op.body)


def test_telemetry_event_has_every_documented_attribute() -> None:
    """A telemetry event carries the id, source, type, subject, time, data and extensions."""
    records = AppendTelemetry("abc123", [(1700000000123, {"t": 21.5, "ok": True})])
    op = _ids().telemetry(DEVICE, "thingsboard", 1700000009000, records, 1700000000123)
    assert json.loads(structured(_held(op))) == {
        "specversion": "1.0",
        "id": "00000000-0000-4000-8000-000000000001",
        "source": "/coap-gateway/gw-1/devices/abc123",
        "type": "io.coap-gateway.telemetry.v1",
        "subject": "boiler 1",
        "time": "2023-11-14T22:13:20.123Z",
        "datacontenttype": "application/json",
        "application": "plant",
        "device": "boiler 1",
        "deviceid": "abc123",
        "dialect": "thingsboard",
        "sequence": 7,
        "data": [{"ts": 1700000000123, "values": {"t": 21.5, "ok": True}}],
    }
    assert (op.device_id, op.event_id, op.type) == (
        "abc123", "00000000-0000-4000-8000-000000000001", "io.coap-gateway.telemetry.v1"
    )
    assert (op.time_ms, op.received_ms) == (1700000000123, 1700000009000)


def test_time_is_the_receive_time_without_a_device_ts() -> None:
    """Without the device's own ts the event's time is when the gateway received it."""
    op = _ids().event(UplinkKind.ATTRIBUTES, DEVICE, "thingsboard", 1700000009000, "{}")
    assert json.loads(op.body)["time"] == "2023-11-14T22:13:29.000Z"
    assert op.time_ms == 1700000009000
    assert op.type == "io.coap-gateway.attributes.v1"


def test_each_event_gets_a_fresh_id() -> None:
    """Two events of the same device never share an id."""
    factory = EventFactory("gw-1")
    a = factory.event(UplinkKind.CLAIM, DEVICE, "d", 1, "{}")
    b = factory.event(UplinkKind.CLAIM, DEVICE, "d", 1, "{}")
    assert a.event_id != b.event_id


def test_unusual_names_are_escaped() -> None:
    """Quotes, non-ASCII text and slashes in names stay valid JSON and a valid source."""
    device = Device('a/"b"', 'café "x"', application="é")
    op = EventFactory("gw one/2").event(UplinkKind.PROVISION, device, "tb", 0, "null")
    body = json.loads(op.body)
    assert body["source"] == "/coap-gateway/gw%20one%2F2/devices/a/%22b%22"
    assert (body["subject"], body["application"], body["deviceid"]) == (
        'café "x"', "é", 'a/"b"'
    )


def test_keys_are_escaped_in_telemetry_data() -> None:
    """Telemetry keys needing JSON escapes come out as the device sent them."""
    records = AppendTelemetry("abc123", [(1, {'we"ird\n': [1, None]}), (2, {"é": {"a": 1}})])
    op = _ids().telemetry(DEVICE, "tb", 5, records, None)
    assert json.loads(op.body)["data"] == [
        {"ts": 1, "values": {'we"ird\n': [1, None]}},
        {"ts": 2, "values": {"é": {"a": 1}}},
    ]


def test_renamed_device_gets_its_new_name() -> None:
    """An event after a rename names the device by its new name."""
    factory = _ids()
    factory.event(UplinkKind.CLAIM, DEVICE, "tb", 0, "{}")
    renamed = Device(DEVICE.id, "boiler 2", application="plant")
    assert json.loads(factory.event(UplinkKind.CLAIM, renamed, "tb", 0, "{}").body)["device"] == (
        "boiler 2"
    )


def test_sdk_reads_the_event() -> None:
    """The CloudEvents SDK parses a stored event into the same attributes and data."""
    records = AppendTelemetry("abc123", [(1700000000123, {"t": 1})])
    text = structured(_held(_ids().telemetry(DEVICE, "tb", 1, records, 1700000000123), 3))
    event = JSONFormat().read(None, text)
    assert event.get_id() == "00000000-0000-4000-8000-000000000001"
    assert event.get_type() == "io.coap-gateway.telemetry.v1"
    assert event.get_time() == datetime(2023, 11, 14, 22, 13, 20, 123000, tzinfo=timezone.utc)
    assert event.get_extension("sequence") == 3
    assert event.get_extension("deviceid") == "abc123"
    assert event.get_data() == [{"ts": 1700000000123, "values": {"t": 1}}]


def test_rfc3339_keeps_milliseconds() -> None:
    """Milliseconds are written with three digits, in UTC."""
    assert rfc3339(0) == "1970-01-01T00:00:00.000Z"
    assert rfc3339(1700000000007) == "2023-11-14T22:13:20.007Z"


def test_new_ids_are_random_uuids() -> None:
    """Ids are distinct version-4 UUIDs of the RFC 4122 variant, in canonical form."""
    ids = {new_id() for _ in range(500)}
    assert len(ids) == 500
    for text in ids:
        parsed = uuid.UUID(text)
        assert (str(parsed), parsed.version, parsed.variant) == (text, 4, uuid.RFC_4122)


def test_binary_mode_round_trips_through_the_sdk() -> None:
    """The binary-mode message parses back (SDK) into the stored event's attributes and data."""
    records = AppendTelemetry("abc123", [(1700000000123, {"t": 1})])
    held = _held(_ids().telemetry(Device("a b", "ü/x"), "tb", 1, records, 1700000000123), 4)
    message = binary(held)
    assert message.headers["content-type"] == "application/json"
    assert message.headers["ce-subject"] == "%C3%BC/x"
    event = from_binary(message, JSONFormat())
    expected = json.loads(structured(held))
    assert event.get_data() == expected.pop("data")
    assert event.get_time() == datetime(2023, 11, 14, 22, 13, 20, 123000, tzinfo=timezone.utc)
    expected.pop("time")
    expected["sequence"] = "4"  # a header carries the integer as text
    attributes = event.get_attributes()
    attributes.pop("time")
    assert attributes == expected


def test_raw_payload_goes_base64_with_its_content_type() -> None:
    """A non-JSON uplink keeps its content type: data_base64 in JSON, its bytes in binary mode."""
    op = _ids().raw_event(
        UplinkKind.TELEMETRY, DEVICE, "tb", 1700000000123, b"\x08\x96\x01\xff",
        "application/x-protobuf",
    )
    event = json.loads(structured(_held(op)))
    assert event["datacontenttype"] == "application/x-protobuf"
    assert event["data_base64"] == "CJYB/w=="
    assert "data" not in event
    message = binary(_held(op))
    assert message.body == b"\x08\x96\x01\xff"
    assert message.headers["content-type"] == "application/x-protobuf"
    assert "ce-data_base64" not in message.headers


def test_a_dialect_shape_names_type_source_and_subject() -> None:
    """A dialect's EventShape names its events' type, source and subject; others keep ours."""
    shape = EventShape(
        type=lambda kind: f"io.drogue.event.{kind.value}",
        source=lambda instance, device: f"{device.application}",
        subject=lambda device: "telemetry-channel",
    )
    factory = EventFactory("gw-1", shapes={"drogue": shape})
    records = AppendTelemetry("abc123", [(1, {"t": 1})])
    drogue = json.loads(structured(_held(factory.telemetry(DEVICE, "drogue", 1, records, None))))
    ours = json.loads(structured(_held(factory.telemetry(DEVICE, "tb", 1, records, None))))
    assert (drogue["type"], drogue["source"], drogue["subject"]) == (
        "io.drogue.event.telemetry", "plant", "telemetry-channel",
    )
    assert (ours["type"], ours["source"], ours["subject"]) == (
        "io.coap-gateway.telemetry.v1", "/coap-gateway/gw-1/devices/abc123", "boiler 1",
    )
    assert factory.telemetry(DEVICE, "drogue", 1, records, None).type == "io.drogue.event.telemetry"
