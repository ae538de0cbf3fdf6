"""
The device model: plain, immutable attrs records shared by the service layer,
the store backends, the northbound API and the dialects.

Conventions (chosen so a PostgreSQL backend fits without changes):

 - ids are strings (uuid4 hex for devices);
 - C{created} is float seconds since the epoch (from the injected clock;
   the northbound API shows integer milliseconds, as for every time);
 - attribute and telemetry timestamps are integer milliseconds since the
   epoch, as in ThingsBoard;
 - a JSON value (L{JSONValue}) is any value C{json.dumps} accepts: str, bool,
   int (of any size), float, None, list or dict, nested freely.  The service
   stores it as given; payload rules (null skipping, casting) belong to the
   dialect.

Credentials: a device holds at most one credential of each
L{CredentialKind}, so it may have an access token, a PSK, a certificate and a
basic password at the same time.  Each credential has a C{lookup} key that is
unique per kind across all devices:

 - C{ACCESS_TOKEN}: C{lookup} is the SHA-256 hex digest of the token; the
   token itself is never stored (it is shown once, when created), C{secret}
   is empty;
 - C{PSK}: C{lookup} is the PSK identity, C{secret} the key bytes;
 - C{X509}: C{lookup} is the SHA-256 hex of the certificate's DER,
   C{secret} the PEM text (ASCII bytes);
 - C{BASIC}: C{lookup} is the username, C{secret} the password hash
   (see L{gateway.service.passwords}), never the password.
"""

from __future__ import annotations

import enum
import hashlib
from typing import Any, Mapping, Optional, Tuple

import attrs

__all__ = [
    "JSONValue",
    "TelemetryRecord",
    "DEFAULT_APPLICATION",
    "DEFAULT_PROFILE",
    "Device",
    "CredentialKind",
    "Credential",
    "CredentialInfo",
    "PayloadFormat",
    "PowerMode",
    "ProvisionStrategy",
    "Profile",
    "AttributeScope",
    "Attribute",
    "TelemetryPoint",
    "Claim",
    "RpcState",
    "Rpc",
    "token_digest",
]

#: Any JSON-serialisable value (str, bool, int, float, None, list, dict).
JSONValue = Any

#: One telemetry record as a device sends it: (ts in ms or None, {key: value}).
TelemetryRecord = Tuple[Optional[int], Mapping[str, JSONValue]]

DEFAULT_APPLICATION = "default"
DEFAULT_PROFILE = "default"


def token_digest(token: str) -> str:
    """
    The lookup key of an access token: SHA-256 hex of its UTF-8 bytes.
    """
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@attrs.frozen
class Device:
    """
    A device.

    @ivar id: opaque string id (uuid4 hex), never reused.
    @ivar name: unique within C{application}.
    @ivar application: the tenant/application the device belongs to.
    @ivar profile: the name of its L{Profile}.
    @ivar enabled: a disabled device fails authentication.
    @ivar created: creation time, float seconds since the epoch.
    @ivar power_mode: the device's own power-saving mode; C{None}: its
        profile's.  The timers (ms) likewise: C{None} or 0 is unset, the
        profile's value applies, then the gateway's default.
    @ivar gateways: the names of the devices of its application that may
        publish for it (Drogue's C{as}).
    """

    id: str
    name: str
    application: str = DEFAULT_APPLICATION
    profile: str = DEFAULT_PROFILE
    enabled: bool = True
    created: float = 0.0
    power_mode: Optional["PowerMode"] = None
    psm_activity_timer: Optional[int] = None
    edrx_cycle: Optional[int] = None
    paging_transmission_window: Optional[int] = None
    gateways: Tuple[str, ...] = attrs.field(default=(), converter=tuple)


class CredentialKind(enum.Enum):
    ACCESS_TOKEN = "access_token"
    PSK = "psk"
    X509 = "x509"
    BASIC = "basic"


@attrs.frozen
class Credential:
    """
    One stored credential of a device (see the module docstring for what
    C{lookup} and C{secret} hold per kind).
    """

    device_id: str
    kind: CredentialKind
    lookup: str
    secret: bytes = b""

    def info(self) -> "CredentialInfo":
        """The public view of this credential: no secret material."""
        return CredentialInfo(self.device_id, self.kind, self.lookup)


@attrs.frozen
class CredentialInfo:
    """
    What the API may show of a credential: its kind and lookup key (PSK
    identity, certificate SHA-256, username; the token's digest).
    """

    device_id: str
    kind: CredentialKind
    lookup: str


class PayloadFormat(enum.Enum):
    JSON = "json"
    PROTOBUF = "protobuf"


class PowerMode(enum.Enum):
    NONE = "none"
    PSM = "psm"
    DRX = "drx"
    EDRX = "edrx"


class ProvisionStrategy(enum.Enum):
    DISABLED = "disabled"
    ALLOW_CREATE_NEW = "allow_create_new"
    CHECK_PRE_PROVISIONED = "check_pre_provisioned"


@attrs.frozen
class Profile:
    """
    A device profile: payload format, protobuf schemas, power-saving settings
    and provisioning.  Timers are milliseconds; C{None} means unset (the
    gateway's defaults apply, as in ThingsBoard where 0 counts as unset).

    @ivar strict_json: device JSON must be strict JSON; by default it is read
        as leniently as ThingsBoard's parser (Gson) reads it.
    """

    name: str
    payload_format: PayloadFormat = PayloadFormat.JSON
    telemetry_proto: Optional[str] = None
    attributes_proto: Optional[str] = None
    rpc_request_proto: Optional[str] = None
    rpc_response_proto: Optional[str] = None
    power_mode: PowerMode = PowerMode.NONE
    psm_activity_timer: Optional[int] = None
    edrx_cycle: Optional[int] = None
    paging_transmission_window: Optional[int] = None
    provisioning: ProvisionStrategy = ProvisionStrategy.DISABLED
    provision_key: Optional[str] = None
    provision_secret: Optional[str] = None
    strict_json: bool = False


class AttributeScope(enum.Enum):
    CLIENT = "client"
    SHARED = "shared"
    SERVER = "server"


@attrs.frozen
class Attribute:
    scope: AttributeScope
    key: str
    value: JSONValue
    last_update_ts: int


@attrs.frozen
class TelemetryPoint:
    """The latest value of one telemetry key."""

    key: str
    value: JSONValue
    ts: int


@attrs.frozen
class Claim:
    """
    A pending claim request (ThingsBoard C{/claim}): the device may be claimed
    with C{secret_key} until C{expires_at} (ms since the epoch).
    """

    device_id: str
    secret_key: str
    expires_at: int
    created: int


class RpcState(enum.Enum):
    """
    Where a server-side RPC is: C{QUEUED} until the device can be reached,
    C{SENT} once handed to the device's subscription, C{DELIVERED} when the
    device acknowledged it (two-way: waiting for the reply), then one of the
    final states.
    """

    QUEUED = "QUEUED"
    SENT = "SENT"
    DELIVERED = "DELIVERED"
    SUCCESSFUL = "SUCCESSFUL"
    TIMEOUT = "TIMEOUT"
    EXPIRED = "EXPIRED"
    FAILED = "FAILED"

    @property
    def final(self) -> bool:
        return self not in (RpcState.QUEUED, RpcState.SENT, RpcState.DELIVERED)


@attrs.frozen
class Rpc:
    """
    A server-side RPC queued for a device.  Times are integer ms since the
    epoch.

    @ivar id: increasing across all devices and never reused: the order the
        device's RPCs go out in.
    @ivar timeout_ms: how long a two-way RPC waits for its reply once sent
        (a one-way one, for the device's acknowledgement).
    @ivar expires_at: a QUEUED RPC not sent by then is EXPIRED.
    @ivar retries: times it went back to the queue after a send that the
        device did not acknowledge.
    @ivar response: the device's reply (two-way, SUCCESSFUL).
    @ivar error: why it failed, timed out or expired.
    @ivar content_type: the media type of C{params} when it is a payload
        of its own (a Drogue command sent with a Content-Type); the device
        gets it as its Content-Format.
    """

    device_id: str
    id: int
    method: str
    params: JSONValue
    oneway: bool
    timeout_ms: int
    expires_at: int
    created: int
    state: RpcState = RpcState.QUEUED
    retries: int = 0
    sent_at: Optional[int] = None
    updated: int = 0
    response: JSONValue = None
    error: Optional[str] = None
    content_type: Optional[str] = None
