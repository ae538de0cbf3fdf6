# -*- test-case-name: tests.service.test_cluster -*-
"""
This node among the gateway nodes sharing the store: its heartbeat every
C{interval} seconds on the injected clock (with the outbox partitions it
owns), and the cluster as the heartbeats show it.  A node is alive while
its last heartbeat is at most three intervals old.
"""

from __future__ import annotations

from typing import Any, Optional

import attrs
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from gateway.service.attributes import now_ms
from gateway.store.interfaces import INodeTable

__all__ = ["ClusterMembership"]

log = Logger()

#: Heartbeats a node may miss and still be alive.
_MISSED = 3


@attrs.define
class ClusterMembership:
    _table: INodeTable
    _clock: IReactorTime
    node_id: str
    interval: float = 5.0
    _started: int = 0
    _loop: Optional[LoopingCall] = None

    def start(self) -> None:
        """Beat now, then every interval."""
        self._started = now_ms(self._clock)
        self._loop = LoopingCall(self._beat)
        self._loop.clock = self._clock
        self._loop.start(self.interval, now=True)

    def stop(self) -> None:
        if self._loop is not None and self._loop.running:
            self._loop.stop()

    def _beat(self) -> "Deferred[None]":
        d = self._table.heartbeat(self.node_id, self._started, now_ms(self._clock))
        d.addCallback(lambda _: log.debug("node {node_id}: heartbeat", node_id=self.node_id))
        # A missed beat is logged; the next one comes at its time.
        d.addErrback(lambda f: log.failure("node {node_id}: heartbeat failed", f,
                                           node_id=self.node_id))
        return d

    def status(self) -> "Deferred[dict[str, Any]]":
        """C{GET /api/v1/cluster}: this node's id and every node, alive or not."""

        async def run() -> dict[str, Any]:
            now = now_ms(self._clock)
            stale = now - int(_MISSED * self.interval * 1000)
            nodes = [
                {
                    "node_id": row.node_id,
                    "alive": row.heartbeat >= stale,
                    "started": row.started,
                    "last_heartbeat": row.heartbeat,
                    "partitions": list(row.partitions),
                }
                for row in await self._table.nodes()
            ]
            return {"node_id": self.node_id, "nodes": nodes}

        return Deferred.fromCoroutine(run())
