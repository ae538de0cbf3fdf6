# -*- test-case-name: tests.dialects.test_drogue -*-
"""
Drogue's CoAP resource tree: C{/v1/{channel}[/{suffix...}]}.

POST or PUT publishes (any other method is 4.05, before authentication):
the route parses the path and every query option, authenticates the device
(L{gateway.dialects.drogue.auth}; failures count against the source
address as wrong credentials), reads the payload
(L{gateway.dialects.drogue.payload}) and commits the event.  With C{as},
an authenticated gateway publishes (and waits for commands) for another
device of its application, which must list it among its C{gateways} (else
4.03; Drogue parses C{as} and ignores it over CoAP).  Then:

 - without C{ct} (or C{ct=0}): 2.04 Changed, empty;
 - with C{ct > 0} (at most the dialect's C{max_command_timeout}): the
   device waits for a command through the RPC queue; a CON request gets
   its empty ACK at once (so the device stops retransmitting), then a
   separate response: 2.05 Content with the command's name in option 4210
   and its payload, or 2.04 when C{ct} runs out.  A NON request gets a NON.
   Commands queued while the device was not waiting go out on its next
   waiting publish (Drogue drops them; so do applications listed in
   C{[rpc] drop_applications}).

A command's payload is its RPC C{params}: a string as its UTF-8 bytes,
C{null} as nothing, any other value as JSON; its C{content_type} (the
Content-Type it was sent with) goes as the Content-Format when CoAP has
one for it (Drogue sends none).
"""

from __future__ import annotations

from typing import Any, Optional

import attrs
from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IReactorTime
from txthings import coap as tx

from gateway.coap import errors
from gateway.coap import numbers as n
from gateway.coap import options as coap_options
from gateway.coap.exchange import accept
from gateway.coap.resource import Resource
from gateway.dialects import jsonio
from gateway.dialects.failures import service_failure
from gateway.dialects.toolkit import DeviceLeaf, DeviceRoute, Leaf
from gateway.domain.model import Device, Rpc
from gateway.service.interfaces import Delivery, IDeviceServices, Publication

from .auth import AUTH_OPTION, authenticate
from .payload import content_format, read_payload
from .query import PublishOptions, parse_path, parse_query
from .shape import publisher_extensions

__all__ = ["COMMAND_OPTION", "Context", "V1"]

#: The option carrying a command's name in the answer to a publish.
COMMAND_OPTION = 4210

_METHODS = frozenset({n.POST, n.PUT})


@attrs.frozen
class Context:
    """What the dialect's resources share."""

    devices: IDeviceServices
    clock: IReactorTime
    #: The longest C{ct} honoured, in seconds (a longer one is cut to it).
    max_command_timeout: int = 60


def command_payload(rpc: Rpc) -> bytes:
    """The payload a command goes out with."""
    if rpc.params is None:
        return b""
    if isinstance(rpc.params, str):
        return rpc.params.encode("utf-8")
    return jsonio.dumps(rpc.params)


class PublishResource(DeviceLeaf):
    """One publish of an authenticated device."""

    def __init__(
        self,
        context: Context,
        channel: str,
        suffix: Optional[str],
        query: PublishOptions,
        device: Device,
    ) -> None:
        super().__init__(context.devices, device)
        self._context = context
        self._channel = channel
        self._suffix = suffix
        self._query = query

    def render_POST(self, request: Any) -> Any:
        target = self._target()
        payload, media = read_payload(request.payload, request.opt.content_format)
        extensions = publisher_extensions(self.device)
        if self._query.data_schema is not None:
            extensions["dataschema"] = self._query.data_schema
        if self._suffix is not None:
            extensions["subjectsuffix"] = self._suffix
        publication = Publication(self._channel, payload, media, extensions)
        d = self.devices.publish(target.id, publication)
        d.addCallbacks(self._published, service_failure, (request, target))
        return d

    render_PUT = render_POST

    def _target(self) -> Device:
        """The device published for: this one, or with C{as} one it is a gateway of."""
        name = self._query.as_
        if name is None or name == self.device.name:
            return self.device
        target = self.devices.find_device(self.device.application, name)
        if target is None or self.device.name not in target.gateways:
            raise errors.Forbidden("Authentication failed")
        return target

    def _published(self, _: None, request: Any, target: Device) -> Any:
        ct = min(self._query.ct or 0, self._context.max_command_timeout)
        if ct <= 0:
            return tx.Message(code=n.CHANGED)
        accept(request)
        return CommandWait(self._context, target.id, ct).answer


class CommandWait:
    """
    A publish waiting up to C{seconds} for a command: C{answer} fires with
    the response (the command, or 2.04 when the time is up).
    """

    def __init__(self, context: Context, device_id: str, seconds: int) -> None:
        self.answer: Deferred[Any] = Deferred()
        self._timer = context.clock.callLater(seconds, self._finish, tx.Message(code=n.CHANGED))
        self._unsubscribe = context.devices.subscribe_rpc(device_id, self._deliver)

    def _deliver(self, rpc: Rpc) -> "Deferred[Delivery]":
        if self.answer.called:
            return succeed("gone")
        response = tx.Message(code=n.CONTENT, payload=command_payload(rpc))
        response.opt.addOption(tx.OpaqueOption(COMMAND_OPTION, rpc.method.encode("utf-8")))
        number = content_format(rpc.content_type)
        if number is not None:
            response.opt.content_format = number
        self._finish(response)
        # The answer to the device's own request: nothing more to wait for.
        return succeed("non")

    def _finish(self, response: Any) -> None:
        if self._timer.active():
            self._timer.cancel()
        self._unsubscribe()
        self.answer.callback(response)


class _PublishRoute(DeviceRoute):
    understood_options = frozenset({AUTH_OPTION})


class V1(Resource):
    """C{/v1}: each child path is a channel (and its suffix)."""

    understood_options = frozenset({AUTH_OPTION})

    def __init__(self, context: Context) -> None:
        super().__init__()
        self._context = context

    def render_POST(self, request: Any) -> Any:
        raise errors.BadRequest("Invalid data: Error parsing path: no channel")

    render_PUT = render_POST

    def getChild(self, path: bytes, request: Any) -> Resource:
        try:
            channel, suffix = parse_path([path, *request.postpath])
            query = parse_query(coap_options.values(request, n.URI_QUERY))
        except errors.CoAPError as e:
            return _Refused(e)
        context = self._context
        return _PublishRoute(
            context.devices,
            lambda devices, request: authenticate(devices, request, query),
            lambda device: PublishResource(context, channel, suffix, query, device),
            _METHODS,
            "Authentication failed",
            errors.Forbidden,
        )


class _Refused(Leaf):
    """Answers every publish with one error (a bad path or query)."""

    understood_options = frozenset({AUTH_OPTION})

    def __init__(self, error: errors.CoAPError) -> None:
        super().__init__()
        self._error = error

    def render_POST(self, request: Any) -> Any:
        raise self._error

    render_PUT = render_POST
