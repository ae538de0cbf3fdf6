# -*- test-case-name: tests.store.test_nodes -*-
"""
What the gateway nodes sharing a store know of each other and of the
devices, with in-memory implementations for a store only one process uses
(SQLite, memory): the nodes' heartbeats
(L{gateway.store.interfaces.INodeTable}, L{LocalNodes}: there are no
outbox partitions to share out there) and when devices were last heard
(L{gateway.store.interfaces.IHeardLog}, L{LocalHeard}).
"""

from __future__ import annotations

from typing import Mapping

import attrs
from twisted.internet.defer import Deferred, succeed
from zope.interface import implementer

from gateway.store.interfaces import IHeardLog, INodeTable

__all__ = ["LocalHeard", "LocalNodes", "NodeRow"]


@attrs.frozen
class NodeRow:
    """One node's last heartbeat (times in ms since the epoch)."""

    node_id: str
    started: int
    heartbeat: int
    #: The outbox partitions the node owned then, ascending.
    partitions: tuple[int, ...] = ()


@implementer(INodeTable)
@attrs.define
class LocalNodes:
    _rows: dict[str, NodeRow] = attrs.field(factory=dict)

    def heartbeat(self, node_id: str, started: int, at: int) -> "Deferred[None]":
        self._rows[node_id] = NodeRow(node_id, started, at)
        return succeed(None)

    def nodes(self) -> "Deferred[list[NodeRow]]":
        return succeed(sorted(self._rows.values(), key=lambda r: r.node_id))


@implementer(IHeardLog)
@attrs.define
class LocalHeard:
    """Knows no devices: unlike a store's log, it keeps the time of any id given."""

    _heard: dict[str, int] = attrs.field(factory=dict)

    def record_heard(self, heard: Mapping[str, int]) -> "Deferred[None]":
        for device_id, at in heard.items():
            self._heard[device_id] = max(at, self._heard.get(device_id, at))
        return succeed(None)

    def last_heard(self) -> "Deferred[dict[str, int]]":
        return succeed(dict(self._heard))
