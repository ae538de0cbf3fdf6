# -*- test-case-name: tests.dialects.test_drogue -*-
"""
The Drogue dialect object: options, its event shape, and installation
under C{/v1}.

Options (L{DrogueDialect.configure}):

 - C{max_command_timeout}: the longest C{ct} a publish waits for a command,
   in seconds (60 by default, Drogue's session timeout); a longer one is
   cut to it.
"""

from __future__ import annotations

from typing import Any, Mapping

import attrs
from twisted.internet.interfaces import IReactorTime
from twisted.plugin import IPlugin
from zope.interface import implementer

from gateway.dialect import IDialect
from gateway.domain.events import EventShape
from gateway.service.interfaces import IDeviceServices

from .resources import V1, Context
from .shape import DROGUE_SHAPE

__all__ = ["DrogueDialect"]


def _positive(instance: Any, attribute: Any, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{attribute.name} must be a positive whole number of seconds")


@implementer(IPlugin, IDialect)
@attrs.frozen
class DrogueDialect:
    name: str = "drogue"
    event_shape: EventShape = DROGUE_SHAPE
    max_command_timeout: int = attrs.field(default=60, validator=_positive)

    def configure(self, options: Mapping[str, Any]) -> "DrogueDialect":
        unknown = sorted(set(options) - {"max_command_timeout"})
        if unknown:
            raise ValueError(f"unknown drogue option(s): {', '.join(unknown)}")
        try:
            return attrs.evolve(self, **options)
        except (TypeError, ValueError) as e:
            raise ValueError(f"bad drogue option: {e}") from None

    def install(self, root: Any, devices: IDeviceServices, clock: IReactorTime) -> None:
        v1 = V1(Context(devices, clock, self.max_command_timeout))
        v1.visible = False
        root.putChild(b"v1", v1)
