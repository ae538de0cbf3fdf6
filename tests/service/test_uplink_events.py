"""
Every accepted uplink (telemetry, client attributes, claim, provisioning)
commits its CloudEvent in the same unit of work as its write.
"""

from __future__ import annotations

import json
from typing import Any

from twisted.internet.task import Clock

from gateway.domain.errors import Unavailable
from gateway.domain.model import AttributeScope, Profile, ProvisionStrategy
from gateway.service.build import Services, build_services
from gateway.service.interfaces import ProvisionRequest, ProvisionStatus
from gateway.store.memory import MemoryStore
from gateway.upstream.events import structured

from .conftest import FAST_HASHER, RecordingStore, failure, result

NOW_MS = 1_700_000_000_000


def _events(store: Any) -> list[dict[str, Any]]:
    return [json.loads(structured(e)) for e in result(store.peek(100))]


def test_telemetry_event_in_the_same_unit(
    recorded: Services, recording: RecordingStore
) -> None:
    """A telemetry uplink is one unit holding the write and its event."""
    dev = result(recorded.registry.create_device("a")).device
    recording.units.clear()
    result(recorded.devices.for_dialect("thingsboard").record_telemetry(
        dev.id, [(None, {"t": 21.5}), (5, {"h": 40})]
    ))
    assert recording.kinds() == [["AppendTelemetry", "AppendEvent"]]
    [event] = _events(recording)
    assert event["type"] == "io.coap-gateway.telemetry.v1"
    assert (event["deviceid"], event["device"], event["dialect"]) == (dev.id, "a", "thingsboard")
    assert event["sequence"] == 1
    assert event["time"] == "2023-11-14T22:13:20.000Z"
    assert event["data"] == [
        {"ts": NOW_MS, "values": {"t": 21.5}},
        {"ts": 5, "values": {"h": 40}},
    ]


def test_telemetry_time_is_the_devices_ts(services: Services) -> None:
    """When the device stamps its first record, the event's time is that stamp."""
    dev = result(services.registry.create_device("a")).device
    result(services.telemetry.record(dev.id, [(1_600_000_000_123, {"t": 1})]))
    [event] = _events(services.store)
    assert event["time"] == "2020-09-13T12:26:40.123Z"
    assert event["dialect"] == "api"


def test_sequences_count_per_device(services: Services) -> None:
    """Each device's events are numbered 1, 2, ... independently."""
    a = result(services.registry.create_device("a")).device.id
    b = result(services.registry.create_device("b")).device.id
    for dev in (a, b, a):
        result(services.telemetry.record(dev, [(None, {"t": 1})]))
    assert [(e["deviceid"], e["sequence"]) for e in _events(services.store)] == [
        (a, 1), (b, 1), (a, 2)
    ]


def test_empty_telemetry_makes_no_event(services: Services) -> None:
    """An uplink with no values writes nothing and sends nothing upstream."""
    dev = result(services.registry.create_device("a")).device.id
    result(services.telemetry.record(dev, [(None, {})]))
    assert _events(services.store) == []


def test_client_attributes_from_a_device_make_an_event(
    recorded: Services, recording: RecordingStore
) -> None:
    """Client attributes a device sends commit with their event; an operator's writes make none."""
    dev = result(recorded.registry.create_device("a")).device.id
    recording.units.clear()
    result(recorded.devices.for_dialect("tb").set_client_attributes(dev, {"fw": "1.2", "n": 3}))
    result(recorded.attributes.set_attributes(dev, AttributeScope.SHARED, {"x": 1}))
    assert recording.kinds()[0] == ["SetAttributes", "AppendEvent"]
    assert len(result(recording.get_attributes(dev, AttributeScope.SHARED))) == 1
    [event] = _events(recording)
    assert event["type"] == "io.coap-gateway.attributes.v1"
    assert event["data"] == {"fw": "1.2", "n": 3}


def test_claim_event_keeps_the_secret_out(
    recorded: Services, recording: RecordingStore
) -> None:
    """A claim request commits with an event giving its expiry and never its secret."""
    dev = result(recorded.registry.create_device("a")).device.id
    recording.units.clear()
    result(recorded.devices.for_dialect("tb").request_claim(dev, "s3cret", 60_000))
    assert recording.kinds() == [["PutClaim", "AppendEvent"]]
    [event] = _events(recording)
    assert event["type"] == "io.coap-gateway.claim.v1"
    assert event["data"] == {"expiresAt": NOW_MS + 60_000}
    assert "s3cret" not in json.dumps(event)


def test_provisioning_event_names_the_device_not_the_token(services: Services) -> None:
    """A provisioned device's event says who it is and whether it was created, not its token."""
    result(services.registry.create_profile(Profile(
        "p", provisioning=ProvisionStrategy.ALLOW_CREATE_NEW, provision_key="k",
        provision_secret="s",
    )))
    r = result(services.devices.for_dialect("tb").provision(
        ProvisionRequest("k", "s", device_name="new-one", token="TOKEN-1")
    ))
    assert r.status == ProvisionStatus.SUCCESS
    [event] = _events(services.store)
    assert event["type"] == "io.coap-gateway.provision.v1"
    assert event["data"] == {"deviceName": "new-one", "profile": "p", "created": True}
    assert "TOKEN-1" not in json.dumps(event)


def test_full_outbox_refuses_the_uplink(clock: Clock) -> None:
    """With the outbox full a telemetry uplink fails Unavailable and its values are not kept."""
    store = MemoryStore(outbox_limit=1)
    services = result(build_services(store, clock, FAST_HASHER))
    dev = result(services.registry.create_device("a")).device.id
    result(services.telemetry.record(dev, [(1, {"t": 1})]))
    failure(services.telemetry.record(dev, [(2, {"t": 2})]), Unavailable)
    assert [p.value for p in result(services.telemetry.latest(dev))] == [1]


def test_full_outbox_reports_when_to_come_back(clock: Clock) -> None:
    """A refused uplink's Unavailable carries the retry_after the upstream side estimates."""
    services = result(build_services(MemoryStore(outbox_limit=1), clock, FAST_HASHER,
                                     retry_after=lambda: 12))
    dev = result(services.registry.create_device("a")).device.id
    result(services.telemetry.record(dev, [(1, {"t": 1})]))
    for refused in (
        services.telemetry.record(dev, [(2, {"t": 2})]),
        services.devices.set_client_attributes(dev, {"a": 1}),
        services.devices.request_claim(dev, "s", 1000),
    ):
        assert failure(refused, Unavailable).value.retry_after == 12
