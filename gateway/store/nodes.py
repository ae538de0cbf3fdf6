# -*- test-case-name: tests.store.test_nodes -*-
"""
The gateway nodes sharing a store, as their heartbeats record them
(L{gateway.store.interfaces.INodeTable}), and L{LocalNodes}: the table of
a store only one process uses (SQLite, memory), kept in memory, where
there are no outbox partitions to share out.
"""

from __future__ import annotations

import attrs
from twisted.internet.defer import Deferred, succeed
from zope.interface import implementer

from gateway.store.interfaces import INodeTable

__all__ = ["LocalNodes", "NodeRow"]


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
