# -*- test-case-name: tests.service.test_scheduler -*-
"""
Power-saving settings: a device's own (L{Device}), else its profile's
(L{Profile}), else the gateway's defaults (the C{[power]} section,
ThingsBoard's C{COAP_PSM_ACTIVITY_TIMER} and
C{COAP_PAGING_TRANSMISSION_WINDOW}).  As in ThingsBoard, a timer of 0
counts as unset.

Unlike ThingsBoard, the eDRX cycle is used: an eDRX device is reachable in
the paging window after each uplink and again at every cycle boundary
after it (ThingsBoard stores C{edrxCycle} and never reads it).
"""

from __future__ import annotations

from typing import Optional

import attrs
from attrs import validators as v

from gateway.domain.model import Device, PowerMode, Profile

__all__ = ["PowerDefaults", "PowerSettings", "resolve_power"]

_TIMERS = ("psm_activity_timer", "edrx_cycle", "paging_transmission_window")


@attrs.frozen
class PowerDefaults:
    """The C{[power]} section: timers (ms) used where neither device nor profile sets one."""

    #: How long a PSM device stays reachable after it was heard from.
    psm_activity_timer: int = attrs.field(default=10_000, validator=v.ge(1))
    #: How long an eDRX device listens after an uplink and at each cycle boundary.
    paging_transmission_window: int = attrs.field(default=10_000, validator=v.ge(1))
    #: The eDRX cycle (ThingsBoard's UI default, 81 s).
    edrx_cycle: int = attrs.field(default=81_000, validator=v.ge(1))


@attrs.frozen
class PowerSettings:
    """What applies to one device (timers in ms)."""

    mode: PowerMode
    psm_activity_timer: int
    edrx_cycle: int
    paging_transmission_window: int

    @property
    def always_reachable(self) -> bool:
        """No power saving, DRX, or an eDRX window as long as its cycle."""
        if self.mode is PowerMode.EDRX:
            return self.paging_transmission_window >= self.edrx_cycle
        return self.mode is not PowerMode.PSM


def resolve_power(
    device: Device, profile: Optional[Profile], defaults: PowerDefaults
) -> PowerSettings:
    """The settings of C{device}: its own, else its profile's, else C{defaults}."""
    mode = device.power_mode
    if mode is None:
        mode = PowerMode.NONE if profile is None else profile.power_mode
    timers: dict[str, int] = {}
    for name in _TIMERS:
        own = getattr(device, name)
        inherited = None if profile is None else getattr(profile, name)
        timers[name] = own or inherited or getattr(defaults, name)
    return PowerSettings(mode, **timers)
