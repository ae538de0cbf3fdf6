"""
Device activity: "seen" and "unreachable" events, stamped with the clock,
for whoever subscribes.
"""

from __future__ import annotations

from twisted.internet.task import Clock
from twisted.logger import LogEvent, globalLogPublisher
from zope.interface.verify import verifyObject

from gateway.service.activity import DeviceActivity
from gateway.service.build import Services
from gateway.service.interfaces import (
    ActivityEvent,
    DeviceSeen,
    DeviceUnreachable,
    IDeviceActivity,
)


def test_provides_interface(services: Services) -> None:
    """The service layer's activity hub provides IDeviceActivity."""
    assert verifyObject(IDeviceActivity, services.activity)


def test_events_are_stamped_with_the_clock(clock: Clock) -> None:
    """Each event carries the device, the clock's time and what happened."""
    activity = DeviceActivity(clock)
    heard: list[ActivityEvent] = []
    activity.subscribe(heard.append)
    activity.seen("d1", "uplink")
    clock.advance(2.5)
    activity.seen("d1", "ack")
    activity.unreachable("d2", "timeout")
    start = 1_700_000_000
    assert heard == [
        DeviceSeen("d1", start, "uplink"),
        DeviceSeen("d1", start + 2.5, "ack"),
        DeviceUnreachable("d2", start + 2.5, "timeout"),
    ]


def test_unsubscribe_stops_events_and_is_idempotent(clock: Clock) -> None:
    """An unsubscribed listener hears nothing more; unsubscribing twice is harmless."""
    activity = DeviceActivity(clock)
    first: list[ActivityEvent] = []
    second: list[ActivityEvent] = []
    stop = activity.subscribe(first.append)
    activity.subscribe(second.append)
    stop()
    stop()
    activity.seen("d1", "uplink")
    assert first == [] and len(second) == 1


def test_failing_listener_is_logged_and_others_still_hear(clock: Clock) -> None:
    """A listener that raises is logged once and the next listener still gets the event."""
    activity = DeviceActivity(clock)

    def broken(event: ActivityEvent) -> None:
        raise RuntimeError("scheduler bug")

    heard: list[ActivityEvent] = []
    activity.subscribe(broken)
    activity.subscribe(heard.append)
    logged: list[LogEvent] = []
    globalLogPublisher.addObserver(logged.append)
    try:
        activity.unreachable("d1", "timeout")
    finally:
        globalLogPublisher.removeObserver(logged.append)
    assert len(heard) == 1
    failures = [e for e in logged if "log_failure" in e]
    assert len(failures) == 1
    assert failures[0]["log_failure"].check(RuntimeError)
