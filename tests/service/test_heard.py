"""
When power-saving devices were last heard, shared between nodes on a
Clock: this node's sightings are recorded once a second (the latest of
each device), and a time heard elsewhere sets the device's windows here.
"""

from __future__ import annotations

from typing import Any

import pytest
from twisted.internet.task import Clock
from zope.interface.verify import verifyObject

from gateway.domain.model import PowerMode
from gateway.service.build import Services, build_services
from gateway.service.heard import HeardRecorder
from gateway.store.changes import Change, ChangeKind, LocalChangeFeed
from gateway.store.interfaces import IHeardLog
from gateway.store.memory import MemoryStore
from gateway.store.nodes import LocalHeard
from tests.service.conftest import FAST_HASHER, result


@pytest.fixture
def services(clock: Clock) -> Services:
    return result(build_services(MemoryStore(), clock, FAST_HASHER))


def _device(services: Services, mode: PowerMode, name: str = "d") -> str:
    power: dict[str, Any] = {"power_mode": mode, "psm_activity_timer": 5000}
    return result(services.registry.create_device(name, power=power)).device.id


def _ms(clock: Clock) -> int:
    return int(clock.seconds() * 1000)


def test_local_heard_is_a_heard_log() -> None:
    """The in-memory log provides the heard-log interface and keeps each device's latest time."""
    log = LocalHeard()
    verifyObject(IHeardLog, log)
    result(log.record_heard({"a": 5}))
    result(log.record_heard({"a": 3, "b": 1}))
    assert result(log.last_heard()) == {"a": 5, "b": 1}


def test_sightings_are_recorded_once_a_second(services: Services, clock: Clock) -> None:
    """Three uplinks of a PSM device within a second are one record of the last; a DRX
    device is not recorded."""
    log = LocalHeard()
    recorder = HeardRecorder(log, services.scheduler, clock)
    services.activity.subscribe(recorder.activity)
    psm = _device(services, PowerMode.PSM)
    drx = _device(services, PowerMode.DRX, "e")
    for _ in range(3):
        last = _ms(clock)
        services.devices.report_seen(psm, "uplink")
        services.devices.report_seen(drx, "uplink")
        clock.advance(0.3)
    assert result(log.last_heard()) == {}
    clock.advance(0.2)
    assert result(log.last_heard()) == {psm: last}


def test_stopping_records_what_is_pending(services: Services, clock: Clock) -> None:
    """A stopping node records the sightings it has not recorded yet."""
    log = LocalHeard()
    recorder = HeardRecorder(log, services.scheduler, clock)
    services.activity.subscribe(recorder.activity)
    psm = _device(services, PowerMode.PSM)
    services.devices.report_seen(psm, "uplink")
    result(recorder.stop())
    assert result(log.last_heard()) == {psm: _ms(clock)}


def test_heard_elsewhere_sets_the_windows_here(services: Services, clock: Clock) -> None:
    """A PSM device heard by another node 2 s ago is awake here until 3 s from now; heard
    12 s ago it is asleep, and an older time than one heard here changes nothing."""
    psm = _device(services, PowerMode.PSM)
    now = _ms(clock)
    services.scheduler.heard_elsewhere(psm, (now - 2000) / 1000)
    reach = services.scheduler.reachability(psm)
    assert (reach.awake, reach.awake_until, reach.last_heard) == (True, now + 3000, now - 2000)
    other = _device(services, PowerMode.PSM, "e")
    services.scheduler.heard_elsewhere(other, (now - 12_000) / 1000)
    clock.advance(0)
    assert services.scheduler.reachability(other).awake is False
    services.scheduler.heard_elsewhere(psm, (now - 5000) / 1000)
    assert services.scheduler.reachability(psm).last_heard == now - 2000


def test_restore_gives_the_scheduler_the_recorded_times(services: Services, clock: Clock) -> None:
    """At start the scheduler learns every recorded time, as if heard then."""
    psm = _device(services, PowerMode.PSM)
    log = LocalHeard()
    result(log.record_heard({psm: _ms(clock) - 1000}))
    result(HeardRecorder(log, services.scheduler, clock).restore())
    assert services.scheduler.reachability(psm).last_heard == _ms(clock) - 1000


def test_a_heard_change_reaches_the_scheduler(services: Services, clock: Clock) -> None:
    """A device another node heard, as the change feed reports it, is awake here."""
    psm = _device(services, PowerMode.PSM)
    assert services.scheduler.awake(psm) is False
    assert isinstance(services.changes, LocalChangeFeed)
    services.changes.publish(Change(ChangeKind.HEARD, psm, ts=_ms(clock)))
    assert services.scheduler.awake(psm) is True
