# -*- test-case-name: tests.dialects.test_toolkit -*-
"""
The resources a dialect's tree is made of.

 - L{Leaf} takes the rest of the path and is not listed in
   C{/.well-known/core}; L{Refuse} answers GET and POST with one error.
 - L{DeviceRoute} authenticates in C{resolve}, where a Deferred may be
   returned (so a password is hashed off the reactor thread), reports the
   device seen, and hands the request to a resource bound to that device: a
   L{DeviceLeaf}, or the device's L{ObservedDeviceResource}.  A method the
   route does not serve is a 4.05 before any authentication is spent on it.
   Credentials that authenticate nobody are reported against the request's
   source address, and a source throttled for them (L{check_source}) gets
   4.29 with Max-Age before anything, a password hash included, is spent.
 - L{ObservedDeviceResource}: one device's observable resource, kept in an
   L{ObservedResources} table while it has observers, so that one
   subscription feeds all of them and the engine's per-resource observer cap
   is a per-device cap.  The outcome of each confirmable notification is
   reported as device activity (an ACK: seen; a timeout: unreachable), and a
   device removed or disabled has its observations ended.
 - L{authenticate_peer}: the device of a DTLS session's identity;
   L{authenticate_token}: the device of a URL's access token, where one may
   be used.
 - L{request_source}, L{check_source}: the address a request counts
   against, and the 4.29 for a throttled one.
"""

from __future__ import annotations

from typing import Any, Callable, Collection, Optional, Union

import attrs
from twisted.internet.defer import Deferred

from gateway.coap import errors
from gateway.coap.peer import PeerIdentity, normalise_host
from gateway.coap.resource import NotificationRenderer, Resource
from gateway.dialects.failures import TooManyRequests
from gateway.domain.model import CredentialKind, Device
from gateway.service.interfaces import IDeviceServices

__all__ = [
    "Leaf",
    "Refuse",
    "Authenticate",
    "authenticate_peer",
    "authenticate_token",
    "request_source",
    "check_source",
    "DeviceRoute",
    "DeviceLeaf",
    "ObservedResources",
    "ObservedDeviceResource",
]

#: The device a request authenticates as, C{None}, or a Deferred of either.
MaybeDevice = Union[Optional[Device], "Deferred[Optional[Device]]"]

#: Authenticates one request with the device services.
Authenticate = Callable[[IDeviceServices, Any], MaybeDevice]


class Leaf(Resource):
    """A resource that serves the whole rest of its path, unlisted."""

    isLeaf = True

    def __init__(self) -> None:
        super().__init__()
        self.visible = False


class Refuse(Leaf):
    """Answers GET and POST with one error (PUT and DELETE get 4.05)."""

    def __init__(self, error: type[errors.CoAPError], diagnostic: str) -> None:
        super().__init__()
        self._error = error
        self._diagnostic = diagnostic

    def render_GET(self, request: Any) -> Any:
        raise self._error(self._diagnostic)

    render_POST = render_GET


#: The credential each kind of DTLS identity (L{PeerIdentity.kind}) is registered as.
_IDENTITY_KINDS = {"psk": CredentialKind.PSK, "x509": CredentialKind.X509}


def authenticate_peer(devices: IDeviceServices, request: Any) -> Optional[Device]:
    """
    The device of the request's DTLS identity; C{None} over plain UDP and
    on sessions without a client identity.
    """
    identity = request.peer.identity
    if not isinstance(identity, PeerIdentity):
        return None
    return devices.authenticate_identity(_IDENTITY_KINDS[identity.kind], identity.value)


def authenticate_token(devices: IDeviceServices, request: Any, token: str) -> Optional[Device]:
    """
    The device of an access token from the URL: only on plain UDP or on a
    DTLS session without a client identity (a PSK or certificate session
    is its device's alone), and never for a device holding a PSK or
    certificate (L{IDeviceServices.authenticate_token}).
    """
    if not token or request.peer.identity is not None:
        return None
    return devices.authenticate_token(token)


def request_source(request: Any) -> str:
    """The host address a request came from (IPv4-mapped IPv6 as IPv4)."""
    return normalise_host(str(request.remote[0]))


def check_source(devices: IDeviceServices, request: Any) -> str:
    """The request's source; 4.29 with Max-Age if it is throttled."""
    source = request_source(request)
    wait = devices.source_throttled(source)
    if wait is not None:
        raise TooManyRequests("too many wrong credentials from this address", max_age=wait)
    return source


class DeviceRoute(Leaf):
    """
    Serves each request with C{serve(device)}, once C{authenticate} has
    found the device (C{None} is C{refuse}, a 4.01 by default, with
    C{refusal} as diagnostic).

    @param methods: the request codes the device's resources render.
    """

    def __init__(
        self,
        devices: IDeviceServices,
        authenticate: Authenticate,
        serve: Callable[[Device], Resource],
        methods: Collection[int],
        refusal: str = "unknown device",
        refuse: type[errors.CoAPError] = errors.Unauthorized,
    ) -> None:
        super().__init__()
        self._devices = devices
        self._authenticate = authenticate
        self._serve = serve
        self._methods = methods
        self._refusal = refusal
        self._refuse = refuse

    def resolve(self, request: Any) -> Any:
        if request.code not in self._methods:
            raise errors.MethodNotAllowed("method not allowed")
        source = check_source(self._devices, request)
        found = self._authenticate(self._devices, request)
        if isinstance(found, Deferred):
            return found.addCallback(self._admit, source)
        return self._admit(found, source)

    def _admit(self, device: Optional[Device], source: str) -> Resource:
        if device is None:
            self._devices.report_wrong_credentials(source)
            raise self._refuse(self._refusal)
        self._devices.report_seen(device.id, "uplink")
        return self._serve(device)


class DeviceLeaf(Leaf):
    """A leaf serving one request of an authenticated device."""

    def __init__(self, devices: IDeviceServices, device: Device) -> None:
        super().__init__()
        self.devices = devices
        self.device = device


@attrs.define
class ObservedResources:
    """The observed resource of each device that has observers."""

    _by_device: dict[str, "ObservedDeviceResource"] = attrs.field(factory=dict)

    def get(
        self, device_id: str, make: Callable[[], "ObservedDeviceResource"]
    ) -> "ObservedDeviceResource":
        """The device's observed resource, or C{make()}."""
        found = self._by_device.get(device_id)
        return found if found is not None else make()

    def add(self, resource: "ObservedDeviceResource") -> None:
        # Should another resource of the device be observed already, both
        # stay watching and each stops when its own last observer goes.
        self._by_device.setdefault(resource.device_id, resource)

    def discard(self, resource: "ObservedDeviceResource") -> None:
        if self._by_device.get(resource.device_id) is resource:
            del self._by_device[resource.device_id]


class ObservedDeviceResource(Leaf):
    """
    One device's observable resource.  Subclasses start feeding it in
    L{watch} (its first observer came) and stop in L{unwatch} (the last one
    went), and notify with L{notify_device}.
    """

    observable = True

    def __init__(
        self, devices: IDeviceServices, device_id: str, table: ObservedResources
    ) -> None:
        super().__init__()
        self.devices = devices
        self.device_id = device_id
        self._table = table
        self._watching = False

    def watch(self) -> None:
        """The first observer came: start what notifies it."""

    def unwatch(self) -> None:
        """The last observer went: stop."""

    def observer_added(self, observation: Any) -> None:
        self._table.add(self)
        if not self._watching:
            self._watching = True
            self.watch()

    def observer_removed(self, observation: Any) -> None:
        if self.observers:
            return
        if self._watching:
            self._watching = False
            self.unwatch()
        self._table.discard(self)

    def notification_settled(self, observation: Any, outcome: str) -> None:
        if outcome == "ack":
            self.devices.report_seen(self.device_id, "ack")
        elif outcome == "timeout":
            self.devices.report_unreachable(self.device_id, "timeout")

    def notify_device(self, render: NotificationRenderer) -> None:
        """Notify every observer with C{render(request)}, while the device is enabled."""

        def checked(request: Any) -> Any:
            if self.devices.enabled_device(self.device_id) is None:
                # Not a 2.xx: the engine ends the observation.
                raise errors.Unauthorized("device removed or disabled")
            return render(request)

        self.notify(checked)
