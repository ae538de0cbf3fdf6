# -*- test-case-name: tests.dialects.efento.test_dialect -*-
"""
The Efento dialect object: options, and installation under C{/efento}.

Options (L{EfentoDialect.configure}):

 - C{config_wait}: seconds the answer to an uplink waits for a queued
   configuration to be handed over (1 by default; only when the device has
   RPCs queued);
 - C{profiles}: the names of the profiles whose devices may use the dialect
   (ThingsBoard's "CoAP device type Efento"); any device by default.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional

import attrs
from twisted.internet.interfaces import IReactorTime
from twisted.plugin import IPlugin
from zope.interface import implementer

from gateway.dialect import IDialect
from gateway.domain.events import EventShape
from gateway.service.interfaces import IDeviceServices

from .resources import Context, EfentoResource
from .schema import load_schema

__all__ = ["EfentoDialect"]

_OPTIONS = frozenset({"config_wait", "profiles"})


def _positive(instance: Any, attribute: Any, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"{attribute.name} must be a positive number of seconds")


def _profile_names(value: Any) -> Optional[frozenset[str]]:
    if value is None:
        return None
    if isinstance(value, str) or not all(isinstance(name, str) and name for name in value):
        raise ValueError("profiles must be a list of profile names")
    return frozenset(value)


@implementer(IPlugin, IDialect)
@attrs.frozen
class EfentoDialect:
    name: str = "efento"
    event_shape: Optional[EventShape] = None
    config_wait: float = attrs.field(default=1.0, validator=_positive)
    profiles: Optional[frozenset[str]] = attrs.field(default=None, converter=_profile_names)

    def configure(self, options: Mapping[str, Any]) -> "EfentoDialect":
        unknown = sorted(set(options) - _OPTIONS)
        if unknown:
            raise ValueError(f"unknown efento option(s): {', '.join(unknown)}")
        try:
            return attrs.evolve(self, **options)
        except (TypeError, ValueError) as e:
            raise ValueError(f"bad efento option: {e}") from None

    def install(self, root: Any, devices: IDeviceServices, clock: IReactorTime) -> None:
        context = Context(devices, clock, load_schema(), self.config_wait, self.profiles)
        root.putChild(b"efento", EfentoResource(context))
