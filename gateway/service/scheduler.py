# -*- test-case-name: tests.service.test_scheduler -*-
"""
The power-saving scheduler: when each device can be reached, from the
device activity it hears (L{gateway.service.activity}), on the injected
clock.

 - No power saving, DRX: always reachable.
 - PSM: reachable for the activity timer after each uplink and after the
   ACK of a confirmable notification; then asleep until heard again.
 - eDRX: reachable in the paging window after each uplink (or ACK), then at
   every eDRX cycle boundary after it, each time for the paging window.
 - A confirmable notification that times out marks the device asleep, in
   every mode, until it is heard again (an eDRX device also at its next
   boundary).

Each device that saves power (or was lost) has a L{_Window}, an Automat
machine with two states, awake and asleep, whose outputs arm one timer and
report the change; the timer's adapter tells a window's end from a
boundary.  A device never heard from since the gateway started is asleep
if it saves power, unless a store several nodes share recorded when it was
last heard (L{gateway.service.heard}): its windows count from then.
Listeners hear every change (C{(device_id, awake)}), after it happened;
the RPC queue and the held attribute updates go out on a wake.
Settings are read at every uplink, so a changed profile applies from the
device's next one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Optional, Protocol

import attrs
from automat import TypeMachineBuilder
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger

from gateway.domain.errors import NotFound
from gateway.domain.model import Device, PowerMode, Profile
from gateway.service.credentials import CredentialCache
from gateway.service.interfaces import (
    ActivityEvent,
    DeviceSeen,
    Unsubscribe,
)
from gateway.service.power import PowerDefaults, PowerSettings, resolve_power

__all__ = ["PowerScheduler", "Reachability", "ReachabilityListener"]

log = Logger()

#: Hears C{(device_id, awake)} after each change of a device's reachability.
ReachabilityListener = Callable[[str, bool], None]


@attrs.frozen
class Reachability:
    """
    A device's reachability as the API shows it (times in ms since the epoch).

    @ivar awake_until: when the open window closes (C{None}: not awake, or
        no window: always reachable).
    @ivar next_window: when the next window opens, if known (eDRX).
    @ivar last_heard: the last uplink or ACK since the gateway started.
    """

    mode: PowerMode
    awake: bool
    awake_until: Optional[int]
    next_window: Optional[int]
    last_heard: Optional[int]


class _Reach(Protocol):
    """The inputs of one device's machine (times: the clock's seconds)."""

    def heard(self, until: Optional[float]) -> None:
        """Heard from: reachable until C{until} (C{None}: until lost)."""

    def opened(self, until: float) -> None:
        """An eDRX boundary: reachable until C{until}."""

    def closed(self, next_open: Optional[float]) -> None:
        """The window closed; the next opens at C{next_open} (C{None}: when heard)."""

    def lost(self, next_open: Optional[float]) -> None:
        """A confirmable notification timed out."""

    def awake(self) -> bool:
        """Whether the device can be reached now."""


@dataclass
class _Core:
    #: Close the open window at this time (C{None}: never, until lost).
    close_at: Callable[[Optional[float]], None]
    #: Open the next window at this time (C{None}: when heard).
    open_at: Callable[[Optional[float]], None]
    #: Report the change of state (awake or not).
    changed: Callable[[bool], None]


_builder = TypeMachineBuilder(_Reach, _Core)
_asleep = _builder.state("asleep")
_awake = _builder.state("awake")


@_asleep.upon(_Reach.heard).to(_awake)
def _wake_heard(reach: _Reach, core: _Core, until: Optional[float]) -> None:
    core.close_at(until)
    core.changed(True)


@_awake.upon(_Reach.heard).loop()
def _stay_heard(reach: _Reach, core: _Core, until: Optional[float]) -> None:
    core.close_at(until)


@_asleep.upon(_Reach.opened).to(_awake)
def _wake_boundary(reach: _Reach, core: _Core, until: float) -> None:
    core.close_at(until)
    core.changed(True)


@_awake.upon(_Reach.opened).loop()
def _stay_open(reach: _Reach, core: _Core, until: float) -> None:
    core.close_at(until)


@_awake.upon(_Reach.closed).to(_asleep)
def _sleep(reach: _Reach, core: _Core, next_open: Optional[float]) -> None:
    core.open_at(next_open)
    core.changed(False)


@_asleep.upon(_Reach.closed).loop()
def _stay_closed(reach: _Reach, core: _Core, next_open: Optional[float]) -> None:
    core.open_at(next_open)


@_awake.upon(_Reach.lost).to(_asleep)
def _lose(reach: _Reach, core: _Core, next_open: Optional[float]) -> None:
    core.open_at(next_open)
    core.changed(False)


@_asleep.upon(_Reach.lost).loop()
def _stay_lost(reach: _Reach, core: _Core, next_open: Optional[float]) -> None:
    core.open_at(next_open)


_awake.upon(_Reach.awake).loop().returns(True)
_asleep.upon(_Reach.awake).loop().returns(False)

_Machine = _builder.build()


class _Window:
    """
    One device's machine and the adapter of its one timer to the clock:
    the timer fires L{PowerScheduler._tick}, which tells the machine whether
    a window closed or an eDRX boundary came.
    """

    __slots__ = (
        "_clock", "_timer", "_tick", "device_id", "until", "next_open", "anchor", "settings",
        "machine",
    )

    def __init__(
        self,
        clock: IReactorTime,
        device_id: str,
        awake: bool,
        tick: Callable[["_Window"], None],
        changed: Callable[[bool], None],
    ) -> None:
        self._clock = clock
        self.device_id = device_id
        self._timer: Optional[IDelayedCall] = None
        self._tick = tick
        #: When the open window closes, or the next one opens (seconds).
        self.until: Optional[float] = None
        self.next_open: Optional[float] = None
        #: The last time heard, which eDRX cycles count from.
        self.anchor: Optional[float] = None
        self.settings: Optional[PowerSettings] = None
        self.machine = _Machine(
            _Core(self._close_at, self._open_at, changed), _awake if awake else _asleep
        )

    def _close_at(self, at: Optional[float]) -> None:
        self.until, self.next_open = at, None
        self._arm(at)

    def _open_at(self, at: Optional[float]) -> None:
        self.until, self.next_open = None, at
        self._arm(at)

    def _arm(self, at: Optional[float]) -> None:
        if at is None:
            self.cancel()
            return
        delay = max(at - self._clock.seconds(), 0.0)
        if self._timer is not None and self._timer.active():
            self._timer.reset(delay)
        else:
            self._timer = self._clock.callLater(delay, self._tick, self)

    def cancel(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None


def _next_boundary(settings: PowerSettings, anchor: Optional[float], now: float) -> Optional[float]:
    """The next eDRX cycle boundary after C{now} counted from C{anchor} (None: not eDRX)."""
    if settings.mode is not PowerMode.EDRX or anchor is None:
        return None
    cycle = settings.edrx_cycle / 1000
    return anchor + (math.floor((now - anchor) / cycle) + 1) * cycle


def _ms(seconds: Optional[float]) -> Optional[int]:
    return None if seconds is None else int(seconds * 1000)


@attrs.define
class PowerScheduler:
    """
    Decides when each device can be reached; subscribe it to the device
    activity with L{PowerScheduler.activity}.
    """

    _clock: IReactorTime
    _cache: CredentialCache
    _defaults: PowerDefaults = attrs.field(factory=PowerDefaults)
    #: The devices that save power or were lost, by id.
    _windows: dict[str, _Window] = attrs.field(factory=dict)
    _listeners: list[ReachabilityListener] = attrs.field(factory=list)
    #: When each device was last heard from (seconds), for the API.
    _heard: dict[str, float] = attrs.field(factory=dict)
    _resolved: dict[str, tuple[Device, Optional[Profile], PowerSettings]] = attrs.field(
        factory=dict
    )

    def settings(self, device_id: str) -> Optional[PowerSettings]:
        """The device's settings, or C{None} if it is unknown."""
        device = self._cache.device(device_id)
        if device is None:
            return None
        profile = self._cache.profile(device.profile)
        # Every uplink asks: resolve again only when the cache holds another
        # record of the device or its profile (it replaces them on a change).
        known = self._resolved.get(device_id)
        if known is not None and known[0] is device and known[1] is profile:
            return known[2]
        settings = resolve_power(device, profile, self._defaults)
        if len(self._resolved) >= 65536:
            self._resolved.clear()
        self._resolved[device_id] = (device, profile, settings)
        return settings

    # -- what the scheduler hears ------------------------------------------

    def activity(self, event: ActivityEvent) -> None:
        """An L{gateway.service.interfaces.ActivityListener}."""
        settings = self.settings(event.device_id)
        if settings is None:
            return
        if isinstance(event, DeviceSeen):
            self._heard_from(event.device_id, event.at, settings)
        else:
            self._lost(event.device_id, event.at, settings)

    def heard_elsewhere(self, device_id: str, at: float) -> None:
        """
        Another node heard the device at C{at} (the clock's seconds), or
        this one did before it restarted: its windows count from then
        unless it was heard later here.
        """
        settings = self.settings(device_id)
        if settings is None or at <= self._heard.get(device_id, -math.inf):
            return
        self._heard_from(device_id, at, settings)

    def _heard_from(self, device_id: str, at: float, settings: PowerSettings) -> None:
        self._heard[device_id] = at
        window = self._windows.get(device_id)
        if settings.always_reachable:
            if window is not None:
                # Awake for good: the machine is not needed any more.
                del self._windows[device_id]
                window.settings = settings
                window.machine.heard(None)
                window.cancel()
            return
        if window is None:
            window = self._window(device_id, awake=False)
        window.anchor = at
        window.settings = settings
        timer = (
            settings.psm_activity_timer
            if settings.mode is PowerMode.PSM
            else settings.paging_transmission_window
        )
        window.machine.heard(at + timer / 1000)

    def _lost(self, device_id: str, at: float, settings: PowerSettings) -> None:
        window = self._windows.get(device_id)
        if window is None:
            window = self._window(device_id, awake=self.awake(device_id))
        window.settings = settings
        window.machine.lost(_next_boundary(settings, window.anchor, at))

    def _window(self, device_id: str, awake: bool) -> _Window:
        window = _Window(
            self._clock, device_id, awake, self._tick, lambda now: self._changed(device_id, now)
        )
        self._windows[device_id] = window
        return window

    def _tick(self, window: _Window) -> None:
        settings = window.settings
        assert settings is not None
        if self._cache.device(window.device_id) is None:
            self.forget(window.device_id)  # deleted: no more windows
            return
        now = self._clock.seconds()
        if window.machine.awake():
            window.machine.closed(_next_boundary(settings, window.anchor, now))
        else:
            window.machine.opened(now + settings.paging_transmission_window / 1000)

    def _changed(self, device_id: str, awake: bool) -> None:
        log.debug(
            "device {device_id} is {state}", device_id=device_id,
            state="awake" if awake else "asleep",
        )
        # After the transition: a listener may ask the machine at once.
        self._clock.callLater(0, self._publish, device_id, awake)

    def _publish(self, device_id: str, awake: bool) -> None:
        for listener in list(self._listeners):
            try:
                listener(device_id, awake)
            except Exception:
                log.failure("reachability listener failed for {device_id}", device_id=device_id)

    # -- what others ask -----------------------------------------------------

    def awake(self, device_id: str) -> bool:
        """Whether the device can be reached now."""
        window = self._windows.get(device_id)
        if window is not None:
            return window.machine.awake()
        settings = self.settings(device_id)
        return settings is not None and settings.always_reachable

    def reachability(self, device_id: str) -> Reachability:
        """The device's reachability; L{NotFound} if it is unknown."""
        settings = self.settings(device_id)
        if settings is None:
            raise NotFound(f"no device {device_id!r}")
        window = self._windows.get(device_id)
        awake = self.awake(device_id)
        return Reachability(
            mode=settings.mode,
            awake=awake,
            awake_until=None if window is None or not awake else _ms(window.until),
            next_window=None if window is None or awake else _ms(window.next_open),
            last_heard=_ms(self._heard.get(device_id)),
        )

    def subscribe(self, listener: ReachabilityListener) -> Unsubscribe:
        """Hear every later change, until the returned callable is called."""
        self._listeners.append(listener)

        def unsubscribe() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return unsubscribe

    def forget(self, device_id: str) -> None:
        """Drop what is known of a deleted device."""
        window = self._windows.pop(device_id, None)
        if window is not None:
            window.cancel()
        self._heard.pop(device_id, None)

    def stop(self) -> None:
        """Cancel every timer (the gateway stops)."""
        for window in self._windows.values():
            window.cancel()
