"""
The power-saving scheduler on a Clock: DRX always reachable, PSM for the
activity timer after each uplink or ACK, eDRX in the paging window after
an uplink and at every cycle boundary after it, a lost device asleep.
"""

from __future__ import annotations

from typing import Any

import pytest
from twisted.internet.task import Clock

from gateway.domain.errors import NotFound
from gateway.domain.model import Device, PowerMode, Profile
from gateway.service.build import Services
from gateway.service.power import PowerDefaults, resolve_power
from tests.service.conftest import result

START = 1_700_000_000


def device(services: Services, mode: PowerMode, **timers: int) -> str:
    """A device with its own power mode and timers (ms)."""
    power: dict[str, Any] = {"power_mode": mode, **timers}
    return result(services.registry.create_device(f"d-{mode.value}", power=power)).device.id


def changes(services: Services) -> list[tuple[str, bool]]:
    """What the scheduler's listeners hear from now on."""
    heard: list[tuple[str, bool]] = []
    services.scheduler.subscribe(lambda d, awake: heard.append((d, awake)))
    return heard


def test_drx_is_always_reachable(services: Services, clock: Clock) -> None:
    """A DRX device is awake without ever being heard, and stays awake."""
    d = device(services, PowerMode.DRX)
    assert services.scheduler.awake(d)
    services.devices.report_seen(d, "uplink")
    clock.advance(3600)
    assert services.scheduler.awake(d)
    reach = services.scheduler.reachability(d)
    assert (reach.mode, reach.awake, reach.awake_until, reach.next_window) == (
        PowerMode.DRX, True, None, None,
    )
    assert reach.last_heard == START * 1000


def test_lost_device_sleeps_until_heard(services: Services, clock: Clock) -> None:
    """A timed-out notification marks even a DRX device asleep, until its next uplink."""
    d = device(services, PowerMode.DRX)
    heard = changes(services)
    services.devices.report_unreachable(d, "timeout")
    clock.advance(0)
    assert not services.scheduler.awake(d)
    clock.advance(600)
    assert not services.scheduler.awake(d)
    services.devices.report_seen(d, "uplink")
    clock.advance(0)
    assert services.scheduler.awake(d)
    assert heard == [(d, False), (d, True)]


def test_psm_awake_for_the_activity_timer(services: Services, clock: Clock) -> None:
    """A PSM device is asleep until heard, then awake for exactly its activity timer."""
    d = device(services, PowerMode.PSM, psm_activity_timer=5000)
    heard = changes(services)
    assert not services.scheduler.awake(d)
    services.devices.report_seen(d, "uplink")
    clock.advance(4.999)
    assert services.scheduler.awake(d)
    assert services.scheduler.reachability(d).awake_until == (START + 5) * 1000
    clock.advance(0.001)
    assert not services.scheduler.awake(d)
    reach = services.scheduler.reachability(d)
    assert (reach.awake, reach.next_window) == (False, None)
    assert heard == [(d, True), (d, False)]


def test_psm_timer_restarts_on_uplink_and_ack(services: Services, clock: Clock) -> None:
    """Each uplink, and the ACK of a confirmable notification, restarts the activity timer."""
    d = device(services, PowerMode.PSM, psm_activity_timer=5000)
    services.devices.report_seen(d, "uplink")
    clock.advance(4)
    services.devices.report_seen(d, "ack")
    clock.advance(4)
    assert services.scheduler.awake(d)
    services.devices.report_seen(d, "uplink")
    clock.advance(4.5)
    assert services.scheduler.awake(d)
    clock.advance(0.5)
    assert not services.scheduler.awake(d)


def test_edrx_paging_window_and_cycle_boundaries(services: Services, clock: Clock) -> None:
    """eDRX: awake for the paging window after an uplink, then at each cycle boundary."""
    d = device(services, PowerMode.EDRX, edrx_cycle=20_000, paging_transmission_window=2000)
    heard = changes(services)
    services.devices.report_seen(d, "uplink")
    clock.advance(1.999)
    assert services.scheduler.awake(d)
    clock.advance(0.001)
    assert not services.scheduler.awake(d)
    assert services.scheduler.reachability(d).next_window == (START + 20) * 1000
    clock.advance(17.999)
    assert not services.scheduler.awake(d)
    clock.advance(0.001)  # the first boundary
    assert services.scheduler.awake(d)
    assert services.scheduler.reachability(d).awake_until == (START + 22) * 1000
    clock.advance(2)
    assert not services.scheduler.awake(d)
    clock.advance(18)  # the second boundary
    assert services.scheduler.awake(d)
    assert heard == [(d, True), (d, False), (d, True), (d, False), (d, True)]


def test_edrx_uplink_moves_the_cycle(services: Services, clock: Clock) -> None:
    """An uplink between boundaries opens a window and the cycle counts from it."""
    d = device(services, PowerMode.EDRX, edrx_cycle=20_000, paging_transmission_window=2000)
    services.devices.report_seen(d, "uplink")
    clock.advance(7)
    services.devices.report_seen(d, "uplink")
    assert services.scheduler.awake(d)
    clock.advance(2)
    assert not services.scheduler.awake(d)
    clock.advance(11)  # the old boundary (START + 20) passes asleep
    assert not services.scheduler.awake(d)
    clock.advance(7)  # START + 27: 20 s after the second uplink
    assert services.scheduler.awake(d)


def test_edrx_lost_wakes_at_the_next_boundary(services: Services, clock: Clock) -> None:
    """A lost eDRX device sleeps, and is paged again at its next cycle boundary."""
    d = device(services, PowerMode.EDRX, edrx_cycle=20_000, paging_transmission_window=2000)
    services.devices.report_seen(d, "uplink")
    clock.advance(1)
    services.devices.report_unreachable(d, "timeout")
    assert not services.scheduler.awake(d)
    clock.advance(19)
    assert services.scheduler.awake(d)


def test_edrx_window_as_long_as_the_cycle_is_always_reachable(
    services: Services, clock: Clock
) -> None:
    """An eDRX paging window that fills its cycle never sleeps."""
    d = device(services, PowerMode.EDRX, edrx_cycle=2000, paging_transmission_window=2000)
    assert services.scheduler.awake(d)
    services.devices.report_seen(d, "uplink")
    clock.advance(100)
    assert services.scheduler.awake(d)


def test_profile_mode_applies_from_the_next_uplink(services: Services, clock: Clock) -> None:
    """A device without its own mode follows its profile's, read at its uplinks."""
    result(services.registry.create_profile(Profile("sleepy", power_mode=PowerMode.PSM)))
    d = result(services.registry.create_device("s", profile="sleepy")).device.id
    assert not services.scheduler.awake(d)
    services.devices.report_seen(d, "uplink")
    clock.advance(9.9)  # the gateway's default activity timer, 10 s
    assert services.scheduler.awake(d)
    clock.advance(0.1)
    assert not services.scheduler.awake(d)


def test_unknown_device_has_no_reachability(services: Services) -> None:
    """The reachability of a device that does not exist is NotFound."""
    with pytest.raises(NotFound):
        services.scheduler.reachability("nope")


def test_settings_come_from_device_then_profile_then_defaults() -> None:
    """Each timer is the device's, else the profile's, else the default; 0 counts as unset."""
    defaults = PowerDefaults(psm_activity_timer=1, paging_transmission_window=2, edrx_cycle=3)
    profile = Profile("p", power_mode=PowerMode.EDRX, psm_activity_timer=10, edrx_cycle=0)
    own = Device("d", "n", psm_activity_timer=100, paging_transmission_window=0)
    settings = resolve_power(own, profile, defaults)
    assert (settings.mode, settings.psm_activity_timer) == (PowerMode.EDRX, 100)
    assert (settings.paging_transmission_window, settings.edrx_cycle) == (2, 3)
    psm = resolve_power(Device("d", "n", power_mode=PowerMode.PSM), profile, defaults)
    assert (psm.mode, psm.psm_activity_timer) == (PowerMode.PSM, 10)
    assert resolve_power(Device("d", "n"), None, defaults).mode is PowerMode.NONE


def test_deleted_device_is_forgotten_at_its_next_boundary(
    services: Services, clock: Clock
) -> None:
    """An eDRX device deleted while asleep has no more windows (nor timers)."""
    d = device(services, PowerMode.EDRX, edrx_cycle=20_000, paging_transmission_window=2000)
    services.devices.report_seen(d, "uplink")
    clock.advance(2)
    result(services.registry.delete_device(d))
    clock.advance(18)
    assert clock.getDelayedCalls() == []
