# -*- test-case-name: tests.dialects.test_drogue -*-
"""
Drogue's authentication table (reference A.2), over the device services.

Option 4209 carries C{Basic base64(user:password)}; with the C{application}
and C{device} query parameters it names the device and the credential:

 - neither, user C{dev@app}: the basic password of device C{dev} of C{app};
 - C{application} only: the password of the device named by the user;
 - both: the username and password, of device C{device} of C{application};
 - C{device} only, user C{user@app}: the username and password of C{user},
   of device C{device} of C{app}.

Without 4209, the DTLS session's identity: a PSK identity C{device@app}
(the device's own), or a registered X.509 client certificate.  4209 on a
session with an identity, a query beside a session identity, or any other
combination authenticates nobody (4.03); no credential at all is a 4.01.
"""

from __future__ import annotations

import binascii
from base64 import b64decode
from typing import Any, Optional
from urllib.parse import unquote

from twisted.internet.defer import Deferred

from gateway.coap import errors
from gateway.coap import options as coap_options
from gateway.coap.peer import PeerIdentity
from gateway.dialects.toolkit import MaybeDevice, authenticate_peer
from gateway.domain.model import Device
from gateway.service.interfaces import IDeviceServices

from .query import PublishOptions

__all__ = ["AUTH_OPTION", "authenticate"]

#: Drogue's credentials option.
AUTH_OPTION = 4209


def _basic(values: tuple[Any, ...]) -> Optional[tuple[str, str]]:
    """(user, password) of the first 4209 value, C{None} if it is not Basic."""
    try:
        scheme, _, encoded = bytes(values[0]).decode("ascii").partition(" ")
        if scheme != "Basic":
            return None
        user, colon, password = b64decode(encoded.strip(), validate=True).decode(
            "utf-8"
        ).partition(":")
    except (UnicodeDecodeError, binascii.Error, ValueError):
        return None
    return (user, password) if colon else None


def _of(device: Optional[Device], application: str, name: str) -> Optional[Device]:
    if device is None or device.application != application or device.name != name:
        return None
    return device


def _password(
    devices: IDeviceServices, application: str, name: str, password: str
) -> "Deferred[Optional[Device]]":
    found = devices.find_device(application, name)
    # An unknown device costs the same hash check as a wrong password.
    return devices.authenticate_password(found.id if found else "", password)


def _username(
    devices: IDeviceServices, user: str, password: str, application: str, name: str
) -> "Deferred[Optional[Device]]":
    d = devices.authenticate_basic(user, password)
    return d.addCallback(_of, application, name)


def authenticate(devices: IDeviceServices, request: Any, query: PublishOptions) -> MaybeDevice:
    """The device of a publish, C{None} for credentials that authenticate nobody."""
    values = coap_options.values(request, AUTH_OPTION)
    identity = request.peer.identity
    app, dev = query.application, query.device
    if values:
        if identity is not None:
            return None
        basic = _basic(values)
        if basic is None:
            return None
        user, password = basic
        if app is None and dev is None:
            name, at, scope = user.partition("@")
            if not at:
                return None
            return _password(devices, scope, unquote(name), password)
        if dev is None:
            assert app is not None
            return _password(devices, app, user, password)
        if app is not None:
            return _username(devices, user, password, app, dev)
        name, at, scope = user.partition("@")
        if not at:
            return None
        return _username(devices, name, password, scope, dev)
    if not isinstance(identity, PeerIdentity):
        raise errors.Unauthorized("missing credentials")
    if app is not None or dev is not None:
        return None
    device = authenticate_peer(devices, request)
    if device is not None and identity.kind == "psk":
        # Drogue's PSK identity names the device: <device>@<application>.
        name, _, application = identity.value.partition("@")
        device = _of(device, application, name)
    return device
