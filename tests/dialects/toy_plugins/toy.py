"""
A toy second dialect, made only of the toolkit: C{POST /toy?u=USER&p=PASSWORD}
with a JSON object stores it as telemetry and answers C{{"device": NAME}}.
"""

from typing import Any, Mapping

from twisted.plugin import IPlugin
from zope.interface import implementer

from gateway.coap import numbers as n
from gateway.dialect import IDialect
from gateway.dialects.failures import service_failure
from gateway.dialects.jsonio import json_response, parse_object
from gateway.dialects.toolkit import DeviceLeaf, DeviceRoute


class Reading(DeviceLeaf):
    def render_POST(self, request: Any) -> Any:
        d = self.devices.record_telemetry(self.device.id, [(None, parse_object(request.payload))])
        d.addCallback(lambda _: json_response({"device": self.device.name}, n.CHANGED))
        return d.addErrback(service_failure)


def basic(devices: Any, request: Any) -> Any:
    query = dict(q.decode().partition("=")[::2] for q in request.opt.uri_query)
    return devices.authenticate_basic(query.get("u", ""), query.get("p", ""))


@implementer(IPlugin, IDialect)
class Toy:
    name = "toy"
    event_shape = None

    def configure(self, options: Mapping[str, Any]) -> "Toy":
        return self

    def install(self, root: Any, devices: Any, clock: Any) -> None:
        serve = lambda device: Reading(devices, device)  # noqa: E731
        root.putChild(b"toy", DeviceRoute(devices, basic, serve, {n.POST}))


toy = Toy()
