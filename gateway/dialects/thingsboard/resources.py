# -*- test-case-name: tests.dialects.test_thingsboard -*-
"""
The ThingsBoard device API's CoAP resource tree under C{/api/v1}.

L{ApiV1} parses the rest of the path the way ThingsBoard does
(L{gateway.dialects.thingsboard.routes}) and hands the request to a
L{gateway.dialects.toolkit.DeviceRoute}, which authenticates the device
(access token, else the DTLS identity) and serves it with a leaf resource
bound to that device:

 - C{telemetry}: POST records telemetry (2.01); GET is a 4.00.
 - C{attributes}: POST sets client attributes (2.01); GET answers
   C{{"client":{..},"shared":{..}}} (4.04 when nothing is found); GET with
   Observe answers the shared attributes, then one notification per change.
 - C{claim}: POST records a claim request (2.01).
 - C{provision} (no token): POST provisions a device.
 - C{rpc}: GET with Observe subscribes to server-side RPCs: the first
   answer is 2.03 Valid with an empty payload, then each RPC is a 2.05
   notification C{{"id":n,"method":..,"params":..}}, CON or NON as the
   subscription was, when the power-saving scheduler says the device can
   be reached; GET without Observe is a 4.00.  POST C{{"method","params"}}
   is a client-side RPC answered 2.05 with the reply, or 5.04 with
   C{{"error": ..}} when nobody answers in time; no C{method} is a 4.00.
 - C{rpc/{id}}: POST is the device's reply to RPC C{id}: a JSON object
   gets 2.01; anything else is 4.00; an unknown id, or one that waits for
   no reply (finished, one-way), is 4.04 with the reason.
 - C{firmware}, C{software}: GET downloads the device's OTA package, as
   C{/fw} and C{/sw} do (L{gateway.dialects.thingsboard.ota}); ThingsBoard
   documents this form but answers it 4.00 (its issues #9261, #9262).
 - any other feature: 4.00; unknown or missing token: 4.01; PUT and DELETE:
   4.05, before any authentication (ThingsBoard serves only GET and POST).
 - a source address that spent its budget of wrong credentials (unknown
   tokens, wrong provisioning keys or secrets): 4.29 with Max-Age, before
   any authentication (ThingsBoard's transport blocks such an IP address).
 - a path segment that is not UTF-8: 4.00.

Each authenticated request reports its device seen, and the ACK or timeout
of each confirmable notification is reported too (device activity, for the
power-saving scheduler).

Observation: each observing device has its own L{AttributesResource} (a
L{gateway.dialects.toolkit.ObservedDeviceResource}), kept in
L{Context.observing} while it has observers and subscribed to the device's
shared-attribute changes only as long as that.

Deliberate differences from ThingsBoard:

 - Successes are piggybacked when the service answers within the engine's
   piggyback delay; ThingsBoard sends them as separate CON responses (its
   known bug, PR #15174).
 - A device may hold several attribute observations (say, before and after
   a NAT rebinding) and all are notified; ThingsBoard keeps one per device.
   Stale ones end with an RST, a CON timeout or the engine's caps.
 - GET with Observe on C{telemetry} or C{claim} is a 4.00, not an
   attribute subscription.
 - A malformed RPC reply or client-side RPC is a 4.00 (ThingsBoard: 5.00),
   and a client-side RPC nobody answers gets 5.04 (ThingsBoard: nothing).
 - An RPC for a sleeping device waits for its next window (ThingsBoard
   drops it in the transport), and shared-attribute changes merged while
   it slept keep their deletions.
 - A protobuf profile's schema change applies to connected and observing
   devices at once (ThingsBoard keeps the old schema, #7053), and a
   protobuf provisioning answer has Content-Format 42 like every protobuf
   answer (ThingsBoard sets none).

Payloads are read and answers written in the device's profile's format
(L{gateway.dialects.thingsboard.codec}): JSON, or protobuf with the
profile's schemas (L{gateway.dialects.thingsboard.proto}), looked up per
request and per downlink so that a profile change applies at once.
Provisioning comes before any profile: a request that is not a JSON object
is read as protobuf and answered so.

Device JSON is read as leniently as ThingsBoard's Gson parser reads it
(C{{temperature:25}}), unless the device's profile has C{strict_json};
provisioning requests, which come before any profile, always are.
"""

from __future__ import annotations

from functools import partial
from typing import Any, Callable, Optional

import attrs
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from txthings import coap as tx

from gateway.coap import errors
from gateway.coap import numbers as n
from gateway.coap.resource import Resource
from gateway.dialects import jsonio
from gateway.dialects.failures import coap_error, service_failure
from gateway.dialects.toolkit import (
    DeviceLeaf,
    DeviceRoute,
    Leaf,
    ObservedDeviceResource,
    ObservedResources,
    Refuse,
    authenticate_peer,
    authenticate_token,
    check_source,
)
from gateway.domain.errors import Conflict, NoAnswer, NotFound, ServiceError
from gateway.domain.model import Attribute, AttributeScope, Device, JSONValue, Rpc
from gateway.domain.ota import OtaKind
from gateway.protobuf.schema import ProtoFiles
from gateway.protobuf.shipped import transport_messages
from gateway.service.interfaces import (
    Delivery,
    IDeviceServices,
    ProvisionResult,
    ProvisionStatus,
    Unsubscribe,
)

from . import payload as rules_
from . import proto
from .codec import Codec, JsonCodec
from .ota import PackageResource
from .payload import JSONRules
from .proto import ProtoCodec, is_json_object
from .routes import FEATURES, parse_route

__all__ = ["Context", "ApiV1", "AttributesResource", "RpcResource", "RpcReplyResource"]

log = Logger()

#: The methods ThingsBoard's device resources render (others are 4.05).
_METHODS = frozenset({n.GET, n.POST})


@attrs.define
class Context:
    """What every resource of the dialect shares."""

    devices: IDeviceServices
    clock: IReactorTime
    rules: JSONRules = attrs.field(factory=JSONRules)
    #: ThingsBoard's fixed protobuf messages.
    fixed: ProtoFiles = attrs.field(factory=transport_messages)
    #: The attributes resource of each device that has observers.
    observing: ObservedResources = attrs.field(factory=ObservedResources)
    #: The RPC resource of each device that has observers.
    rpc_observing: ObservedResources = attrs.field(factory=ObservedResources)

    def attributes_resource(self, device: Device) -> Resource:
        """The observed resource of C{device}, or a fresh one."""
        return self.observing.get(device.id, lambda: AttributesResource(self, device.id))

    def rpc_resource(self, device: Device) -> Resource:
        """The observed RPC resource of C{device}, or a fresh one."""
        return self.rpc_observing.get(device.id, lambda: RpcResource(self, device.id))

    def codec(self, device_id: str) -> Codec:
        """
        The device's payload format: its profile's protobuf schemas, else
        JSON, read leniently unless the profile is strict.  Schemas that
        do not compile (stored before they were checked) are a 4.00 saying why.
        """
        device = self.devices.enabled_device(device_id)
        profile = None if device is None else self.devices.profile(device.profile)
        try:
            schemas = None if profile is None else self.devices.payload_schemas(profile.name)
        except ServiceError as e:
            raise coap_error(e) from None
        if schemas is not None:
            return ProtoCodec(schemas, self.fixed, self.rules, self.clock)
        return JsonCodec(self.rules, profile is None or not profile.strict_json)


def _authenticate(
    token: Optional[str], devices: IDeviceServices, request: Any
) -> Optional[Device]:
    """
    The device of an access token, or without one of the DTLS identity
    (certificate SHA-256 or PSK identity); C{None} when neither matches, and
    for a token on a session that has a client identity.
    """
    if token is not None:
        return authenticate_token(devices, request, token)
    return authenticate_peer(devices, request)


class _DeviceLeaf(DeviceLeaf):
    def __init__(self, context: Context, device: Device) -> None:
        super().__init__(context.devices, device)
        self._codec = context.codec(device.id)


class TelemetryResource(_DeviceLeaf):
    def render_POST(self, request: Any) -> Any:
        records = self._codec.telemetry(request.payload)
        d = self.devices.record_telemetry(self.device.id, records)
        d.addCallbacks(lambda _: self._codec.created(), service_failure)
        return d

    def render_GET(self, request: Any) -> Any:
        raise errors.BadRequest("telemetry is POST only")


class ClaimResource(_DeviceLeaf):
    def render_POST(self, request: Any) -> Any:
        secret, duration = self._codec.claim(request.payload)
        d = self.devices.request_claim(self.device.id, secret, duration)
        d.addCallbacks(lambda _: self._codec.created(), service_failure)
        return d

    def render_GET(self, request: Any) -> Any:
        raise errors.BadRequest("claim is POST only")


class ProvisionResource(Leaf):
    """
    C{POST /api/v1/provision}: no device credentials needed, but a wrong
    provisioning key or secret counts as wrong credentials of the source.
    """

    def __init__(self, context: Context) -> None:
        super().__init__()
        self._devices = context.devices
        self._fixed = context.fixed

    def render_POST(self, request: Any) -> Any:
        source = check_source(self._devices, request)
        answer: Callable[[ProvisionResult], Any] = self._answer
        try:
            provision = rules_.provision_request(request.payload, lenient=True)
        except rules_.PayloadError as json_error:
            # ThingsBoard's fallback: protobuf, when the payload is no JSON
            # object; if it is no request either, the JSON error says why.
            if is_json_object(request.payload):
                raise
            try:
                provision = proto.provision_request(self._fixed, request.payload)
            except rules_.PayloadError:
                raise json_error from None
            answer = partial(proto.provision_answer, self._fixed)
        d = self._devices.provision(provision)
        d.addCallback(self._counted, source)
        d.addCallbacks(answer, service_failure)
        return d

    def _counted(self, result: ProvisionResult, source: str) -> ProvisionResult:
        if result.status == ProvisionStatus.NOT_FOUND:
            self._devices.report_wrong_credentials(source)
        return result

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
            return jsonio.json_response(body, n.CREATED, content_format=None)
        body = {"errorMsg": result.error_message(), "status": result.status}
        return jsonio.json_response(body, n.BAD_REQUEST, content_format=None)


class AttributesResource(ObservedDeviceResource):
    """
    C{/api/v1/{token}/attributes} of one device: client-attribute uplinks,
    attribute reads, and the observation of shared attributes.
    """

    def __init__(self, context: Context, device_id: str) -> None:
        super().__init__(context.devices, device_id, context.observing)
        self._context = context
        self._unsubscribe: Optional[Unsubscribe] = None

    def render_POST(self, request: Any) -> Any:
        codec = self._context.codec(self.device_id)
        values = codec.attributes(request.payload)
        d = self.devices.set_client_attributes(self.device_id, values)
        d.addCallbacks(lambda _: codec.created(), service_failure)
        return d

    def render_GET(self, request: Any) -> Any:
        if request.opt.observe is not None:
            return self._shared_state(request)
        return self._read(request)

    # -- reads ---------------------------------------------------------------

    def _read(self, request: Any) -> Deferred[Any]:
        client_keys, shared_keys = rules_.attribute_query(request.opt.uri_query)
        everything = not client_keys and not shared_keys
        devices = self.devices
        codec = self._context.codec(self.device_id)

        async def read() -> Any:
            body: dict[str, list[Attribute]] = {}
            for name, scope, keys in (
                ("client", AttributeScope.CLIENT, client_keys),
                ("shared", AttributeScope.SHARED, shared_keys),
            ):
                if not (everything or keys):
                    continue
                found = await devices.get_attributes(
                    self.device_id, scope, sorted(keys) if keys else None
                )
                if found:
                    body[name] = found
            if not body:
                raise errors.NotFound("no attributes found")
            return codec.response(request, codec.attribute_read(body))

        d = Deferred.fromCoroutine(read())
        d.addErrback(service_failure)
        return d

    def _shared_state(self, request: Any) -> Deferred[Any]:
        codec = self._context.codec(self.device_id)
        d = self.devices.get_attributes(self.device_id, AttributeScope.SHARED)
        d.addCallbacks(
            lambda found: codec.response(
                request, codec.attribute_change({a.key: a.value for a in found})
            ),
            service_failure,
        )
        return d

    # -- observation ---------------------------------------------------------

    def watch(self) -> None:
        self._unsubscribe = self.devices.subscribe_attributes(self.device_id, self._changed)
        log.debug("Device {device_id} observes its attributes", device_id=self.device_id)

    def unwatch(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        log.debug("Device {device_id} stopped observing", device_id=self.device_id)

    def _changed(self, change: dict[str, JSONValue]) -> None:
        codec = self._context.codec(self.device_id)
        payload = codec.attribute_change(change)
        self.notify_device(lambda request: codec.response(request, payload))


class RpcResource(ObservedDeviceResource):
    """
    C{/api/v1/{token}/rpc} of one device: the subscription to server-side
    RPCs (GET with Observe) and client-side RPCs (POST).

    Each RPC the queue sends is one notification to every observer; the
    first outcome of those (the ACK, RST or timeout of a CON notification,
    or at once for a NON one) is how the send ended.
    """

    def __init__(self, context: Context, device_id: str) -> None:
        super().__init__(context.devices, device_id, context.rpc_observing)
        self._context = context
        self._unsubscribe: Optional[Unsubscribe] = None
        self._nstart = 1
        #: Sends waiting for their outcome, by observation (its kept
        #: request's id), oldest first: one CON is in flight at a time.
        self._waiting: dict[int, list[Deferred[Delivery]]] = {}
        self._outstanding: set[Deferred[Delivery]] = set()

    def render_GET(self, request: Any) -> Any:
        if request.opt.observe is None:
            raise errors.BadRequest("rpc is observed (GET with Observe) or POSTed")
        # The reference's first answer: 2.03 Valid, Observe, no payload.
        return tx.Message(code=n.VALID)

    def render_POST(self, request: Any) -> Any:
        codec = self._context.codec(self.device_id)
        method, params = codec.client_rpc(request.payload)
        d = self.devices.client_rpc(self.device_id, method, params)
        d.addCallbacks(
            lambda reply: codec.response(request, codec.client_rpc_answer(reply)),
            partial(_no_answer, codec, request),
        )
        return d

    # -- observation ---------------------------------------------------------

    def observer_added(self, observation: Any) -> None:
        self._nstart = observation.peer.params.nstart
        super().observer_added(observation)

    def observer_removed(self, observation: Any) -> None:
        for d in self._waiting.pop(id(observation.request), []):
            self._settle(d, "gone")
        super().observer_removed(observation)

    def watch(self) -> None:
        self._unsubscribe = self.devices.subscribe_rpc(self.device_id, self._deliver, self._nstart)
        log.debug("Device {device_id} observes its RPCs", device_id=self.device_id)

    def unwatch(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        for d in list(self._outstanding):
            self._settle(d, "gone")

    def notification_settled(self, observation: Any, outcome: str) -> None:
        super().notification_settled(observation, outcome)
        waiting = self._waiting.get(id(observation.request))
        if waiting:
            d = waiting.pop(0)
            if not waiting:
                del self._waiting[id(observation.request)]
            self._settle(d, "ack" if outcome == "ack" else "reset" if outcome == "reset"
                         else "timeout")

    def _settle(self, d: "Deferred[Delivery]", outcome: Delivery) -> None:
        self._outstanding.discard(d)
        if not d.called:
            d.callback(outcome)

    def _deliver(self, rpc: Rpc) -> "Deferred[Delivery]":
        d: Deferred[Delivery] = Deferred()
        if not self.observers:
            d.callback("gone")
            return d
        self._outstanding.add(d)
        codec = self._context.codec(self.device_id)
        payload = codec.rpc(rpc)

        def render(request: Any) -> Any:
            if request.mtype == n.NON:
                # A NON subscription's notifications go NON: nothing to wait for.
                self._settle(d, "non")
            else:
                self._waiting.setdefault(id(request), []).append(d)
            return codec.response(request, payload)

        self.notify_device(render)
        return d


def _no_answer(codec: Codec, request: Any, failure: Any) -> Any:
    """5.04 with the error when nobody answered a client-side RPC."""
    if failure.check(NoAnswer):
        return codec.no_answer(request, failure.value.message)
    return service_failure(failure)


class RpcReplyResource(_DeviceLeaf):
    """C{/api/v1/{token}/rpc/{id}}: the device's reply to server-side RPC C{id}."""

    def __init__(self, context: Context, rpc_id: int, device: Device) -> None:
        super().__init__(context, device)
        self._rpc_id = rpc_id

    def render_POST(self, request: Any) -> Any:
        reply = self._codec.rpc_reply(request.payload)
        d = self.devices.reply_rpc(self.device.id, self._rpc_id, reply)
        d.addCallbacks(lambda _: self._codec.created(), self._refused)
        return d

    def render_GET(self, request: Any) -> Any:
        raise errors.BadRequest("an RPC reply is POSTed")

    @staticmethod
    def _refused(failure: Any) -> Any:
        if failure.check(NotFound, Conflict):
            raise errors.NotFound(failure.value.message)
        return service_failure(failure)


def _rpc_id(text: str) -> int:
    if not text.isdigit() or len(text) > 18:
        raise errors.BadRequest("an RPC id is a number")
    return int(text)


class ApiV1(Resource):
    """C{/api/v1}: routes the rest of the path as ThingsBoard does."""

    # The token forms (C{/api/v1/{token}/...}) can't be listed; provisioning
    # and the token-less forms (authenticated by the DTLS identity) can.
    dynamic_links = {
        "provision": {"rt": "tb.provision", "ct": "50"},
        "telemetry": {"rt": "tb.telemetry", "ct": "50"},
        "attributes": {"rt": "tb.attributes", "ct": "50", "obs": ""},
        "claim": {"rt": "tb.claim", "ct": "50"},
        "rpc": {"rt": "tb.rpc", "ct": "50", "obs": ""},
    }

    def __init__(self, context: Context) -> None:
        super().__init__()
        self._context = context
        self._provision = ProvisionResource(context)
        self._serve: dict[str, Callable[[Device], Resource]] = {
            "telemetry": partial(TelemetryResource, context),
            "claim": partial(ClaimResource, context),
            "attributes": context.attributes_resource,
            "rpc": context.rpc_resource,
            "firmware": partial(PackageResource, context.devices, OtaKind.FIRMWARE),
            "software": partial(PackageResource, context.devices, OtaKind.SOFTWARE),
        }

    def render_GET(self, request: Any) -> Any:
        raise errors.BadRequest("feature missing")

    render_POST = render_GET

    def getChild(self, path: bytes, request: Any) -> Resource:
        route = parse_route([path, *request.postpath])
        feature = route.feature
        if feature not in FEATURES:
            return Refuse(errors.BadRequest, "unknown feature")
        if feature == "provision":
            return self._provision
        serve = self._serve[feature]
        if feature == "rpc" and route.rpc_id is not None:
            serve = partial(RpcReplyResource, self._context, _rpc_id(route.rpc_id))
        return DeviceRoute(
            self._context.devices,
            partial(_authenticate, route.token),
            serve,
            _METHODS,
            "unknown or missing access token",
        )
