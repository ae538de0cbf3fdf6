"""
Shared-attribute updates while a device sleeps: merged (later value wins,
deletions kept and cancelled by a later set), heard as one on waking.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.task import Clock

from gateway.domain.model import AttributeScope, PowerMode
from gateway.service.build import Services
from gateway.service.downlinks import AttributeMerge
from tests.service.conftest import result

SHARED = AttributeScope.SHARED


def test_merge_later_value_wins_and_set_cancels_deletion() -> None:
    """A later value replaces an earlier one; a set after a deletion cancels it, and back."""
    merge = AttributeMerge()
    merge.add({"a": 1, "b": 1})
    merge.add({"deleted": ["b", "c"]})
    merge.add({"a": 2, "c": 3})
    merge.add({"deleted": ["a"]})
    assert merge.notification() == {"c": 3, "deleted": ["b", "a"]}


def test_merge_of_updates_only_has_no_deleted_key() -> None:
    """Without deletions the merged notification is a plain {k: v} object."""
    merge = AttributeMerge()
    assert not merge
    merge.add({"x": [1]})
    assert merge and merge.notification() == {"x": [1]}


def _psm(services: Services) -> str:
    power = {"power_mode": PowerMode.PSM, "psm_activity_timer": 5000}
    return result(services.registry.create_device("psm", power=power)).device.id


def test_changes_wait_while_asleep_and_go_as_one_on_waking(
    services: Services, clock: Clock
) -> None:
    """While a PSM device sleeps its subscriber hears nothing; on its uplink, one merge."""
    d = _psm(services)
    heard: list[dict[str, Any]] = []
    services.devices.subscribe_attributes(d, heard.append)
    attributes = services.attributes
    result(attributes.set_attributes(d, SHARED, {"led": 1, "fw": "1.0"}))
    result(attributes.delete_attributes(d, SHARED, ["fw"]))
    result(attributes.set_attributes(d, SHARED, {"led": 2}))
    assert heard == []
    services.devices.report_seen(d, "uplink")
    clock.advance(0)
    assert heard == [{"led": 2, "deleted": ["fw"]}]
    result(attributes.set_attributes(d, SHARED, {"led": 3}))
    assert heard[1:] == [{"led": 3}]


def test_changes_held_again_after_the_window(services: Services, clock: Clock) -> None:
    """Once the activity timer has run out, changes wait for the next uplink again."""
    d = _psm(services)
    heard: list[dict[str, Any]] = []
    services.devices.subscribe_attributes(d, heard.append)
    services.devices.report_seen(d, "uplink")
    clock.advance(5)
    result(services.attributes.set_attributes(d, SHARED, {"x": 1}))
    assert heard == []
    services.devices.report_seen(d, "ack")
    clock.advance(0)
    assert heard == [{"x": 1}]


def test_unsubscribed_while_asleep_hears_nothing(services: Services, clock: Clock) -> None:
    """A subscription ended while changes waited gets none of them on waking."""
    d = _psm(services)
    heard: list[dict[str, Any]] = []
    stop = services.devices.subscribe_attributes(d, heard.append)
    result(services.attributes.set_attributes(d, SHARED, {"x": 1}))
    stop()
    services.devices.report_seen(d, "uplink")
    clock.advance(0)
    assert heard == []
    assert services.attributes.subscriber_count(d) == 0
