"""gatewayctl cluster, against an in-memory API."""

from __future__ import annotations

from twisted.internet.task import Clock

from gateway.service.build import build_services
from gateway.store.memory import MemoryStore
from tests.service.conftest import FAST_HASHER, result
from tests.test_cli import Ctl


def test_cluster_lists_the_nodes() -> None:
    """cluster prints this node's id and every node with its heartbeat and partitions."""
    clock = Clock()
    clock.advance(1_700_000_000)
    ctl = Ctl(result(build_services(MemoryStore(), clock, FAST_HASHER, instance="gw-1")))
    ctl.services.cluster.start()
    shown = ctl.json("cluster")
    assert shown == {
        "node_id": "gw-1",
        "nodes": [{"node_id": "gw-1", "alive": True, "started": 1_700_000_000_000,
                   "last_heartbeat": 1_700_000_000_000, "partitions": []}],
    }
    assert ctl.requests[-1][1].endswith("/api/v1/cluster")
