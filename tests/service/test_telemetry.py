"""
Telemetry uplinks.
"""

from __future__ import annotations

from twisted.internet.task import Clock
from zope.interface.verify import verifyObject

from gateway.domain.errors import InvalidArgument, NotFound
from gateway.domain.model import TelemetryPoint
from gateway.service.build import Services
from gateway.service.interfaces import ITelemetryService

from .conftest import failure, result


def test_provides_interface(services: Services) -> None:
    """The telemetry service provides ITelemetryService."""
    assert verifyObject(ITelemetryService, services.telemetry)


def test_missing_ts_from_clock(services: Services, clock: Clock) -> None:
    """A record without ts is stamped with the clock in ms; given ts are kept."""
    dev = result(services.registry.create_device("a")).device.id
    result(services.telemetry.record(dev, [(None, {"t": 21.5}), (5, {"h": 40})]))
    assert result(services.telemetry.latest(dev)) == [
        TelemetryPoint("h", 40, 5),
        TelemetryPoint("t", 21.5, int(clock.seconds() * 1000)),
    ]


def test_latest_wins(services: Services) -> None:
    """An older record does not replace a newer value of the same key."""
    dev = result(services.registry.create_device("a")).device.id
    result(services.telemetry.record(dev, [(20, {"t": 2})]))
    result(services.telemetry.record(dev, [(10, {"t": 1, "big": 2**64 + 1})]))
    assert result(services.telemetry.latest(dev, ["t", "big"])) == [
        TelemetryPoint("big", 2**64 + 1, 10),
        TelemetryPoint("t", 2, 20),
    ]


def test_invalid_records(services: Services) -> None:
    """Bad timestamps, non-object values and unknown devices are refused."""
    dev = result(services.registry.create_device("a")).device.id
    failure(services.telemetry.record(dev, [(-1, {"t": 1})]), InvalidArgument)
    failure(services.telemetry.record(dev, [("1", {"t": 1})]), InvalidArgument)  # type: ignore[list-item]
    failure(services.telemetry.record(dev, [(1, [1])]), InvalidArgument)  # type: ignore[list-item]
    failure(services.telemetry.record("zz", [(1, {"t": 1})]), NotFound)
    result(services.telemetry.record(dev, []))
    assert result(services.telemetry.latest(dev)) == []
