"""
Two gateway nodes' service layers on one store, on a Clock: what node A
commits reaches node B through B's change feed (the changes of A's units,
as PostgreSQL would notify them), and B's caches, attribute subscribers
and RPC queue follow.
"""

from __future__ import annotations

from typing import Any

import attrs
import pytest
from twisted.internet.defer import Deferred, succeed
from twisted.internet.task import Clock
from zope.interface.verify import verifyObject

from gateway.domain.model import AttributeScope, PowerMode, Profile, Rpc, RpcState
from gateway.service.build import Services, build_services
from gateway.service.interfaces import Delivery
from gateway.store.changes import Change, ChangeKind, LocalChangeFeed, changes_of
from gateway.store.interfaces import IChangeFeed
from gateway.store.unit import Operation, UnitOfWork
from tests.service.conftest import FAST_HASHER, RecordingStore, result


@attrs.define
class SharedStore(RecordingStore):
    """Records single writes as units of one too: every write the nodes make."""

    def commit_one(self, operation: Operation) -> "Deferred[Any]":
        self.units.append(UnitOfWork.of(operation))
        return super().commit_one(operation)


@attrs.define
class Cluster:
    """Node A and node B on one store; L{relay} tells B what was committed since last time."""

    store: SharedStore
    a: Services
    b: Services
    relayed: int = 0

    def relay(self, to: Services | None = None, local: bool = False) -> None:
        feed = to or self.b
        assert isinstance(feed.changes, LocalChangeFeed)
        units, self.relayed = self.store.units[self.relayed:], len(self.store.units)
        for unit in units:
            for op in unit.operations:
                for change in changes_of(op):
                    feed.changes.publish(attrs.evolve(change, local=local))


@pytest.fixture
def cluster(clock: Clock) -> Cluster:
    store = SharedStore()
    a = result(build_services(store, clock, FAST_HASHER))
    b = result(build_services(store, clock, FAST_HASHER))
    return Cluster(store, a, b)


def _device(c: Cluster, token: str = "tok-1") -> str:
    created = result(c.a.registry.create_device("d1", access_token=token))
    c.relay()
    return created.device.id


def test_the_local_feed_is_a_change_feed() -> None:
    """The feed of a store only one process uses provides the change feed interface."""
    verifyObject(IChangeFeed, LocalChangeFeed())


def test_a_device_created_on_a_is_known_on_b(cluster: Cluster) -> None:
    """A device and token created through A authenticate on B once B hears the change."""
    result(cluster.a.registry.create_device("d1", access_token="tok-1"))
    assert cluster.b.devices.authenticate_token("tok-1") is None
    cluster.relay()
    found = cluster.b.devices.authenticate_token("tok-1")
    assert found is not None and found.name == "d1"


def test_a_token_revoked_on_a_is_refused_on_b(cluster: Cluster) -> None:
    """A token replaced through A is refused on B, and the new one accepted, once B hears it."""
    device_id = _device(cluster)
    result(cluster.a.registry.set_access_token(device_id, "tok-2"))
    assert cluster.b.devices.authenticate_token("tok-1") is not None
    cluster.relay()
    assert cluster.b.devices.authenticate_token("tok-1") is None
    assert cluster.b.devices.authenticate_token("tok-2") is not None


def test_a_device_deleted_or_disabled_on_a_is_refused_on_b(cluster: Cluster) -> None:
    """Disabling, then deleting, a device through A refuses its token on B."""
    device_id = _device(cluster)
    result(cluster.a.registry.update_device(device_id, enabled=False))
    cluster.relay()
    assert cluster.b.devices.authenticate_token("tok-1") is None
    result(cluster.a.registry.delete_device(device_id))
    cluster.relay()
    assert cluster.b.credentials.device(device_id) is None


def test_a_profile_change_reaches_b_s_power_settings(cluster: Cluster) -> None:
    """A profile switched to PSM through A is what B's scheduler applies to its devices."""
    result(cluster.a.registry.create_profile(Profile("sleepy")))
    created = result(cluster.a.registry.create_device("d1", profile="sleepy"))
    cluster.relay()
    device_id = created.device.id
    assert cluster.b.scheduler.reachability(device_id).mode is PowerMode.NONE
    result(cluster.a.registry.update_profile(Profile("sleepy", power_mode=PowerMode.PSM)))
    cluster.relay()
    assert cluster.b.scheduler.reachability(device_id).mode is PowerMode.PSM


def test_resync_reads_everything_again(cluster: Cluster) -> None:
    """After a RESYNC, B holds what the store has even though it heard none of A's changes."""
    device_id = _device(cluster)
    result(cluster.a.registry.set_access_token(device_id, "tok-2"))
    cluster.relayed = len(cluster.store.units)  # lost
    assert isinstance(cluster.b.changes, LocalChangeFeed)
    cluster.b.changes.publish(Change(ChangeKind.RESYNC))
    assert cluster.b.devices.authenticate_token("tok-1") is None
    assert cluster.b.devices.authenticate_token("tok-2") is not None


def test_shared_attributes_set_and_deleted_on_a_reach_b_s_subscriber(cluster: Cluster) -> None:
    """B's subscriber hears A's shared-attribute write and deletion once, A's own not twice."""
    device_id = _device(cluster)
    on_a: list[Any] = []
    on_b: list[Any] = []
    cluster.a.devices.subscribe_attributes(device_id, on_a.append)
    cluster.b.devices.subscribe_attributes(device_id, on_b.append)
    for write in (
        lambda: cluster.a.attributes.set_attributes(device_id, AttributeScope.SHARED, {"led": 1}),
        lambda: cluster.a.attributes.delete_attributes(device_id, AttributeScope.SHARED, ["led"]),
    ):
        result(write())
        units = cluster.relayed
        cluster.relay()
        cluster.relayed = units
        cluster.relay(to=cluster.a, local=True)
    assert on_b == [{"led": 1}, {"deleted": ["led"]}]
    assert on_a == [{"led": 1}, {"deleted": ["led"]}]


@attrs.define
class Device:
    sent: list[Rpc] = attrs.field(factory=list)

    def deliver(self, rpc: Rpc) -> "Deferred[Delivery]":
        self.sent.append(rpc)
        return succeed("ack")


def test_an_rpc_sent_through_a_reaches_the_device_on_b_and_the_reply_returns(
    cluster: Cluster, clock: Clock
) -> None:
    """A two-way RPC queued on A goes out through B's subscription; B's reply ends A's wait."""
    device_id = _device(cluster)
    device = Device()
    cluster.b.devices.subscribe_rpc(device_id, device.deliver)
    clock.advance(0)
    rpc = result(cluster.a.rpc.enqueue(device_id, "setLed", {"on": True}))
    waiting = cluster.a.rpc.wait(device_id, rpc.id, 10)
    assert device.sent == []
    cluster.relay()
    assert [r.method for r in device.sent] == ["setLed"]
    result(cluster.b.devices.reply_rpc(device_id, rpc.id, {"led": "on"}))
    assert not waiting.called
    cluster.relay(to=cluster.a)
    done = result(waiting)
    assert (done.state, done.response) == (RpcState.SUCCESSFUL, {"led": "on"})
    assert cluster.a.rpc.pending(device_id) == 0


def test_rpc_ids_taken_by_another_node_are_skipped(cluster: Cluster) -> None:
    """Two nodes that start with the same next id still queue RPCs under distinct ids."""
    device_id = _device(cluster)
    first = result(cluster.a.rpc.enqueue(device_id, "one"))
    second = result(cluster.b.rpc.enqueue(device_id, "two"))
    assert second.id > first.id


def test_an_rpc_both_nodes_time_out_is_settled_once(cluster: Cluster, clock: Clock) -> None:
    """When both nodes expire one queued RPC, the one that loses holds the winner's outcome."""
    device_id = _device(cluster)
    rpc = result(cluster.a.rpc.enqueue(device_id, "later", expires_at=int(clock.seconds() * 1000)
                                       + 5000))
    cluster.relay()
    waiting = cluster.b.rpc.wait(device_id, rpc.id, 60)
    clock.advance(6)
    done = result(waiting)
    assert done.state is RpcState.EXPIRED
    assert cluster.a.rpc.pending(device_id) == cluster.b.rpc.pending(device_id) == 0


def test_following_another_nodes_change_is_logged(cluster: Cluster) -> None:
    """B logs each change it followed from A (what operators and the interop tests wait on)."""
    from twisted.logger import formatEvent, globalLogPublisher

    events: list[dict[str, Any]] = []
    globalLogPublisher.addObserver(events.append)
    try:
        device_id = _device(cluster)
    finally:
        globalLogPublisher.removeObserver(events.append)
    followed = [formatEvent(e) for e in events if "followed" in e.get("log_format", "")]
    assert f"followed the device change of {device_id!r} made on another node" in followed
    assert "followed the profile change of 'default' made on another node" in followed
