# -*- test-case-name: tests.dialects.test_thingsboard_plugin -*-
"""
The ThingsBoard dialect object: options and installation under C{/api/v1},
C{/fw} and C{/sw}.

Options (L{ThingsBoardDialect.configure}):

 - C{max_string_length}: ThingsBoard's C{JSON_MAX_STRING_VALUE_LENGTH}
   (0 = unlimited; a longer string value is a 4.00);
 - C{type_cast}: ThingsBoard's C{JSON_TYPE_CAST_ENABLED} (numeric strings
   stored as numbers; on by default, as there).
"""

from __future__ import annotations

from typing import Any, Mapping

import attrs
from twisted.internet.interfaces import IReactorTime
from twisted.plugin import IPlugin
from zope.interface import implementer

from gateway.coap.resource import Resource
from gateway.dialect import IDialect
from gateway.domain.ota import OtaKind
from gateway.service.interfaces import IDeviceServices

from .ota import ota_route
from .payload import JSONRules
from .resources import ApiV1, Context

__all__ = ["ThingsBoardDialect"]


@implementer(IPlugin, IDialect)
@attrs.frozen
class ThingsBoardDialect:
    name: str = "thingsboard"
    #: Our own event shape.
    event_shape: None = None
    rules: JSONRules = attrs.field(factory=JSONRules)

    def configure(self, options: Mapping[str, Any]) -> "ThingsBoardDialect":
        known = {field.name for field in attrs.fields(JSONRules)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise ValueError(f"unknown thingsboard option(s): {', '.join(unknown)}")
        try:
            return attrs.evolve(self, rules=attrs.evolve(self.rules, **options))
        except (TypeError, ValueError) as e:
            raise ValueError(f"bad thingsboard option: {e}") from None

    def install(self, root: Any, devices: IDeviceServices, clock: IReactorTime) -> None:
        api = root.children.get(b"api")
        if api is None:
            api = Resource()
            api.visible = False
            root.putChild(b"api", api)
        v1 = ApiV1(Context(devices, clock, self.rules))
        v1.visible = False
        api.putChild(b"v1", v1)
        root.putChild(b"fw", ota_route(devices, OtaKind.FIRMWARE))
        root.putChild(b"sw", ota_route(devices, OtaKind.SOFTWARE))
