# -*- test-case-name: tests.store.test_contract -*-
"""
Units of work: write operations as data, committed all or nothing by
L{gateway.store.interfaces.IStore.commit}.

An operation checks its data when it is built (L{InvalidArgument} for text
that is not valid Unicode, integers beyond 64 bits, non-finite numbers,
values that are not JSON; see L{gateway.store.values}) and snapshots JSON
values as JSON text, so a caller may change what it passed at once and every
backend refuses exactly the same input.  What an operation finds in the
store (a missing device, a taken name) is only known when it is committed.

Each operation's class docstring names its result, the item at its position
in the list C{commit} fires with.
"""

from __future__ import annotations

from typing import Mapping, Sequence, Union

import attrs

from gateway.domain.errors import InvalidArgument
from gateway.domain.model import (
    AttributeScope,
    Claim,
    Credential,
    CredentialKind,
    Device,
    JSONValue,
    PowerMode,
    Profile,
    Rpc,
    RpcState,
)
from gateway.domain.ota import (
    AssignmentTarget,
    ChecksumAlgorithm,
    OtaAssignment,
    OtaKind,
    OtaPackage,
)
from gateway.store.values import (
    check_finite,
    check_int64,
    check_text,
    check_texts,
    decode_json,
    encode_json,
)

__all__ = [
    "AppendEvent",
    "AppendTelemetry",
    "AssignPackage",
    "CreateDevice",
    "DeadLetter",
    "DeleteAttributes",
    "DeleteClaim",
    "DeleteCredential",
    "DeleteDevice",
    "DeletePackage",
    "DeleteProfile",
    "EnqueueRpc",
    "JSONItems",
    "Operation",
    "OutboxEvent",
    "PutClaim",
    "PutCredential",
    "PutPackage",
    "PutProfile",
    "SetAttributes",
    "UnassignPackage",
    "UnitOfWork",
    "UpdateDevice",
    "UpdateRpc",
]

#: (key, JSON text) pairs, in the order given.
JSONItems = tuple[tuple[str, str], ...]


# -- checks of the records the operations carry --------------------------------


_POWER_TIMERS = ("psm_activity_timer", "edrx_cycle", "paging_transmission_window")


def _optional_int64(what: str, value: object) -> None:
    if value is not None:
        check_int64(what, value)


def _device(device: Device) -> Device:
    check_text("device id", device.id)
    check_text("device name", device.name)
    check_text("application", device.application)
    check_text("profile name", device.profile)
    if not isinstance(device.enabled, bool):
        raise InvalidArgument("enabled must be a boolean")
    if device.power_mode is not None and not isinstance(device.power_mode, PowerMode):
        raise InvalidArgument("power_mode must be a PowerMode")
    for name in _POWER_TIMERS:
        _optional_int64(name, getattr(device, name))
    # As a database column gives it back: float seconds.
    return attrs.evolve(device, created=check_finite("created", device.created))


def _credential(credential: Credential) -> Credential:
    check_text("device id", credential.device_id)
    check_text(f"{credential.kind.value} lookup", credential.lookup)
    if not isinstance(credential.secret, bytes):
        raise InvalidArgument("a credential secret must be bytes")
    return credential


_PROFILE_TEXTS = (
    "telemetry_proto",
    "attributes_proto",
    "rpc_request_proto",
    "rpc_response_proto",
    "provision_key",
    "provision_secret",
)
_PROFILE_INTEGERS = _POWER_TIMERS


def _profile(profile: Profile) -> Profile:
    check_text("profile name", profile.name)
    for name in _PROFILE_TEXTS:
        if getattr(profile, name) is not None:
            check_text(name, getattr(profile, name))
    for name in _PROFILE_INTEGERS:
        if getattr(profile, name) is not None:
            check_int64(name, getattr(profile, name))
    return profile


def _claim(claim: Claim) -> Claim:
    check_text("device id", claim.device_id)
    check_text("claim secret", claim.secret_key)
    check_int64("claim expiry", claim.expires_at)
    check_int64("claim creation time", claim.created)
    return claim


def _rpc(rpc: Rpc) -> Rpc:
    """The RPC with its JSON values snapshot (as a column gives them back)."""
    check_text("device id", rpc.device_id)
    check_text("rpc method", rpc.method)
    if not isinstance(rpc.oneway, bool):
        raise InvalidArgument("oneway must be a boolean")
    if not isinstance(rpc.state, RpcState):
        raise InvalidArgument("an rpc state must be an RpcState")
    for name in ("id", "timeout_ms", "expires_at", "created", "retries", "updated"):
        check_int64(f"rpc {name}", getattr(rpc, name))
    _optional_int64("rpc sent_at", rpc.sent_at)
    if rpc.error is not None:
        check_text("rpc error", rpc.error)
    if rpc.content_type is not None:
        check_text("rpc content type", rpc.content_type)
    return attrs.evolve(
        rpc,
        params=decode_json(encode_json(rpc.params)),
        response=decode_json(encode_json(rpc.response)),
    )


def _count(n: int) -> int:
    return check_int64("rpc count", n)


def _states(states: Sequence[RpcState]) -> tuple[RpcState, ...]:
    return tuple(states)


def _package(package: OtaPackage) -> OtaPackage:
    if not isinstance(package.kind, OtaKind):
        raise InvalidArgument("a package kind must be an OtaKind")
    if not isinstance(package.checksum_algorithm, ChecksumAlgorithm):
        raise InvalidArgument("a checksum algorithm must be a ChecksumAlgorithm")
    for name in ("title", "version", "checksum", "content_type", "content_sha256"):
        check_text(f"package {name}", getattr(package, name))
    check_int64("package size", package.size)
    check_int64("package creation time", package.created)
    return package


def _assignment(assignment: OtaAssignment) -> OtaAssignment:
    if not isinstance(assignment.kind, OtaKind):
        raise InvalidArgument("a package kind must be an OtaKind")
    if not isinstance(assignment.target_type, AssignmentTarget):
        raise InvalidArgument("an assignment target must be an AssignmentTarget")
    for name in ("target", "title", "version"):
        check_text(f"assignment {name}", getattr(assignment, name))
    return assignment


def _package_text(value: str) -> str:
    return check_text("package name", value)


def _json_items(values: Mapping[str, JSONValue]) -> JSONItems:
    return tuple((check_text("key", k), encode_json(v)) for k, v in values.items())


def _records(
    records: Sequence[tuple[int, Mapping[str, JSONValue]]],
) -> tuple[tuple[int, JSONItems], ...]:
    return tuple((check_int64("telemetry ts", ts), _json_items(values)) for ts, values in records)


def _device_id(device_id: str) -> str:
    return check_text("device id", device_id)


def _name(name: str) -> str:
    return check_text("profile name", name)


def _keys(keys: Sequence[str]) -> tuple[str, ...]:
    return check_texts("key", keys)


def _ms(ts: int) -> int:
    return check_int64("ts", ts)


def _event_text(value: str) -> str:
    return check_text("event attribute", value)


# -- operations ----------------------------------------------------------------


@attrs.frozen
class CreateDevice:
    """
    Insert a device.  L{Conflict} if the id or the (application, name) pair
    is taken, L{InvalidArgument} if its profile does not exist.  Result: the
    L{Device}.
    """

    device: Device = attrs.field(converter=_device)


@attrs.frozen
class UpdateDevice:
    """
    Replace the device with the same id.  L{NotFound} if absent, L{Conflict}
    on a name clash, L{InvalidArgument} for an unknown profile.  Result: the
    L{Device}.
    """

    device: Device = attrs.field(converter=_device)


@attrs.frozen
class DeleteDevice:
    """
    Delete a device with its credentials, attributes, telemetry, claim and RPCs.
    L{NotFound} if absent.  Result: C{None}.
    """

    device_id: str = attrs.field(converter=_device_id)


@attrs.frozen
class PutCredential:
    """
    Set the device's credential of its kind, replacing one of the same kind.
    L{NotFound} if the device is absent, L{Conflict} if another device holds
    the same (kind, lookup).  Result: C{None}.
    """

    credential: Credential = attrs.field(converter=_credential)


@attrs.frozen
class DeleteCredential:
    """Delete one credential.  Result: C{True} if there was one."""

    device_id: str = attrs.field(converter=_device_id)
    kind: CredentialKind


@attrs.frozen
class PutProfile:
    """
    Insert or replace the profile with this name (its devices stay).
    L{Conflict} if its C{provision_key} is another profile's.  Result:
    C{None}.
    """

    profile: Profile = attrs.field(converter=_profile)


@attrs.frozen
class DeleteProfile:
    """
    Delete a profile.  L{NotFound} if absent, L{Conflict} if devices use it.
    Result: C{None}.
    """

    name: str = attrs.field(converter=_name)


@attrs.frozen
class SetAttributes:
    """
    Insert or replace attributes of one scope, stamped with C{ts} (ms).
    L{NotFound} if the device is absent.  Result: C{None}.
    """

    device_id: str = attrs.field(converter=_device_id)
    scope: AttributeScope
    values: JSONItems = attrs.field(converter=_json_items)
    ts: int = attrs.field(converter=_ms)


@attrs.frozen
class DeleteAttributes:
    """Delete attributes of one scope.  Result: the keys that existed."""

    device_id: str = attrs.field(converter=_device_id)
    scope: AttributeScope
    keys: tuple[str, ...] = attrs.field(converter=_keys)


@attrs.frozen
class AppendTelemetry:
    """
    Record a batch of (ts ms, {key: value}), keeping the latest value per
    key: a value replaces the stored one unless it is older (equal
    timestamps: the later one wins).  L{NotFound} if the device is absent.
    Result: C{None}.
    """

    device_id: str = attrs.field(converter=_device_id)
    records: tuple[tuple[int, JSONItems], ...] = attrs.field(converter=_records)


@attrs.frozen
class PutClaim:
    """Record (or replace) the device's claim.  L{NotFound} if absent.  Result: C{None}."""

    claim: Claim = attrs.field(converter=_claim)


@attrs.frozen
class DeleteClaim:
    """Forget the device's claim.  Result: C{True} if there was one."""

    device_id: str = attrs.field(converter=_device_id)


@attrs.frozen
class AppendEvent:
    """
    Append one event to the durable outbox (L{gateway.store.interfaces.IOutbox}),
    giving it the next position in the outbox and the device's next
    sequence number.  The device need not exist: its events outlive it.
    L{Unavailable} if the outbox is full.  Result: the sequence number.

    @ivar body: the event as text (the store does not read it).
    @ivar time_ms: the event's time; C{received_ms}: when the gateway took it.
    """

    device_id: str = attrs.field(converter=_device_id)
    event_id: str = attrs.field(converter=_event_text)
    type: str = attrs.field(converter=_event_text)
    time_ms: int = attrs.field(converter=_ms)
    received_ms: int = attrs.field(converter=_ms)
    body: str = attrs.field(converter=_event_text)


@attrs.frozen
class OutboxEvent:
    """
    An event kept in the outbox, as L{AppendEvent} gave it.

    @ivar position: its place in the outbox: increasing, never reused.
    @ivar sequence: the device's counter, 1 for its first event.
    """

    position: int
    device_id: str
    sequence: int
    event_id: str
    type: str
    time_ms: int
    received_ms: int
    body: str


@attrs.frozen
class DeadLetter:
    """
    An event the upstream refused for good, with its answer.

    @ivar status: the HTTP status (0 if there was no answer).
    @ivar reason: the response body (or error) as text.
    """

    event: OutboxEvent
    status: int
    reason: str
    failed_ms: int


@attrs.frozen
class EnqueueRpc:
    """
    Queue an RPC for its device under its id, which the caller takes above
    L{gateway.store.interfaces.ICommandQueue.last_rpc_id} (so that the
    upstream event committed with it can name it).  L{NotFound} if the
    device is absent, L{Conflict} if the id was ever given or the device
    already holds C{limit} unfinished RPCs.  Finished RPCs of the device
    beyond the C{keep_finished} newest are deleted.  Result: the L{Rpc}.
    """

    rpc: Rpc = attrs.field(converter=_rpc)
    limit: int = attrs.field(converter=_count)
    keep_finished: int = attrs.field(converter=_count)


@attrs.frozen
class UpdateRpc:
    """
    Set the state, retries, sent_at, updated, response and error of the
    stored RPC of the same device and id (the rest stays as queued) if its
    state is one of C{expect}, so that
    two outcomes racing for one RPC cannot both win.  L{NotFound} if
    absent, L{Conflict} if it is in another state.  Result: the L{Rpc}.
    """

    rpc: Rpc = attrs.field(converter=_rpc)
    expect: tuple[RpcState, ...] = attrs.field(converter=_states)


@attrs.frozen
class PutPackage:
    """
    Record an OTA package (its content is already in the data directory).
    L{Conflict} if one of the same kind, title and version exists.  Result:
    C{None}.
    """

    package: OtaPackage = attrs.field(converter=_package)


@attrs.frozen
class DeletePackage:
    """
    Forget an OTA package.  L{NotFound} if absent, L{Conflict} while it is
    assigned.  Result: the deleted L{OtaPackage}.
    """

    kind: OtaKind
    title: str = attrs.field(converter=_package_text)
    version: str = attrs.field(converter=_package_text)


@attrs.frozen
class AssignPackage:
    """
    Give a package to a device or profile, replacing its assignment of the
    same kind.  L{NotFound} if the package, device or profile is absent.
    An assignment goes with its device or profile.  Result: C{None}.
    """

    assignment: OtaAssignment = attrs.field(converter=_assignment)


@attrs.frozen
class UnassignPackage:
    """
    Remove the assignment of one kind from a device or profile.  Result:
    the removed L{OtaAssignment}, or C{None} if there was none.
    """

    kind: OtaKind
    target_type: AssignmentTarget
    target: str = attrs.field(converter=_package_text)


#: Every operation a unit may hold.  A new kind is added to this union;
#: each backend dispatches on it with a C{match} that ends in
#: C{assert_never}, so mypy names every backend that does not handle it.
Operation = Union[
    CreateDevice,
    UpdateDevice,
    DeleteDevice,
    PutCredential,
    DeleteCredential,
    PutProfile,
    DeleteProfile,
    SetAttributes,
    DeleteAttributes,
    AppendTelemetry,
    PutClaim,
    DeleteClaim,
    AppendEvent,
    EnqueueRpc,
    UpdateRpc,
    PutPackage,
    DeletePackage,
    AssignPackage,
    UnassignPackage,
]


@attrs.frozen
class UnitOfWork:
    """
    Operations applied in order with one outcome: all of them, or (if one
    fails) none.  Later operations see the writes of earlier ones.
    """

    operations: tuple[Operation, ...] = ()

    @classmethod
    def of(cls, *operations: Operation) -> "UnitOfWork":
        return cls(operations)

    def then(self, *operations: Operation) -> "UnitOfWork":
        """This unit followed by C{operations}."""
        return UnitOfWork(self.operations + operations)

    def __add__(self, other: "UnitOfWork") -> "UnitOfWork":
        return self.then(*other.operations)

