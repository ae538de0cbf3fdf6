"""
What the PostgreSQL backend does beyond the shared contract: opening it by
[storage], its migrations, group commits, and one-line start-up errors.
"""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
import pytest_twisted
from twisted.internet.defer import gatherResults
from zope.interface.verify import verifyObject

from gateway.config import load_config
from gateway.domain.errors import Conflict
from gateway.domain.model import Device, Profile
from gateway.store.backends import check_store, open_store
from gateway.store.interfaces import ICommandQueue, IOutbox, IStore, StoreUnusable
from gateway.store.postgres import MIGRATIONS, PostgresStore
from gateway.store.unit import AppendEvent, CreateDevice, UnitOfWork


def _reactor() -> Any:
    from twisted.internet import reactor

    return reactor


@pytest_twisted.ensureDeferred
async def test_backend_opens_by_dsn_and_keeps_data(postgres_dsn: str) -> None:
    """[storage] backend postgresql opens the DSN's database; a second open finds the data."""
    check_store("postgresql", postgres_dsn)
    store = await open_store(_reactor(), "postgresql", postgres_dsn, outbox_limit=5)
    assert isinstance(store, PostgresStore) and store.outbox_limit == 5
    assert verifyObject(IStore, store) and verifyObject(IOutbox, store)
    assert verifyObject(ICommandQueue, store)
    await store.put_profile(Profile("default"))
    await store.create_device(Device("d1", "one"))
    await store.close()
    again = await open_store(_reactor(), "postgresql", postgres_dsn)
    try:
        assert [d.id for d in await again.list_devices()] == ["d1"]
        with psycopg.connect(postgres_dsn) as conn:
            row = conn.execute("SELECT version FROM gateway_schema").fetchall()
        assert row == [(len(MIGRATIONS),)]
    finally:
        await again.close()


@pytest_twisted.ensureDeferred
async def test_units_of_one_tick_share_one_transaction(postgres_dsn: str) -> None:
    """Writes made during one reactor tick are committed in one transaction."""
    store = await open_store(_reactor(), "postgresql", postgres_dsn)
    assert isinstance(store, PostgresStore)
    try:
        before = store.transactions
        sequences = await gatherResults(
            [store.commit_one(AppendEvent("d", f"e{n}", "t", n, n, "{}")) for n in range(20)]
        )
        assert sequences == list(range(1, 21))
        assert store.transactions == before + 1
    finally:
        await store.close()


@pytest_twisted.ensureDeferred
async def test_a_failing_unit_fails_alone_and_the_batch_still_commits(postgres_dsn: str) -> None:
    """Around a failing unit the batch's others commit in one transaction, and so does the next."""
    store = await open_store(_reactor(), "postgresql", postgres_dsn)
    assert isinstance(store, PostgresStore)
    try:
        await store.put_profile(Profile("default"))
        await store.create_device(Device("pg-a", "pg-a"))
        before = store.transactions
        first = store.commit_one(AppendEvent("pg-a", "f1", "t", 1, 1, "{}"))
        clash = store.commit(
            UnitOfWork.of(AppendEvent("pg-a", "f2", "t", 2, 2, "{}"),
                          CreateDevice(Device("pg-b", "pg-a")))
        )
        second = store.commit_one(AppendEvent("pg-a", "f3", "t", 3, 3, "{}"))
        assert await first == 1
        with pytest.raises(Conflict):
            await clash
        assert await second == 2
        assert store.transactions == before + 1
        assert await store.commit_one(AppendEvent("pg-a", "f4", "t", 4, 4, "{}")) == 3
        assert store.transactions == before + 2
        assert [e.sequence for e in await store.query("pg-a")] == [1, 2, 3]
    finally:
        await store.close()


@pytest_twisted.ensureDeferred
async def test_reads_do_not_wait_behind_the_writer(postgres_dsn: str) -> None:
    """A read runs on the pool while the writer is busy, and sees what was committed."""
    store = await open_store(_reactor(), "postgresql", postgres_dsn)
    assert isinstance(store, PostgresStore)
    try:
        await store.put_profile(Profile("default"))
        await store.create_device(Device("pg-r", "pg-r"))
        order: list[str] = []
        busy = store._submit(lambda cur: cur.execute("SELECT pg_sleep(2)"))
        busy.addCallback(lambda _: order.append("write"))
        read = store.get_device("pg-r")
        read.addCallback(lambda found: order.append(f"read {found.id}"))
        await gatherResults([busy, read])
        assert order == ["read pg-r", "write"]
    finally:
        await store.close()


def test_unreachable_server_is_one_line(tmp_path: Any) -> None:
    """A server that cannot be reached is a one-line StoreUnusable naming storage.dsn."""
    with pytest.raises(StoreUnusable) as raised:
        check_store("postgresql", f"host={tmp_path} dbname=gateway")
    message = str(raised.value)
    assert "storage.dsn" in message and "\n" not in message


def test_newer_schema_is_refused(postgres_dsn: str) -> None:
    """A database written by a newer gateway is refused before start-up, in one line."""
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE gateway_schema (version INTEGER NOT NULL)")
        conn.execute("INSERT INTO gateway_schema VALUES (%s)", (len(MIGRATIONS) + 1,))
    with pytest.raises(StoreUnusable, match="newer than this gateway") as raised:
        check_store("postgresql", postgres_dsn)
    assert "\n" not in str(raised.value)


def test_config_reads_the_dsn() -> None:
    """GATEWAY_STORAGE_DSN sets [storage] dsn, which is the store's location on PostgreSQL."""
    config = load_config(
        None, {"GATEWAY_STORAGE_BACKEND": "postgresql", "GATEWAY_STORAGE_DSN": "dbname=gw"}
    )
    assert config.storage.dsn == "dbname=gw" and config.storage.location == "dbname=gw"
    sqlite = load_config(None, {"GATEWAY_STORAGE_DATA_DIR": "/srv/gw"})
    assert sqlite.storage.location == "/srv/gw/gateway.db"
