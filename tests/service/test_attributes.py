"""
Attributes and shared-attribute notifications.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.task import Clock
from twisted.logger import capturedLogs
from zope.interface.verify import verifyObject

from gateway.domain.errors import InvalidArgument, NotFound
from gateway.domain.model import Attribute, AttributeScope
from gateway.service.build import Services
from gateway.service.interfaces import IAttributeService

from .conftest import failure, result

SHARED, CLIENT, SERVER = AttributeScope.SHARED, AttributeScope.CLIENT, AttributeScope.SERVER


def _device(services: Services) -> str:
    return result(services.registry.create_device("a")).device.id


def test_provides_interface(services: Services) -> None:
    """The attribute service provides IAttributeService."""
    assert verifyObject(IAttributeService, services.attributes)


def test_set_and_get_stamped_by_clock(services: Services, clock: Clock) -> None:
    """Attributes are stamped with the clock in ms and read back per scope and key."""
    dev = _device(services)
    result(services.attributes.set_attributes(dev, CLIENT, {"fw": "1.0", "n": {"x": 2**70}}))
    clock.advance(1.5)
    result(services.attributes.set_attributes(dev, SERVER, {"fw": "srv"}))
    ms = int((clock.seconds() - 1.5) * 1000)
    assert result(services.attributes.get_attributes(dev, CLIENT)) == [
        Attribute(CLIENT, "fw", "1.0", ms),
        Attribute(CLIENT, "n", {"x": 2**70}, ms),
    ]
    (server,) = result(services.attributes.get_attributes(dev, SERVER, ["fw"]))
    assert server.last_update_ts == ms + 1500


def test_unknown_device_and_bad_keys(services: Services) -> None:
    """An unknown device is NotFound and an empty key is invalid."""
    failure(services.attributes.set_attributes("zz", SHARED, {"a": 1}), NotFound)
    failure(services.attributes.get_attributes("zz", SHARED), NotFound)
    dev = _device(services)
    failure(services.attributes.set_attributes(dev, SHARED, {"": 1}), InvalidArgument)


def test_shared_changes_notify(services: Services) -> None:
    """Subscribers hear shared updates and deletions in ThingsBoard's shapes, not other scopes."""
    dev = _device(services)
    heard: list[dict[str, Any]] = []
    services.attributes.subscribe(dev, heard.append)
    result(services.attributes.set_attributes(dev, SHARED, {"led": True}))
    result(services.attributes.set_attributes(dev, CLIENT, {"x": 1}))
    assert result(services.attributes.delete_attributes(dev, SHARED, ["led", "nope"])) == ["led"]
    result(services.attributes.delete_attributes(dev, SHARED, ["nope"]))
    assert heard == [{"led": True}, {"deleted": ["led"]}]


def test_unsubscribe(services: Services) -> None:
    """After unsubscribing (even twice) a callback hears nothing more."""
    dev = _device(services)
    heard: list[dict[str, Any]] = []
    stop = services.attributes.subscribe(dev, heard.append)
    stop()
    stop()
    result(services.attributes.set_attributes(dev, SHARED, {"a": 1}))
    assert heard == []
    assert services.attributes.subscriber_count(dev) == 0


def test_failing_subscriber_isolated(services: Services) -> None:
    """A subscriber that raises is logged; the others and the caller are unaffected."""
    dev = _device(services)
    heard: list[dict[str, Any]] = []

    def boom(_: dict[str, Any]) -> None:
        raise RuntimeError("boom")

    services.attributes.subscribe(dev, boom)
    services.attributes.subscribe(dev, heard.append)
    with capturedLogs() as events:
        result(services.attributes.set_attributes(dev, SHARED, {"a": 1}))
    assert heard == [{"a": 1}]
    [logged] = [e for e in events if "log_failure" in e]
    assert logged["device_id"] == dev
    assert logged["log_failure"].check(RuntimeError)


def test_subscriber_sees_no_failed_write(services: Services) -> None:
    """A write that fails notifies nobody."""
    dev = _device(services)
    heard: list[dict[str, Any]] = []
    services.attributes.subscribe(dev, heard.append)
    failure(services.attributes.set_attributes(dev, SHARED, {"a": object()}), Exception)
    assert heard == []
