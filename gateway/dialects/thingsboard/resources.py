# -*- test-case-name: tests.dialects.test_thingsboard -*-
"""
The ThingsBoard device API's CoAP resource tree under C{/api/v1}.

L{ApiV1} parses the rest of the path the way ThingsBoard does
(L{gateway.dialects.thingsboard.routes}), authenticates the device and hands
the request to a leaf resource bound to that device:

 - C{telemetry}: POST records telemetry (2.01); GET is a 4.00.
 - C{attributes}: POST sets client attributes (2.01); GET answers
   C{{"client":{..},"shared":{..}}} (4.04 when nothing is found); GET with
   Observe answers the shared attributes, then one notification per change.
 - C{claim}: POST records a claim request (2.01).
 - C{provision} (no token): POST provisions a device.
 - C{rpc}: not served yet (4.04).
 - any other feature: 4.00; unknown or missing token: 4.01; PUT and DELETE:
   4.05 (the engine's answer for a missing C{render_*}).

Observation: each observing device has its own L{AttributesResource},
kept in L{Context.observing} while it has observers and subscribed to the
attribute service only as long as that.  Per-device resources also keep the
engine's per-resource observer cap a per-device cap.

Deliberate differences from ThingsBoard:

 - Successes are piggybacked when the service answers within the engine's
   piggyback delay; ThingsBoard sends them as separate CON responses (its
   known bug, PR #15174).
 - A device may hold several attribute observations (say, before and after
   a NAT rebinding) and all are notified; ThingsBoard keeps one per device.
   Stale ones end with an RST, a CON timeout or the engine's caps.
 - GET with Observe on C{telemetry} or C{claim} is a 4.00, not an
   attribute subscription.
 - JSON only: a device whose profile uses protobuf payloads is still
   parsed as JSON.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

import attrs
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from gateway.coap import errors
from gateway.coap import numbers as n
from gateway.coap.resource import Resource
from gateway.dialects.failures import service_failure
from gateway.domain.model import AttributeScope, Device, JSONValue
from gateway.service.build import Services
from gateway.service.interfaces import ProvisionResult, ProvisionStatus, Unsubscribe

from . import payload as rules_
from .payload import JSONRules, PayloadError
from .responses import created, dumps, json_response
from .routes import FEATURES, parse_route

__all__ = ["Context", "ApiV1", "AttributesResource"]

log = Logger()


@attrs.define
class Context:
    """What every resource of the dialect shares."""

    services: Services
    clock: IReactorTime
    rules: JSONRules = attrs.field(factory=JSONRules)
    #: The attributes resource of each device that has observers.
    observing: dict[str, "AttributesResource"] = attrs.field(factory=dict)

    def authenticate(self, token: Optional[str], request: Any) -> Optional[Device]:
        """
        The device of an access token, or without one of the DTLS identity
        (certificate SHA-256 or PSK identity); C{None} when neither matches.
        """
        credentials = self.services.credentials
        if token is not None:
            return credentials.authenticate_token(token) if token else None
        identity = getattr(getattr(request, "peer", None), "identity", None)
        if not isinstance(identity, str) or not identity:
            return None
        device = credentials.authenticate_certificate_sha256(identity)
        if device is None:
            psk = credentials.psk_for_identity(identity)
            device = psk[0] if psk is not None else None
        return device

    def attributes_resource(self, device: Device) -> "AttributesResource":
        """The observed resource of C{device}, or a fresh one."""
        resource = self.observing.get(device.id)
        return resource if resource is not None else AttributesResource(self, device.id)


def _parse(parse: Callable[[], Any]) -> Any:
    try:
        return parse()
    except PayloadError as e:
        raise errors.BadRequest(str(e)) from None


class _Leaf(Resource):
    isLeaf = True

    def __init__(self) -> None:
        super().__init__()
        self.visible = False


class _Refuse(_Leaf):
    """Answers GET and POST with one error (PUT and DELETE get 4.05)."""

    def __init__(self, error: type[errors.CoAPError], diagnostic: str) -> None:
        super().__init__()
        self._error = error
        self._diagnostic = diagnostic

    def render_GET(self, request: Any) -> Any:
        raise self._error(self._diagnostic)

    render_POST = render_GET


class TelemetryResource(_Leaf):
    def __init__(self, context: Context, device: Device) -> None:
        super().__init__()
        self._context = context
        self._device = device

    def render_POST(self, request: Any) -> Any:
        records = _parse(lambda: rules_.telemetry_records(request.payload, self._context.rules))
        d = self._context.services.telemetry.record(self._device.id, records)
        d.addCallbacks(lambda _: created(), service_failure)
        return d

    def render_GET(self, request: Any) -> Any:
        raise errors.BadRequest("telemetry is POST only")


class ClaimResource(_Leaf):
    def __init__(self, context: Context, device: Device) -> None:
        super().__init__()
        self._context = context
        self._device = device

    def render_POST(self, request: Any) -> Any:
        secret, duration = _parse(lambda: rules_.claim_request(request.payload))
        d = self._context.services.claiming.request_claim(self._device.id, secret, duration)
        d.addCallbacks(lambda _: created(), service_failure)
        return d

    def render_GET(self, request: Any) -> Any:
        raise errors.BadRequest("claim is POST only")


class ProvisionResource(_Leaf):
    """C{POST /api/v1/provision}: no device credentials needed."""

    def __init__(self, context: Context) -> None:
        super().__init__()
        self._context = context

    def render_POST(self, request: Any) -> Any:
        provision = _parse(lambda: rules_.provision_request(request.payload))
        d = self._context.services.provisioning.provision(provision)
        d.addCallback(self._answer)
        return d

    def render_GET(self, request: Any) -> Any:
        raise errors.BadRequest("provision is POST only")

    @staticmethod
    def _answer(result: ProvisionResult) -> Any:
        # ThingsBoard sets no Content-Format on provisioning responses.
        if result.status == ProvisionStatus.SUCCESS:
            body: dict[str, JSONValue] = {
                "credentialsValue": result.credentials_value,
                "credentialsType": result.credentials_type,
                "status": result.status,
            }
            return json_response(None, body, n.CREATED, content_format=None)
        body = {"errorMsg": result.error_message(), "status": result.status}
        return json_response(None, body, n.BAD_REQUEST, content_format=None)


class AttributesResource(_Leaf):
    """
    C{/api/v1/{token}/attributes} of one device: client-attribute uplinks,
    attribute reads, and the observation of shared attributes.
    """

    observable = True

    def __init__(self, context: Context, device_id: str) -> None:
        super().__init__()
        self._context = context
        self.device_id = device_id
        self._unsubscribe: Optional[Unsubscribe] = None

    @property
    def subscribed(self) -> bool:
        return self._unsubscribe is not None

    def render_POST(self, request: Any) -> Any:
        values = _parse(lambda: rules_.attribute_values(request.payload, self._context.rules))
        d = self._context.services.attributes.set_attributes(
            self.device_id, AttributeScope.CLIENT, values
        )
        d.addCallbacks(lambda _: created(), service_failure)
        return d

    def render_GET(self, request: Any) -> Any:
        if request.opt.observe is not None:
            if (request.peer.key, request.token) in self.observers:
                self._observe()
            return self._shared_state(request)
        return self._read(request)

    # -- reads ---------------------------------------------------------------

    def _read(self, request: Any) -> Deferred[Any]:
        client_keys, shared_keys = rules_.attribute_query(request.opt.uri_query)
        everything = not client_keys and not shared_keys
        attributes = self._context.services.attributes

        async def read() -> Any:
            body: dict[str, dict[str, JSONValue]] = {}
            for name, scope, keys in (
                ("client", AttributeScope.CLIENT, client_keys),
                ("shared", AttributeScope.SHARED, shared_keys),
            ):
                if not (everything or keys):
                    continue
                found = await attributes.get_attributes(
                    self.device_id, scope, sorted(keys) if keys else None
                )
                if found:
                    body[name] = {a.key: a.value for a in found}
            if not body:
                raise errors.NotFound("no attributes found")
            return json_response(request, body)

        d = Deferred.fromCoroutine(read())
        d.addErrback(service_failure)
        return d

    def _shared_state(self, request: Any) -> Deferred[Any]:
        d = self._context.services.attributes.get_attributes(
            self.device_id, AttributeScope.SHARED
        )
        d.addCallbacks(
            lambda found: json_response(request, {a.key: a.value for a in found}),
            service_failure,
        )
        return d

    # -- observation ---------------------------------------------------------

    def _observe(self) -> None:
        # Normally this instance is already the device's observed one (from
        # Context.attributes_resource); should another be, both stay
        # subscribed and each unsubscribes when its own last observer goes.
        self._context.observing.setdefault(self.device_id, self)
        if self._unsubscribe is None:
            self._unsubscribe = self._context.services.attributes.subscribe(
                self.device_id, self._changed
            )
            log.debug("Device {device_id} observes its attributes", device_id=self.device_id)

    def observer_removed(self, observation: Any) -> None:
        if self.observers:
            return
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
            log.debug("Device {device_id} stopped observing", device_id=self.device_id)
        if self._context.observing.get(self.device_id) is self:
            del self._context.observing[self.device_id]

    def _changed(self, change: dict[str, JSONValue]) -> None:
        payload = dumps(change)
        self.notify(lambda request: self._notification(request, payload))

    def _notification(self, request: Any, payload: bytes) -> Any:
        device = self._context.services.credentials.device(self.device_id)
        if device is None or not device.enabled:
            # Not a 2.xx: the engine ends the observation.
            raise errors.Unauthorized("device removed or disabled")
        response = json_response(request, None)
        response.payload = payload
        return response


class ApiV1(Resource):
    """C{/api/v1}: routes the rest of the path as ThingsBoard does."""

    # The token forms (C{/api/v1/{token}/...}) can't be listed; provisioning
    # and the token-less forms (authenticated by the DTLS identity) can.
    dynamic_links = {
        "provision": {"rt": "tb.provision", "ct": "50"},
        "telemetry": {"rt": "tb.telemetry", "ct": "50"},
        "attributes": {"rt": "tb.attributes", "ct": "50", "obs": ""},
        "claim": {"rt": "tb.claim", "ct": "50"},
    }

    def __init__(self, context: Context) -> None:
        super().__init__()
        self._context = context
        self._provision = ProvisionResource(context)

    def render_GET(self, request: Any) -> Any:
        raise errors.BadRequest("feature missing")

    render_POST = render_GET

    def getChild(self, path: bytes, request: Any) -> Resource:
        route = parse_route([path, *request.postpath])
        feature = route.feature
        if feature not in FEATURES:
            return _Refuse(errors.BadRequest, "unknown feature")
        if feature == "provision":
            return self._provision
        if feature == "rpc":
            return _Refuse(errors.NotFound, "rpc is not served yet")
        device = self._context.authenticate(route.token, request)
        if device is None:
            return _Refuse(errors.Unauthorized, "unknown or missing access token")
        if feature == "telemetry":
            return TelemetryResource(self._context, device)
        if feature == "claim":
            return ClaimResource(self._context, device)
        return self._context.attributes_resource(device)
