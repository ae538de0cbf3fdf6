"""
The persistence seam.

L{IStore} is what the service layer needs from a backend.  Backends:
L{gateway.store.memory.MemoryStore} (tests, and C{[storage] backend =
"memory"}) and L{gateway.store.sqlite.SQLiteStore} (the embedded default).
A PostgreSQL backend for several gateway nodes will implement the same
interface, so it is deliberately free of SQLite-isms: ids are strings,
timestamps numbers (float seconds for C{Device.created}, int ms for
attributes, telemetry and claims), JSON values are passed as Python values,
never as SQL text, and every method returns a L{Deferred}.

Units of work: writes that belong together (a device and its token; later,
telemetry and its outbox event) are one L{UnitOfWork} given to
L{IStore.commit}: all of its operations or none.  Every single-write method
is a unit of one (L{gateway.store.writes.SingleWrites}).

Write semantics: a backend may batch units (the SQLite backend commits all
units queued within one reactor tick in one transaction, "group commit",
each unit in its own savepoint), but each Deferred fires only once its unit
is durable, and units are applied in the order they were committed.

Errors: methods raise (errback with) L{gateway.domain.errors} classes, the
same class for the same input on every backend: L{Conflict} for uniqueness
violations, L{NotFound} when a referenced row is missing, L{InvalidArgument}
for a device whose profile does not exist and for input no backend can
store (L{gateway.store.values}: text that is not valid Unicode, integer
fields beyond 64 bits, NaN or Infinity, values that are not JSON).

A backend that cannot be used at all (a file that is not a database, a
directory or database that cannot be written) is found before the gateway
starts: L{gateway.store.backends.check_store} raises L{StoreUnusable}.

The durable upstream outbox of CloudEvents is L{IOutbox}, which every
backend provides beside L{IStore}: events are appended by an operation in
the same unit of work as the uplink they come from
(L{gateway.store.unit.AppendEvent}), so a device is answered only after its
event is durable.  L{ICommandQueue} is the persistent queue of server-side
RPCs, also beside L{IStore} in every backend.  L{IPackageStore} holds the
OTA packages' metadata and their assignments (the content is files in the
data directory, L{gateway.store.blobs}).

L{IChangeFeed} tells a node what the others sharing the store committed
(PostgreSQL's LISTEN/NOTIFY); a backend only one process uses has none, and
the service layer uses L{gateway.store.changes.LocalChangeFeed} instead.
L{INodeTable} holds the nodes' heartbeats (in memory for such a backend:
L{gateway.store.nodes.LocalNodes}), L{IHeardLog} when each power-saving
device was last heard, for every node (a single process needs none).
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Optional, Sequence

from twisted.internet.defer import Deferred
from zope.interface import Interface

from gateway.domain.model import (
    Attribute,
    AttributeScope,
    Claim,
    Credential,
    CredentialKind,
    Device,
    JSONValue,
    Profile,
    Rpc,
    RpcState,
    TelemetryPoint,
)
from gateway.domain.ota import AssignmentTarget, OtaAssignment, OtaKind, OtaPackage
from gateway.store.unit import DeadLetter, OutboxEvent, UnitOfWork

__all__ = [
    "IStore",
    "IOutbox",
    "ICommandQueue",
    "IPackageStore",
    "IChangeFeed",
    "INodeTable",
    "IHeardLog",
    "StoreUnusable",
]


class StoreUnusable(Exception):
    """The store cannot be used: the message names the file and what to do, in one line."""


class IStore(Interface):
    """
    Durable storage of devices, credentials, profiles, attributes, latest
    telemetry and claims.
    """

    # -- units of work -----------------------------------------------------

    def commit(unit: UnitOfWork) -> "Deferred[list[Any]]":
        """
        Apply the unit's operations in order, each seeing the writes of the
        ones before it, with one outcome: fires with their results in order
        (see each operation's class) once all are durable, or errbacks with
        the error of the first operation that failed, leaving nothing of the
        unit behind.
        """

    # -- devices -----------------------------------------------------------

    def create_device(device: Device) -> "Deferred[Device]":
        """
        Insert a device.  L{Conflict} if the id or the (application, name)
        pair is taken; L{InvalidArgument} if its profile does not exist.
        """

    def update_device(device: Device) -> "Deferred[Device]":
        """
        Replace the device with the same id.  L{NotFound} if absent,
        L{Conflict} on a name clash, L{InvalidArgument} for an unknown
        profile.
        """

    def delete_device(device_id: str) -> "Deferred[None]":
        """
        Delete a device with its credentials, attributes, telemetry, claim
        and RPCs.  L{NotFound} if absent.
        """

    def get_device(device_id: str) -> "Deferred[Optional[Device]]":
        """The device with this id, or C{None}."""

    def find_device(application: str, name: str) -> "Deferred[Optional[Device]]":
        """The device named C{name} in C{application}, or C{None}."""

    def list_devices(
        application: Optional[str] = None,
    ) -> "Deferred[list[Device]]":
        """All devices (of one application if given), ordered by name."""

    # -- credentials -------------------------------------------------------

    def put_credential(credential: Credential) -> "Deferred[None]":
        """
        Set the device's credential of C{credential.kind}, replacing one of
        the same kind.  L{NotFound} if the device is absent; L{Conflict} if
        another device holds the same (kind, lookup).
        """

    def get_credentials(device_id: str) -> "Deferred[list[Credential]]":
        """The device's credentials (empty if none or no such device)."""

    def delete_credential(
        device_id: str, kind: CredentialKind
    ) -> "Deferred[bool]":
        """Delete one credential; C{True} if there was one."""

    def find_credential(
        kind: CredentialKind, lookup: str
    ) -> "Deferred[Optional[Credential]]":
        """The credential of this kind with this lookup key, or C{None}."""

    def load_all_credentials() -> "Deferred[list[Credential]]":
        """Every credential, to fill the in-memory cache at start."""

    # -- profiles ----------------------------------------------------------

    def put_profile(profile: Profile) -> "Deferred[None]":
        """
        Insert or replace the profile with this name.  L{Conflict} if its
        C{provision_key} is used by another profile.
        """

    def get_profile(name: str) -> "Deferred[Optional[Profile]]":
        """The profile with this name, or C{None}."""

    def find_profile_by_provision_key(
        provision_key: str,
    ) -> "Deferred[Optional[Profile]]":
        """The profile whose C{provision_key} is this, or C{None}."""

    def list_profiles() -> "Deferred[list[Profile]]":
        """All profiles, ordered by name."""

    def delete_profile(name: str) -> "Deferred[None]":
        """
        Delete a profile.  L{NotFound} if absent, L{Conflict} if devices
        still use it.
        """

    # -- attributes --------------------------------------------------------

    def get_attributes(
        device_id: str,
        scope: AttributeScope,
        keys: Optional[Sequence[str]] = None,
    ) -> "Deferred[list[Attribute]]":
        """
        Attributes of one scope, all of them or only C{keys} (missing keys
        are left out), ordered by key.
        """

    def set_attributes(
        device_id: str,
        scope: AttributeScope,
        values: Mapping[str, JSONValue],
        ts: int,
    ) -> "Deferred[None]":
        """
        Insert or replace attributes, stamping them with C{ts} (ms).
        L{NotFound} if the device is absent.
        """

    def delete_attributes(
        device_id: str, scope: AttributeScope, keys: Sequence[str]
    ) -> "Deferred[list[str]]":
        """Delete attributes; returns the keys that existed."""

    # -- telemetry ---------------------------------------------------------

    def append_telemetry(
        device_id: str,
        records: Sequence[tuple[int, Mapping[str, JSONValue]]],
    ) -> "Deferred[None]":
        """
        Record a batch of (ts ms, {key: value}).  The latest value per key
        is kept: a value replaces the stored one unless it is older (equal
        timestamps: the later call wins).  L{NotFound} if the device is
        absent.  History is not kept here: it travels upstream through the
        outbox.
        """

    def get_latest_telemetry(
        device_id: str, keys: Optional[Sequence[str]] = None
    ) -> "Deferred[list[TelemetryPoint]]":
        """Latest values, all of them or only C{keys}, ordered by key."""

    # -- claims ------------------------------------------------------------

    def put_claim(claim: Claim) -> "Deferred[None]":
        """Record (or replace) the device's claim.  L{NotFound} if absent."""

    def get_claim(device_id: str) -> "Deferred[Optional[Claim]]":
        """The device's recorded claim, expired or not, or C{None}."""

    def delete_claim(device_id: str) -> "Deferred[bool]":
        """Forget the device's claim; C{True} if there was one."""

    # -- lifecycle ---------------------------------------------------------

    def close() -> "Deferred[None]":
        """Finish queued writes and release the backend."""


class IOutbox(Interface):
    """
    The durable outbox of CloudEvents (design decision 6).

    Every accepted uplink becomes one event, appended by
    L{gateway.store.unit.AppendEvent} in the same unit of work as its
    telemetry/attributes write, so the device is answered only once both are
    durable.  Events stay until acknowledged (delivered upstream), moved to
    the dead letters, or pruned; positions increase and are never reused, so
    a reader pages with C{after}.  A dead letter keeps its event's id and
    sequence number; replaying it appends it again at the end.
    """

    outbox_limit: Optional[int]
    """Most events held; an L{AppendEvent} beyond it fails L{Unavailable}."""

    def peek(limit: int, after: int = 0) -> "Deferred[list[OutboxEvent]]":
        """Up to C{limit} held events after position C{after}, oldest first."""

    def acknowledge(positions: Sequence[int]) -> "Deferred[int]":
        """Remove these events (delivered); fires with how many there were."""

    def size() -> "Deferred[int]":
        """How many events the outbox holds."""

    def query(
        device_id: Optional[str] = None,
        type: Optional[str] = None,
        after: int = 0,
        limit: int = 100,
    ) -> "Deferred[list[OutboxEvent]]":
        """Held events of one device and/or type after C{after}, oldest first."""

    def prune(received_before_ms: int, keep: int) -> "Deferred[int]":
        """
        Delete the oldest events: those received before C{received_before_ms}
        (stopping at the first younger one) and then as many as make the
        outbox hold at most C{keep}; fires with how many went.
        """

    def dead_letter(position: int, status: int, reason: str, at_ms: int) -> "Deferred[bool]":
        """
        Move a held event to the dead letters with the upstream's answer
        (C{status} 0 when there was none); C{True} if it was held.
        """

    def dead_letters(limit: int = 100, after: int = 0) -> "Deferred[list[DeadLetter]]":
        """Up to C{limit} dead letters after position C{after}, oldest first."""

    def replay(positions: Optional[Sequence[int]] = None) -> "Deferred[int]":
        """
        Append these dead letters (all if C{None}) to the outbox again, in
        their order, ignoring the limit; fires with how many moved.
        """

    def discard(positions: Optional[Sequence[int]] = None) -> "Deferred[int]":
        """Delete these dead letters (all if C{None}); fires with how many."""


class ICommandQueue(Interface):
    """
    The persistent per-device queues of server-side RPCs, kept across
    restarts until the power-saving scheduler can reach the device.

    RPCs are written by operations in units of work
    (L{gateway.store.unit.EnqueueRpc}, L{gateway.store.unit.UpdateRpc}),
    each with its upstream event (L{gateway.store.unit.AppendEvent}), so
    every state change is durable together with the event that reports it.
    Ids are the caller's, increasing across all devices and never reused
    (L{last_rpc_id}): a device's RPCs go out in id order.  A device's RPCs
    are deleted with it.
    """

    def last_rpc_id() -> "Deferred[int]":
        """The highest RPC id ever queued (0 if none), deleted ones included."""

    def get_rpc(device_id: str, rpc_id: int) -> "Deferred[Optional[Rpc]]":
        """The device's RPC with this id, or C{None}."""

    def list_rpcs(
        device_id: str, state: Optional[RpcState] = None, limit: int = 100
    ) -> "Deferred[list[Rpc]]":
        """The device's RPCs (only those in C{state} if given), oldest first."""

    def unfinished_rpcs() -> "Deferred[list[Rpc]]":
        """Every QUEUED, SENT or DELIVERED RPC, by device then id (read at start)."""


class IPackageStore(Interface):
    """
    OTA packages and their assignments, written by operations in units of
    work (L{gateway.store.unit.PutPackage}, L{gateway.store.unit.DeletePackage},
    L{gateway.store.unit.AssignPackage}, L{gateway.store.unit.UnassignPackage}).
    A device's or profile's assignments are deleted with it.
    """

    def get_package(kind: OtaKind, title: str, version: str) -> "Deferred[Optional[OtaPackage]]":
        """The package of this kind, title and version, or C{None}."""

    def list_packages(kind: Optional[OtaKind] = None) -> "Deferred[list[OtaPackage]]":
        """Every package (of one kind if given), by kind, title and version."""

    def get_assignment(
        kind: OtaKind, target_type: AssignmentTarget, target: str
    ) -> "Deferred[Optional[OtaAssignment]]":
        """The device's or profile's assignment of this kind, or C{None}."""

    def list_assignments(kind: Optional[OtaKind] = None) -> "Deferred[list[OtaAssignment]]":
        """Every assignment (of one kind if given), by kind, target type and target."""
class IChangeFeed(Interface):
    """
    The changes committed through any node sharing the store
    (L{gateway.store.changes.Change}: devices and their credentials,
    profiles, shared attributes, RPCs), so each node can drop what it
    holds in memory of them.  Each change is heard once it is durable, in
    commit order, on the reactor thread, by this node too (marked
    C{local}).  When changes may have been missed (the feed's connection
    broke and was made again) listeners hear a C{RESYNC} change.
    """

    def subscribe(listener: Callable[[Any], None]) -> Callable[[], None]:
        """Hear every later change, until the returned callable is called."""


class INodeTable(Interface):
    """The heartbeats of the gateway nodes sharing the store."""

    def heartbeat(node_id: str, started: int, at: int) -> "Deferred[None]":
        """
        Record that node C{node_id}, started at C{started}, was alive at
        C{at} (ms), with the outbox partitions it owns now.
        """

    def nodes() -> "Deferred[list[Any]]":
        """Every node's last heartbeat (L{gateway.store.nodes.NodeRow}), by node id."""


class IHeardLog(Interface):
    """
    When each device was last heard from (an uplink, an ACK), shared by the
    nodes so that every node knows a power-saving device's windows.
    """

    def record_heard(heard: Mapping[str, int]) -> "Deferred[None]":
        """
        Record these (device id -> ms) times, keeping the later of the
        stored one and the new one; unknown devices are left out.  The
        other nodes hear each as a C{HEARD} change.
        """

    def last_heard() -> "Deferred[dict[str, int]]":
        """Every device's last recorded time (ms), by device id."""
