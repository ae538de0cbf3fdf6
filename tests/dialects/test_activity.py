"""
Device activity from the ThingsBoard dialect through the engine: an
authenticated request is "seen", so is the ACK of a CON notification, and a
CON notification that runs out of retransmissions is "unreachable".
"""

from __future__ import annotations

import pytest

from gateway.coap import codec
from gateway.coap import numbers as n
from gateway.domain.model import AttributeScope
from gateway.service.interfaces import ActivityEvent, DeviceSeen, DeviceUnreachable
from tests.coap.support import PEER
from tests.service.conftest import result

from .conftest import TOKEN, Harness

ATTRIBUTES = f"api/v1/{TOKEN}/attributes"


@pytest.fixture
def heard(tb: Harness) -> list[ActivityEvent]:
    events: list[ActivityEvent] = []
    tb.services.activity.subscribe(events.append)
    return events


def _notification(tb: Harness) -> object:
    """Observe the device's attributes and change one: the CON notification sent."""
    tb.ask(n.GET, ATTRIBUTES, options=((n.OBSERVE, 0),), token=b"ob")
    result(tb.services.attributes.set_attributes(tb.device_id, AttributeScope.SHARED, {"x": 1}))
    (notification,) = tb.transport.take()
    assert notification.mtype == n.CON
    return notification


def test_authenticated_uplink_is_seen(tb: Harness, heard: list[ActivityEvent]) -> None:
    """A request that authenticates publishes "seen" via uplink, at the clock's time."""
    assert tb.ask(n.POST, f"api/v1/{TOKEN}/telemetry", b'{"a":1}').code == n.CREATED
    assert heard == [DeviceSeen(tb.device_id, tb.clock.seconds(), "uplink")]


def test_refused_request_is_not_seen(tb: Harness, heard: list[ActivityEvent]) -> None:
    """A request with an unknown token publishes nothing."""
    assert tb.ask(n.POST, "api/v1/WRONG/telemetry", b'{"a":1}').code == n.UNAUTHORIZED
    assert heard == []


def test_acked_notification_is_seen(tb: Harness, heard: list[ActivityEvent]) -> None:
    """The device's ACK of a CON notification publishes "seen" via ack."""
    notification = _notification(tb)
    heard.clear()
    tb.clock.advance(1)
    tb.server.feed(codec.empty(n.ACK, notification.mid), PEER)
    assert heard == [DeviceSeen(tb.device_id, tb.clock.seconds(), "ack")]


def test_timed_out_notification_is_unreachable(tb: Harness, heard: list[ActivityEvent]) -> None:
    """A CON notification never acknowledged publishes "unreachable" once retransmissions end."""
    _notification(tb)
    heard.clear()
    for _ in range(100):
        tb.clock.advance(1)
    assert [type(e) for e in heard] == [DeviceUnreachable]
    assert (heard[0].device_id, heard[0].reason) == (tb.device_id, "timeout")  # type: ignore[union-attr]
    assert tb.services.attributes.subscriber_count(tb.device_id) == 0


def test_reset_notification_publishes_nothing(tb: Harness, heard: list[ActivityEvent]) -> None:
    """An RST to a notification ends the observation without an activity event."""
    notification = _notification(tb)
    heard.clear()
    tb.server.feed(codec.empty(n.RST, notification.mid), PEER)
    assert heard == []
