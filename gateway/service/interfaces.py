"""
The service-layer seams the northbound API and the device dialects call.

A dialect sees only L{IDeviceServices}: what a device may do (authenticate,
send telemetry, read and write its attributes, ask to be claimed, provision
itself, report that it was seen), over L{ICredentialCache} (synchronous, in
memory: authentication never waits on disk, except the password hash which
runs off the reactor thread), L{ITelemetryService}, L{IAttributeService},
L{IProvisioningService}, L{IClaimingService} and L{IDeviceActivity}.  The API
manages devices, credentials and profiles through L{IDeviceRegistry}.  A
power-saving scheduler hears L{IDeviceActivity}'s events.

All failures are L{gateway.domain.errors} classes (NotFound, Conflict,
InvalidArgument).  The whole layer is assembled by
L{gateway.service.build.open_services} (SQLite) or
L{gateway.service.build.memory_services} (tests).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Literal, Mapping, Optional, Sequence, Union

import attrs
from google.protobuf.message import Message
from twisted.internet.defer import Deferred
from zope.interface import Attribute as IAttribute
from zope.interface import Interface

from gateway.domain.model import (
    Attribute,
    AttributeScope,
    Claim,
    CredentialInfo,
    CredentialKind,
    Device,
    JSONValue,
    Profile,
    Rpc,
    TelemetryPoint,
    TelemetryRecord,
)
from gateway.domain.ota import OtaKind, OtaPackage

if TYPE_CHECKING:  # dialects import this module: they need not load the store
    from gateway.store.unit import UnitOfWork

__all__ = [
    "CreatedDevice",
    "AttributeCallback",
    "Unsubscribe",
    "IDeviceRegistry",
    "ICredentialCache",
    "IAttributeService",
    "ITelemetryService",
    "IProvisioningService",
    "IClaimingService",
    "ProvisionRequest",
    "ProvisionResult",
    "ProfileSchemas",
    "ProvisionStatus",
    "SeenVia",
    "UnreachableReason",
    "DeviceSeen",
    "DeviceUnreachable",
    "ActivityEvent",
    "ActivityListener",
    "IDeviceActivity",
    "SourceStatus",
    "ICredentialGuard",
    "Delivery",
    "DeliverRpc",
    "Publication",
    "Download",
    "IDeviceServices",
]

#: An attribute subscriber: gets C{{"k": v, ...}} on updates or
#: C{{"deleted": ["k", ...]}} on deletions of shared attributes.
AttributeCallback = Callable[[dict[str, JSONValue]], None]

#: Call it to stop a subscription (idempotent).
Unsubscribe = Callable[[], None]


@attrs.frozen
class CreatedDevice:
    """
    The result of L{IDeviceRegistry.create_device}: the device and, if one
    was requested or generated, its access token in clear - returned this
    once, never stored (only its digest is).
    """

    device: Device
    access_token: Optional[str] = None


class IDeviceRegistry(Interface):
    """Devices, their credentials and profiles.  Keeps the cache in step."""

    def create_device(
        name: str,
        application: str = "default",
        profile: str = "default",
        enabled: bool = True,
        access_token: Optional[str] = None,
        generate_token: bool = True,
        also: Optional[Callable[[Device], "UnitOfWork"]] = None,
        power: Optional[Mapping[str, Any]] = None,
        gateways: Sequence[str] = (),
    ) -> "Deferred[CreatedDevice]":
        """
        Create a device.  With C{access_token} it gets that token; without
        one and with C{generate_token} a random URL-safe token is made;
        C{power} holds its own power-saving settings (C{power_mode}, a
        L{PowerMode}, and the timers in ms); C{gateways} names the devices
        of its application that may publish for it.  The
        device, its token and the writes C{also(device)} returns are one
        unit of work: all or nothing.
        L{Conflict} for a taken name or token, L{InvalidArgument} for an
        unknown profile or an empty name.
        """

    def get_device(device_id: str) -> "Deferred[Device]":
        """The device; L{NotFound} if absent."""

    def find_device(
        name: str, application: str = "default"
    ) -> "Deferred[Device]":
        """The device by name; L{NotFound} if absent."""

    def list_devices(
        application: Optional[str] = None,
    ) -> "Deferred[list[Device]]":
        """All devices (of one application), ordered by name."""

    def update_device(
        device_id: str,
        name: Optional[str] = None,
        profile: Optional[str] = None,
        enabled: Optional[bool] = None,
        power: Optional[Mapping[str, Any]] = None,
        gateways: Optional[Sequence[str]] = None,
    ) -> "Deferred[Device]":
        """
        Change the given fields; C{None} leaves a field alone.  C{power}
        sets the power-saving settings it names (a C{None} value unsets
        one: the profile's applies).
        """

    def delete_device(device_id: str) -> "Deferred[None]":
        """Delete a device and everything it owns; L{NotFound} if absent."""

    def set_access_token(
        device_id: str,
        token: Optional[str] = None,
        also: Optional[Callable[[Device], "UnitOfWork"]] = None,
    ) -> "Deferred[str]":
        """
        Set (or generate when C{None}) the token, replacing the old one, in
        one unit with the writes C{also(device)} returns; the token in clear.
        """

    def set_psk(device_id: str, identity: str, key: bytes) -> "Deferred[None]":
        """Set the DTLS PSK identity and key."""

    def set_certificate(device_id: str, pem: str) -> "Deferred[str]":
        """
        Set the X.509 client certificate (PEM); returns the SHA-256 hex of
        its DER, the identity DTLS matches.  L{InvalidArgument} if not PEM.
        """

    def set_basic(
        device_id: str, username: str, password: str
    ) -> "Deferred[None]":
        """Set a username/password (stored as a scrypt hash)."""

    def get_credentials(device_id: str) -> "Deferred[list[CredentialInfo]]":
        """What the device has, without secrets; L{NotFound} if absent."""

    def delete_credential(
        device_id: str, kind: CredentialKind
    ) -> "Deferred[None]":
        """Remove one credential; L{NotFound} if there is none."""

    def create_profile(profile: Profile) -> "Deferred[Profile]":
        """Add a profile; L{Conflict} if the name or provision key is taken."""

    def update_profile(profile: Profile) -> "Deferred[Profile]":
        """Replace a profile by name; L{NotFound} if absent."""

    def get_profile(name: str) -> "Deferred[Profile]":
        """The profile; L{NotFound} if absent."""

    def list_profiles() -> "Deferred[list[Profile]]":
        """All profiles (C{default} always among them)."""

    def delete_profile(name: str) -> "Deferred[None]":
        """
        Delete a profile; L{Conflict} for C{default} or one still in use.
        """


class ICredentialCache(Interface):
    """
    In-memory authentication, loaded at start and kept in step by the
    registry.  Only enabled devices authenticate.  Lookups are safe against
    timing probes: tokens are found by the SHA-256 of the token, and an
    unknown username costs the same hash verification as a wrong password.
    """

    def device(device_id: str) -> Optional[Device]:
        """The cached device (enabled or not), or C{None}."""

    def device_named(application: str, name: str) -> Optional[Device]:
        """The cached device of this name in C{application} (enabled or not), or C{None}."""

    def profile(name: str) -> Optional[Profile]:
        """The cached profile, or C{None}."""

    def authenticate_token(token: str) -> Optional[Device]:
        """The enabled device holding this access token, or C{None}."""

    def psk_for_identity(identity: str) -> Optional[tuple[Device, bytes]]:
        """(device, key) for a DTLS PSK identity, or C{None}."""

    def authenticate_certificate(der: bytes) -> Optional[Device]:
        """The device registered with this client certificate (DER)."""

    def authenticate_certificate_sha256(sha256_hex: str) -> Optional[Device]:
        """Same, by the SHA-256 hex of the DER."""

    def holds(device_id: str, kind: CredentialKind) -> bool:
        """Whether the device holds a credential of this kind."""

    def holds_session_key(device_id: str) -> bool:
        """Whether the device holds a PSK or a certificate (a DTLS session's credential)."""

    def authenticate_basic(
        username: str, password: str
    ) -> "Deferred[Optional[Device]]":
        """
        The device with this username and password, or C{None}.  The hash
        runs off the reactor thread; a recently verified pair answers from
        memory.
        """

    def verify_device_password(
        device_id: str, password: str
    ) -> "Deferred[Optional[Device]]":
        """
        The device if C{password} matches its basic credential (Drogue's
        "password only" form, the username being the device name).
        """


class IAttributeService(Interface):
    """Device attributes in three scopes, with shared-attribute push."""

    def get_attributes(
        device_id: str,
        scope: AttributeScope,
        keys: Optional[Sequence[str]] = None,
    ) -> "Deferred[list[Attribute]]":
        """Attributes of a scope (all, or only C{keys}); NotFound device."""

    def set_attributes(
        device_id: str,
        scope: AttributeScope,
        values: Mapping[str, JSONValue],
        dialect: Optional[str] = None,
    ) -> "Deferred[None]":
        """
        Write attributes stamped with the clock; subscribers hear of shared
        changes after the write is durable.  With C{dialect} (a device's own
        uplink, through that dialect) the write carries its upstream event.
        """

    def delete_attributes(
        device_id: str, scope: AttributeScope, keys: Sequence[str]
    ) -> "Deferred[list[str]]":
        """Delete; returns the keys that existed (subscribers hear those)."""

    def subscribe(device_id: str, callback: AttributeCallback) -> Unsubscribe:
        """Hear of shared-attribute changes of one device."""


class ITelemetryService(Interface):
    """Telemetry uplinks and the latest value per key."""

    def record(
        device_id: str, records: Sequence[TelemetryRecord], dialect: str = "api"
    ) -> "Deferred[None]":
        """
        Accept (ts ms or None, {key: value}) records; a missing ts is taken
        from the clock.  Fires once durable, with their upstream event
        (naming C{dialect}, the way they came).  NotFound for an unknown
        device, Unavailable when the outbox is full.
        """

    def latest(
        device_id: str, keys: Optional[Sequence[str]] = None
    ) -> "Deferred[list[TelemetryPoint]]":
        """The latest value of each key (or only C{keys})."""


class ProvisionStatus:
    """ThingsBoard provisioning statuses (plain strings on the wire)."""

    SUCCESS = "SUCCESS"
    NOT_FOUND = "NOT_FOUND"
    FAILURE = "FAILURE"


@attrs.frozen
class ProvisionRequest:
    """
    A ThingsBoard provisioning request (reference section 4).
    C{credentials_type} is one of ACCESS_TOKEN (default), X509_CERTIFICATE,
    MQTT_BASIC, LWM2M_CREDENTIALS.
    """

    provision_key: str
    provision_secret: str
    device_name: Optional[str] = None
    credentials_type: str = "ACCESS_TOKEN"
    token: Optional[str] = None
    client_id: Optional[str] = None
    username: Optional[str] = None
    password: Optional[str] = None
    hash: Optional[str] = None
    gateway: bool = False


@attrs.frozen
class ProvisionResult:
    """
    C{status} is a L{ProvisionStatus}; on SUCCESS C{credentials_value} is the
    access token (or certificate) and C{device} the device.
    """

    status: str
    credentials_type: Optional[str] = None
    credentials_value: Optional[JSONValue] = None
    device: Optional[Device] = None

    def error_message(self) -> Optional[str]:
        """ThingsBoard's C{errorMsg} for a failed status."""
        if self.status == ProvisionStatus.NOT_FOUND:
            return "Provision data was not found!"
        if self.status == ProvisionStatus.FAILURE:
            return "Failed to provision device!"
        return None


class IProvisioningService(Interface):
    def provision(
        request: ProvisionRequest, dialect: str = "api"
    ) -> "Deferred[ProvisionResult]":
        """
        Provision by profile key/secret.  Never errbacks for a bad request:
        the outcome is in the status.  A success carries its upstream event
        (naming C{dialect}); a full outbox is a FAILURE.
        """


class IClaimingService(Interface):
    default_duration_ms = IAttribute(
        "Duration used when a request gives 0 (server's claim duration)."
    )

    def request_claim(
        device_id: str, secret_key: str = "", duration_ms: int = 0, dialect: str = "api"
    ) -> "Deferred[Claim]":
        """
        Record a claim request expiring after C{duration_ms}, with its
        upstream event (naming C{dialect}; the secret is not in it).
        """

    def get_claim(device_id: str) -> "Deferred[Optional[Claim]]":
        """The unexpired claim of the device, or C{None}."""

    def claim(device_id: str, secret_key: str) -> "Deferred[bool]":
        """
        Consume the claim if the secret matches and it has not expired;
        C{True} on success.
        """


#: How a device was heard from: a request it sent (C{"uplink"}) or its ACK
#: of a confirmable notification (C{"ack"}).
SeenVia = Literal["uplink", "ack"]

#: Why a device could not be reached: a confirmable notification ran out of
#: retransmissions (C{"timeout"}).
UnreachableReason = Literal["timeout"]


@attrs.frozen
class DeviceSeen:
    """The device was heard from at C{at} (the clock's seconds)."""

    device_id: str
    at: float
    via: SeenVia


@attrs.frozen
class DeviceUnreachable:
    """The device could not be reached at C{at} (the clock's seconds)."""

    device_id: str
    at: float
    reason: UnreachableReason


ActivityEvent = Union[DeviceSeen, DeviceUnreachable]

#: Hears every activity event.
ActivityListener = Callable[[ActivityEvent], None]


class IDeviceActivity(Interface):
    """
    "Device seen" and "device unreachable" events, stamped with the clock,
    for whoever decides when a device can be reached (the power-saving
    scheduler).  A failing listener is logged and does not affect the others
    or the publisher.
    """

    def seen(device_id: str, via: SeenVia) -> None:
        """Publish a L{DeviceSeen}."""

    def unreachable(device_id: str, reason: UnreachableReason) -> None:
        """Publish a L{DeviceUnreachable}."""

    def subscribe(listener: ActivityListener) -> Unsubscribe:
        """Hear every later event, until the returned callable is called."""


@attrs.frozen
class SourceStatus:
    """
    The failed authentications remembered for one source address:
    C{wrong} counted, C{throttled} requests refused for them, and the
    seconds until it may try again (C{None}: it may now).
    """

    source: str
    wrong: int
    throttled: int
    retry_after: Optional[int]


class ICredentialGuard(Interface):
    """
    Failed authentications counted and rate-limited per source address (a
    token bucket on the clock), so that guessing credentials costs the
    guesser and nobody else: another address is never throttled for them.
    """

    wrong_total = IAttribute("Failed authentications counted since start.")
    throttled_total = IAttribute("Requests refused since start because their source was throttled.")

    def throttled(source: str) -> Optional[int]:
        """
        Seconds until C{source} may authenticate again, counting this
        request as refused; C{None} when it may now.
        """

    def failed(source: str) -> None:
        """C{source} presented credentials that authenticate no device."""

    def sources() -> list[SourceStatus]:
        """What is remembered of each source, most recently failed last."""


#: How sending one server-side RPC to a device ended: acknowledged
#: (C{"ack"}), sent as NON (C{"non"}: no acknowledgement to wait for), reset
#: (C{"reset"}), not acknowledged (C{"timeout"}), or the subscription ended
#: first (C{"gone"}).
Delivery = Literal["ack", "non", "reset", "timeout", "gone"]

#: A device's RPC subscription: sends one RPC, fires with how that ended.
DeliverRpc = Callable[[Rpc], "Deferred[Delivery]"]


@attrs.frozen
class Publication:
    """
    A message a device published on a channel (Drogue's publish).

    @ivar content_type: the payload's media type; C{None} when the payload
        is JSON text (checked by the dialect).
    @ivar extensions: extension attributes of its event (beside the shape's).
    """

    channel: str
    payload: bytes
    content_type: Optional[str] = None
    extensions: Mapping[str, str] = attrs.field(factory=dict)


@attrs.frozen
class Download:
    """A device's OTA package and its body (shared by every download: never modify it)."""

    package: OtaPackage
    content: bytes


@attrs.frozen
class ProfileSchemas:
    """A protobuf profile's schemas: each one's last top-level message, compiled."""

    telemetry: type[Message]
    attributes: type[Message]
    rpc_request: type[Message]
    rpc_response: type[Message]


class IDeviceServices(Interface):
    """
    What a device may do, and all a dialect gets of the service layer: no
    store and none of the registry's operator calls.

    Authentication answers the enabled device or C{None}; the token and
    DTLS forms are synchronous (in memory), the password forms fire once the
    hash is checked off the reactor thread.  The other calls fail with
    L{gateway.domain.errors} classes (see L{gateway.dialects.failures}).
    """

    def authenticate_token(token: str) -> Optional[Device]:
        """
        The enabled device holding this access token, unless it also holds
        a PSK or an X.509 credential: such a device authenticates by its
        DTLS session only, never falling back to a token.
        """

    def authenticate_identity(kind: CredentialKind, lookup: str) -> Optional[Device]:
        """
        The enabled device of a DTLS session's identity: C{kind} X509 with
        the SHA-256 hex of the client certificate, or PSK with the identity.
        """

    def authenticate_basic(
        username: str, password: str
    ) -> "Deferred[Optional[Device]]":
        """The enabled device with this username and password."""

    def authenticate_password(
        device_id: str, password: str
    ) -> "Deferred[Optional[Device]]":
        """
        The enabled device if C{password} matches its basic credential
        (Drogue's password-only form).
        """

    def enabled_device(device_id: str) -> Optional[Device]:
        """The device if it still exists and is enabled."""

    def find_device(application: str, name: str) -> Optional[Device]:
        """The enabled device of this name in C{application}, or C{None}."""

    def publish(device_id: str, publication: Publication) -> "Deferred[None]":
        """
        Commit the event of a message the device published; fires once
        durable.  L{Unavailable} when the outbox is full.
        """

    def profile(name: str) -> Optional[Profile]:
        """A device's profile by name (how to read its payloads), or C{None}."""

    def payload_schemas(profile: str) -> Optional[ProfileSchemas]:
        """
        The compiled protobuf schemas of profile C{profile}, the current ones
        (compiled again once the profile's change), or C{None} unless it is a
        protobuf profile.
        """

    def record_telemetry(
        device_id: str, records: Sequence[TelemetryRecord]
    ) -> "Deferred[None]":
        """As L{ITelemetryService.record}: fires once durable."""

    def get_attributes(
        device_id: str,
        scope: AttributeScope,
        keys: Optional[Sequence[str]] = None,
    ) -> "Deferred[list[Attribute]]":
        """
        Client or shared attributes (all, or only C{keys}); the server scope
        is not the device's to read (L{InvalidArgument}).
        """

    def set_client_attributes(
        device_id: str, values: Mapping[str, JSONValue]
    ) -> "Deferred[None]":
        """Write client attributes; fires once durable."""

    def subscribe_attributes(
        device_id: str, callback: AttributeCallback
    ) -> Unsubscribe:
        """
        Hear of the device's shared-attribute changes; while it sleeps they
        are merged and heard as one when it wakes.
        """

    def request_claim(
        device_id: str, secret_key: str = "", duration_ms: int = 0
    ) -> "Deferred[Claim]":
        """As L{IClaimingService.request_claim}."""

    def ota_download(device_id: str, kind: OtaKind) -> "Deferred[Optional[Download]]":
        """
        The device's OTA package of C{kind} (its own assignment's, else its
        profile's) with the body, shared by every download; C{None}: none.
        """

    def provision(request: ProvisionRequest) -> "Deferred[ProvisionResult]":
        """As L{IProvisioningService.provision}."""

    def subscribe_rpc(device_id: str, deliver: DeliverRpc, nstart: int = 1) -> Unsubscribe:
        """
        The device listens for server-side RPCs (ThingsBoard's Observe on
        C{/rpc}): each one it can be sent, in order, when the power-saving
        scheduler says it can be reached, goes to C{deliver}, at most
        C{nstart} of them waiting for an acknowledgement at a time.
        """

    def queued_rpcs(device_id: str) -> int:
        """
        How many of the device's server-side RPCs wait in the queue to be
        sent (a dialect that answers with one knows whether to wait for it).
        """

    def reply_rpc(device_id: str, rpc_id: int, response: JSONValue) -> "Deferred[Rpc]":
        """
        The device's reply to a two-way RPC it was sent.  L{NotFound} if it
        has no RPC C{rpc_id}, L{Conflict} if that one waits for no reply.
        """

    def client_rpc(device_id: str, method: str, params: JSONValue) -> "Deferred[JSONValue]":
        """
        A device's own RPC to the gateway: built-in methods answered here,
        others by the application; L{NoAnswer} if nobody answers in time.
        """

    def report_seen(device_id: str, via: SeenVia) -> None:
        """The device was heard from: publish it (L{IDeviceActivity.seen})."""

    def report_unreachable(device_id: str, reason: UnreachableReason) -> None:
        """The device could not be reached: publish it."""

    def source_throttled(source: str) -> Optional[int]:
        """
        Seconds until the source address may authenticate again (it spent
        its budget of wrong credentials), or C{None}: ask before
        authenticating (L{ICredentialGuard.throttled}).
        """

    def report_wrong_credentials(source: str) -> None:
        """A request from C{source} authenticated no device: count it."""

    def for_dialect(name: str) -> "IDeviceServices":
        """These services, with the upstream events of uplinks naming dialect C{name}."""
