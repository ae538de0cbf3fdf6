# -*- test-case-name: tests.store.test_changes -*-
"""
What other gateway nodes sharing a store must hear of a committed write
(L{gateway.store.interfaces.IChangeFeed}): the device, profile, shared
attribute and RPC changes an operation makes, as L{Change}s, and their
wire form (PostgreSQL's NOTIFY payloads, at most 8000 bytes each).

A shared-attribute write names its timestamp, not its keys, so any number
of keys fits in one payload: a reader pushes the device's shared attributes
stamped with it.  A deletion names its keys, split over several payloads
when they do not fit in one.
"""

from __future__ import annotations

import enum
import json
from typing import Callable, Optional

import attrs
from twisted.logger import Logger
from zope.interface import implementer

from gateway.domain.model import AttributeScope
from gateway.store.interfaces import IChangeFeed
from gateway.store.unit import (
    CreateDevice,
    DeleteAttributes,
    DeleteCredential,
    DeleteDevice,
    DeleteProfile,
    EnqueueRpc,
    Operation,
    PutCredential,
    PutProfile,
    SetAttributes,
    UpdateDevice,
    UpdateRpc,
)

__all__ = [
    "Change",
    "ChangeKind",
    "ChangeListener",
    "LocalChangeFeed",
    "changes_of",
    "decode",
    "deliver",
    "payloads",
]

log = Logger()


class ChangeKind(enum.Enum):
    #: A device, its settings or its credentials (C{key}: the device id).
    DEVICE = "device"
    #: A profile (C{key}: its name).
    PROFILE = "profile"
    #: Shared attributes set (C{key}: the device id; C{ts}: their timestamp).
    SHARED = "shared"
    #: Shared attributes deleted (C{key}: the device id; C{keys}: theirs).
    UNSHARED = "unshared"
    #: An RPC queued or changed (C{key}: the device id; C{rpc_id}).
    RPC = "rpc"
    #: A device was heard from (C{key}: its id; C{ts}: when, ms).
    HEARD = "heard"
    #: Changes may have been missed (the feed reconnected): reload everything.
    RESYNC = "resync"


@attrs.frozen
class Change:
    kind: ChangeKind
    key: str = ""
    keys: tuple[str, ...] = ()
    ts: int = 0
    rpc_id: int = 0
    #: Made through this node's own store session (already applied here).
    local: bool = False


#: Changes are delivered on the reactor thread, in commit order.
ChangeListener = Callable[[Change], None]

#: PostgreSQL refuses a NOTIFY payload of 8000 bytes or more.
_MAX_PAYLOAD = 7900


def changes_of(op: Operation) -> list[Change]:
    """What the other nodes must hear of C{op} once it is committed."""
    match op:
        case CreateDevice() | UpdateDevice():
            return [Change(ChangeKind.DEVICE, op.device.id)]
        case DeleteDevice() | DeleteCredential():
            return [Change(ChangeKind.DEVICE, op.device_id)]
        case PutCredential():
            return [Change(ChangeKind.DEVICE, op.credential.device_id)]
        case PutProfile():
            return [Change(ChangeKind.PROFILE, op.profile.name)]
        case DeleteProfile():
            return [Change(ChangeKind.PROFILE, op.name)]
        case SetAttributes() if op.scope is AttributeScope.SHARED:
            return [Change(ChangeKind.SHARED, op.device_id, ts=op.ts)]
        case DeleteAttributes() if op.scope is AttributeScope.SHARED:
            return [Change(ChangeKind.UNSHARED, op.device_id, keys=op.keys)]
        case EnqueueRpc() | UpdateRpc():
            return [Change(ChangeKind.RPC, op.rpc.device_id, rpc_id=op.rpc.id)]
        case _:
            return []


def _encode(change: Change, keys: list[str]) -> str:
    body: dict[str, object] = {"k": change.kind.value, "id": change.key}
    if keys:
        body["keys"] = keys
    if change.ts:
        body["ts"] = change.ts
    if change.rpc_id:
        body["rpc"] = change.rpc_id
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"))


def _size(text: str) -> int:
    return len(text.encode("utf-8"))


def payloads(change: Change) -> list[str]:
    """
    The NOTIFY payloads of C{change}: one, or several when its keys do not
    fit in one (a key too long for any payload alone is not named).
    """
    if not change.keys:
        return [_encode(change, [])]
    out: list[str] = []
    chunk: list[str] = []
    for key in change.keys:
        if _size(_encode(change, [key])) > _MAX_PAYLOAD:
            continue
        if chunk and _size(_encode(change, [*chunk, key])) > _MAX_PAYLOAD:
            out.append(_encode(change, chunk))
            chunk = []
        chunk.append(key)
    if chunk:
        out.append(_encode(change, chunk))
    return out


def decode(payload: str, local: bool) -> Optional[Change]:
    """The change a payload carries, or C{None} if it is not one of ours."""
    try:
        body = json.loads(payload)
        return Change(
            ChangeKind(body["k"]),
            str(body["id"]),
            tuple(str(k) for k in body.get("keys", ())),
            int(body.get("ts", 0)),
            int(body.get("rpc", 0)),
            local,
        )
    except (ValueError, KeyError, TypeError):
        return None


@implementer(IChangeFeed)
@attrs.define
class LocalChangeFeed:
    """
    The feed of a store only one process uses (SQLite, memory): nothing
    else writes it, so nothing is heard unless L{publish}ed (by a test, or
    by the PostgreSQL store handing on what its listening thread heard).
    """

    _listeners: list[ChangeListener] = attrs.field(factory=list)

    def subscribe(self, listener: ChangeListener) -> Callable[[], None]:
        self._listeners.append(listener)

        def unsubscribe() -> None:
            if listener in self._listeners:
                self._listeners.remove(listener)

        return unsubscribe

    def publish(self, change: Change) -> None:
        """Deliver C{change} as the real feeds do (L{deliver})."""
        deliver(self._listeners, change)


def deliver(listeners: list[ChangeListener], change: Change) -> None:
    """Give C{change} to every listener in subscription order; a failing one is logged."""
    for listener in list(listeners):
        try:
            listener(change)
        except Exception:
            log.failure("change listener failed on {change!r}", change=change)
