"""
This node's heartbeat on a Clock and the cluster it reports: alive while
the last heartbeat is at most three intervals old.
"""

from __future__ import annotations

from twisted.internet.defer import Deferred, fail
from twisted.internet.task import Clock
from zope.interface.verify import verifyObject

from gateway.service.build import build_services
from gateway.service.cluster import ClusterMembership
from gateway.store.interfaces import INodeTable
from gateway.store.memory import MemoryStore
from gateway.store.nodes import LocalNodes, NodeRow
from tests.service.conftest import FAST_HASHER, result


def test_local_nodes_is_a_node_table() -> None:
    """The in-memory node table provides the node table interface."""
    verifyObject(INodeTable, LocalNodes())


def test_heartbeats_keep_a_node_alive_and_silence_ends_it(clock: Clock) -> None:
    """A node beats at start and every interval; one silent over three intervals is not alive."""
    table = LocalNodes()
    me = ClusterMembership(table, clock, "a", 5.0)
    me.start()
    started = int(clock.seconds() * 1000)
    result(table.heartbeat("b", started - 100_000, started))
    for _ in range(3):
        clock.advance(5)
    clock.advance(1)
    status = result(me.status())
    assert status["node_id"] == "a"
    assert [(n["node_id"], n["alive"]) for n in status["nodes"]] == [("a", True), ("b", False)]
    assert status["nodes"][0]["last_heartbeat"] == started + 15_000
    assert status["nodes"][0]["started"] == started
    me.stop()
    clock.advance(16)
    assert [n["alive"] for n in result(me.status())["nodes"]] == [False, False]


class _Failing(LocalNodes):
    def heartbeat(self, node_id: str, started: int, at: int) -> "Deferred[None]":
        return fail(RuntimeError("the store is down"))


def test_a_failed_heartbeat_does_not_stop_the_next(clock: Clock) -> None:
    """A heartbeat that fails is logged, and the node beats again at the next interval."""
    table = _Failing()
    me = ClusterMembership(table, clock, "a", 5.0)
    me.start()
    clock.advance(5)
    assert me._loop is not None and me._loop.running
    me.stop()


def test_services_name_the_node_in_events_and_the_cluster(clock: Clock) -> None:
    """The node id given to the services is the events' source and the cluster's node."""
    services = result(build_services(MemoryStore(), clock, FAST_HASHER, instance="node-7"))
    services.cluster.start()
    device = result(services.registry.create_device("d1")).device
    result(services.telemetry.record(device.id, [(1, {"t": 1})]))
    event = result(services.events.events(None, None, 0, 10))[0]["event"]
    assert event["source"].startswith("/coap-gateway/node-7/")
    assert [n["node_id"] for n in result(services.cluster.status())["nodes"]] == ["node-7"]
    result(services.close())


def test_node_rows_order_by_id() -> None:
    """The in-memory table lists nodes by id, the latest heartbeat of each."""
    table = LocalNodes()
    for node, at in (("b", 1), ("a", 2), ("b", 3)):
        result(table.heartbeat(node, 0, at))
    assert result(table.nodes()) == [NodeRow("a", 0, 2), NodeRow("b", 0, 3)]
