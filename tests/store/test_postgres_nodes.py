"""
Two gateway nodes' stores on one PostgreSQL database share the outbox:
each device's events go out through one node at a time, in order, and a
node that goes away leaves its partitions to the other.
"""

from __future__ import annotations

from typing import Any, AsyncIterator

import psycopg
import pytest_twisted

from gateway.store.postgres import PostgresStore, open_postgres_store
from gateway.store.unit import AppendEvent, OutboxEvent, UnitOfWork
from tests.pgcluster import Cluster


def _reactor() -> Any:
    from twisted.internet import reactor

    return reactor


@pytest_twisted.async_yield_fixture
async def nodes(postgres_dsn: str) -> AsyncIterator[tuple[PostgresStore, PostgresStore]]:
    a = await open_postgres_store(_reactor(), postgres_dsn)
    b = await open_postgres_store(_reactor(), postgres_dsn)
    yield a, b
    await a.close()
    await b.close()


async def _fill(store: PostgresStore, devices: int, each: int) -> None:
    await store.commit(
        UnitOfWork(
            tuple(
                AppendEvent(f"dev-{d}", f"e-{d}-{n}", "t", n, n, "{}")
                for n in range(1, each + 1)
                for d in range(devices)
            )
        )
    )


def _in_order(events: list[OutboxEvent]) -> bool:
    last: dict[str, int] = {}
    for e in events:
        if e.sequence != last.get(e.device_id, 0) + 1:
            return False
        last[e.device_id] = e.sequence
    return True


@pytest_twisted.ensureDeferred
async def test_two_nodes_drain_the_outbox_between_them(
    nodes: tuple[PostgresStore, PostgresStore],
) -> None:
    """Two nodes draining one outbox deliver every event once, each device's in order, both busy."""
    a, b = nodes
    await _fill(a, devices=40, each=5)
    delivered: list[OutboxEvent] = []
    by_node: dict[str, int] = {"a": 0, "b": 0}
    for _ in range(100):
        for name, node in (("a", a), ("b", b)):
            events = await node.peek(7)
            delivered.extend(events)
            by_node[name] += len(events)
            await node.acknowledge([e.position for e in events])
        if await a.size() == 0:
            break
    assert sorted(e.event_id for e in delivered) == sorted(
        f"e-{d}-{n}" for d in range(40) for n in range(1, 6)
    )
    assert _in_order(delivered)
    assert by_node["a"] > 0 and by_node["b"] > 0


@pytest_twisted.ensureDeferred
async def test_events_in_flight_stay_with_their_node(
    nodes: tuple[PostgresStore, PostgresStore],
) -> None:
    """An event peeked and not yet acknowledged by one node is never handed to the other."""
    a, b = nodes
    await _fill(a, devices=40, each=3)
    first = await a.peek(10)
    assert await b.peek(200) == []  # a owns every partition until it gives some back
    more = await a.peek(200)
    others = await b.peek(200)
    assert others
    held_by_a = {e.device_id for e in first + more}
    assert not held_by_a & {e.device_id for e in others}


@pytest_twisted.ensureDeferred
async def test_a_dead_nodes_partitions_are_taken_over(postgres_dsn: str) -> None:
    """A node whose session ends leaves the other every unacknowledged event, in order."""
    a = await open_postgres_store(_reactor(), postgres_dsn)
    b = await open_postgres_store(_reactor(), postgres_dsn)
    try:
        await _fill(a, devices=10, each=4)
        in_flight = await a.peek(100)
        await a.acknowledge([e.position for e in in_flight[:5]])
        assert await b.peek(100) == []
        await a.close()  # its session ends, and with it its locks
        taken = await b.peek(100)
        assert taken == in_flight[5:]
        assert _in_order(in_flight[:5] + taken)
    finally:
        await b.close()


@pytest_twisted.ensureDeferred
async def test_gateways_in_other_schemas_share_nothing(
    nodes: tuple[PostgresStore, PostgresStore], postgres_cluster: Cluster
) -> None:
    """A gateway in another schema of the database is not a node of this one: it takes nothing."""
    a, _ = nodes
    with psycopg.connect(postgres_cluster.dsn, autocommit=True) as conn:
        conn.execute("CREATE SCHEMA IF NOT EXISTS elsewhere")
    other = await open_postgres_store(
        _reactor(), f"{postgres_cluster.dsn} options=-csearch_path=elsewhere"
    )
    try:
        await other.peek(1)
        await _fill(a, devices=40, each=1)
        assert len(await a.peek(100)) == 40
    finally:
        await other.close()
        with psycopg.connect(postgres_cluster.dsn, autocommit=True) as conn:
            conn.execute("DROP SCHEMA elsewhere CASCADE")
