"""
The PostgreSQL change feed: what one node commits is heard by every node
sharing the database (its own marked local), only once committed, and a
feed whose connection broke says so with a RESYNC once it listens again.
"""

from __future__ import annotations

from typing import Any, AsyncIterator, Callable

import psycopg
import pytest_twisted
from twisted.internet.defer import Deferred
from zope.interface.verify import verifyObject

from gateway.domain.errors import NotFound
from gateway.domain.model import AttributeScope, Credential, CredentialKind, Device, Profile
from gateway.store.changes import Change, ChangeKind
from gateway.store.interfaces import IChangeFeed, IHeardLog, INodeTable
from gateway.store.postgres import PostgresStore, open_postgres_store
from gateway.store.unit import DeleteAttributes, PutCredential, SetAttributes, UnitOfWork


def _reactor() -> Any:
    from twisted.internet import reactor

    return reactor


class Heard:
    """The changes a feed delivered, and a wait for the next that matches."""

    def __init__(self, feed: IChangeFeed) -> None:
        self.changes: list[Change] = []
        self._waiting: list[tuple[Callable[[Change], bool], Deferred[Change]]] = []
        feed.subscribe(self._heard)

    def _heard(self, change: Change) -> None:
        for entry in list(self._waiting):
            if entry[0](change):
                self._waiting.remove(entry)
                entry[1].callback(change)
                return
        self.changes.append(change)

    def next(self, match: Callable[[Change], bool], seconds: float = 10.0) -> "Deferred[Change]":
        for change in self.changes:
            if match(change):
                self.changes.remove(change)
                d: Deferred[Change] = Deferred()
                d.callback(change)
                return d
        d = Deferred()
        self._waiting.append((match, d))
        return d.addTimeout(seconds, _reactor())


@pytest_twisted.async_yield_fixture
async def nodes(postgres_dsn: str) -> AsyncIterator[tuple[PostgresStore, PostgresStore]]:
    a = await open_postgres_store(_reactor(), postgres_dsn)
    b = await open_postgres_store(_reactor(), postgres_dsn)
    await a.put_profile(Profile("default"))
    yield a, b
    await a.close()
    await b.close()


def test_the_store_is_a_change_feed() -> None:
    """The PostgreSQL store provides the change feed interface."""
    store = PostgresStore(_reactor(), "host=/nonexistent")
    try:
        verifyObject(IChangeFeed, store)
    finally:
        store.close()


@pytest_twisted.ensureDeferred
async def test_a_credential_change_is_heard_by_both_nodes(
    nodes: tuple[PostgresStore, PostgresStore],
) -> None:
    """A token set through node A is heard on B as another node's change and on A as its own."""
    a, b = nodes
    on_a, on_b = Heard(a), Heard(b)
    await a.create_device(Device("d1", "one"))
    await a.commit(UnitOfWork.of(PutCredential(Credential("d1", CredentialKind.ACCESS_TOKEN, "x"))))
    theirs = await on_b.next(lambda c: c.kind is ChangeKind.DEVICE and c.key == "d1")
    mine = await on_a.next(lambda c: c.kind is ChangeKind.DEVICE and c.key == "d1")
    assert (theirs.local, mine.local) == (False, True)


@pytest_twisted.ensureDeferred
async def test_a_failed_unit_is_not_heard(nodes: tuple[PostgresStore, PostgresStore]) -> None:
    """A unit that fails notifies nothing of its operations that had run before the failure."""
    a, b = nodes
    on_b = Heard(b)
    await a.create_device(Device("d1", "one"))
    failing = UnitOfWork.of(
        SetAttributes("d1", AttributeScope.SHARED, {"k": 1}, 5),
        SetAttributes("gone", AttributeScope.SHARED, {"k": 1}, 6),
    )
    try:
        await a.commit(failing)
    except NotFound:
        pass
    await a.set_attributes("d1", AttributeScope.SHARED, {"k": 2}, 7)
    heard = await on_b.next(lambda c: c.kind is ChangeKind.SHARED)
    assert (heard.key, heard.ts) == ("d1", 7)


@pytest_twisted.ensureDeferred
async def test_shared_deletions_and_rpcs_name_what_changed(
    nodes: tuple[PostgresStore, PostgresStore],
) -> None:
    """Deleted shared attributes are heard with their keys; client attributes are not heard."""
    a, b = nodes
    on_b = Heard(b)
    await a.create_device(Device("d1", "one"))
    await a.set_attributes("d1", AttributeScope.CLIENT, {"c": 1}, 5)
    await a.set_attributes("d1", AttributeScope.SHARED, {"s": 1, "t": 2}, 6)
    await a.commit(UnitOfWork.of(DeleteAttributes("d1", AttributeScope.SHARED, ["s", "t"])))
    gone = await on_b.next(lambda c: c.kind is ChangeKind.UNSHARED)
    assert gone.keys == ("s", "t")
    kinds = [c.kind for c in on_b.changes if c.key == "d1"]
    assert kinds == [ChangeKind.DEVICE, ChangeKind.SHARED]


@pytest_twisted.ensureDeferred
async def test_a_broken_feed_resyncs(
    nodes: tuple[PostgresStore, PostgresStore], postgres_dsn: str
) -> None:
    """When B's listening session is killed, B hears RESYNC once it listens again, then changes."""
    a, b = nodes
    on_b = Heard(b)
    with psycopg.connect(postgres_dsn, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (b.listening_session,))
    await on_b.next(lambda c: c.kind is ChangeKind.RESYNC)
    await a.create_device(Device("d2", "two"))
    await on_b.next(lambda c: c.kind is ChangeKind.DEVICE and c.key == "d2")


@pytest_twisted.ensureDeferred
async def test_heartbeats_name_each_node_with_its_partitions(
    nodes: tuple[PostgresStore, PostgresStore],
) -> None:
    """Each node's heartbeat is one row, replaced by its next, with the partitions it owns."""
    a, b = nodes
    await a.peek(10)  # takes every partition: A is the only member so far
    await a.heartbeat("node-a", 1, 10)
    await b.heartbeat("node-b", 2, 20)
    await a.heartbeat("node-a", 1, 30)
    rows = await b.nodes()
    assert [(r.node_id, r.started, r.heartbeat) for r in rows] == [
        ("node-a", 1, 30), ("node-b", 2, 20)
    ]
    assert rows[0].partitions == tuple(range(64)) and rows[1].partitions == ()
    verifyObject(INodeTable, a)


@pytest_twisted.ensureDeferred
async def test_heard_times_keep_the_latest_and_are_heard_by_the_others(
    nodes: tuple[PostgresStore, PostgresStore],
) -> None:
    """A recorded time replaces only an older one, an unknown device is left out, and the
    other node hears each device's time."""
    a, b = nodes
    verifyObject(IHeardLog, a)
    on_b = Heard(b)
    await a.create_device(Device("d1", "one"))
    await a.record_heard({"d1": 50, "gone": 7})
    await b.record_heard({"d1": 40})
    assert await b.last_heard() == {"d1": 50}
    heard = await on_b.next(lambda c: c.kind is ChangeKind.HEARD)
    assert (heard.key, heard.ts, heard.local) == ("d1", 50, False)
