"""
A ThingsBoard device is answered 2.01 only once its event is in the outbox,
and 5.03 with Max-Age when the outbox is full.
"""

from __future__ import annotations

import json

from twisted.internet.task import Clock

from gateway.coap import numbers as n
from gateway.coap.layer import MessageLayer
from gateway.coap.resource import Resource
from gateway.dialect import install_dialects
from gateway.dialects.thingsboard import ThingsBoardDialect
from gateway.service.build import build_services
from gateway.store.memory import MemoryStore
from gateway.upstream.events import structured
from tests.coap.support import PEER, Engine, FakeTransport, option, request
from tests.service.conftest import FAST_HASHER, result

from .conftest import TOKEN, Harness

TELEMETRY = f"api/v1/{TOKEN}/telemetry"


def test_full_outbox_answers_503_with_max_age(clock: Clock) -> None:
    """Telemetry beyond the outbox limit gets 5.03 with Max-Age and a reason, and is not kept."""
    store = MemoryStore(outbox_limit=1)
    tb = Harness(clock, result(build_services(store, clock, FAST_HASHER)), ThingsBoardDialect())
    [first] = tb.send(n.POST, TELEMETRY, b'{"t":1}')
    [second] = tb.send(n.POST, TELEMETRY, b'{"t":2}', token=b"t2")
    assert first.code == n.CREATED
    assert second.code == n.SERVICE_UNAVAILABLE
    assert option(second, n.MAX_AGE) == 30
    assert b"outbox is full" in second.payload
    assert [p.value for p in result(tb.services.telemetry.latest(tb.device_id))] == [1]
    assert result(store.size()) == 1


def test_installed_dialect_names_itself_in_events(clock: Clock) -> None:
    """A dialect installed by name puts that name in its devices' events."""
    services = result(build_services(MemoryStore(), clock, FAST_HASHER))
    result(services.registry.create_device("dev", access_token=TOKEN))
    root = Resource()
    install_dialects(root, services.devices, clock, ["thingsboard"])
    transport = FakeTransport()
    Engine(MessageLayer(root, clock), transport).feed(
        request(n.POST, TELEMETRY, n.CON, 1, b"t", b'{"t":1}'), PEER
    )
    [answer] = transport.take()
    assert answer.code == n.CREATED
    [event] = [json.loads(structured(e)) for e in result(services.store.peek(10))]  # type: ignore[attr-defined]
    assert event["dialect"] == "thingsboard"
