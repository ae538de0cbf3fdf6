"""
SQLite-specific behaviour: pragmas, migrations, group commit, restart.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest
import pytest_twisted
from twisted.internet.defer import gatherResults

from gateway.domain.errors import Conflict, NotFound, Unavailable
from gateway.domain.model import (
    Attribute,
    AttributeScope,
    Claim,
    Credential,
    CredentialKind,
    Device,
    PowerMode,
    Profile,
    TelemetryPoint,
)
from gateway.store.sqlite import MIGRATIONS, SQLiteStore, open_sqlite_store
from gateway.store.unit import AppendEvent, CreateDevice, SetAttributes, UnitOfWork


def _reactor():  # type: ignore[no-untyped-def]
    from twisted.internet import reactor

    return reactor


@pytest_twisted.ensureDeferred
async def test_schema_and_pragmas(tmp_path: Path) -> None:
    """A new database is migrated to the latest version and uses WAL."""
    path = str(tmp_path / "g.db")
    store = await open_sqlite_store(_reactor(), path)
    await store.close()
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        conn.close()


@pytest_twisted.ensureDeferred
async def test_foreign_keys_enforced(tmp_path: Path) -> None:
    """The writer connection enforces foreign keys."""
    store = await open_sqlite_store(_reactor(), str(tmp_path / "g.db"), "process-crash")
    try:
        fk = await store._submit(
            lambda c: c.execute("PRAGMA foreign_keys").fetchone()[0]
        )
        sync = await store._submit(
            lambda c: c.execute("PRAGMA synchronous").fetchone()[0]
        )
        assert fk == 1
        assert sync == 1  # NORMAL
    finally:
        await store.close()


@pytest_twisted.ensureDeferred
async def test_profiles_of_version_1_read_json_leniently(tmp_path: Path) -> None:
    """A profile stored before strict_json existed comes back with strict_json off."""
    path = str(tmp_path / "g.db")
    conn = sqlite3.connect(path)
    conn.executescript(MIGRATIONS[0])
    conn.execute(
        "INSERT INTO profiles (name, payload_format, power_mode, provisioning)"
        " VALUES ('old', 'json', 'none', 'disabled')"
    )
    conn.execute("PRAGMA user_version=1")
    conn.commit()
    conn.close()
    store = await open_sqlite_store(_reactor(), path)
    try:
        profile = await store.get_profile("old")
    finally:
        await store.close()
    assert profile is not None and profile.strict_json is False


@pytest_twisted.ensureDeferred
async def test_power_loss_durability_syncs_every_commit(tmp_path: Path) -> None:
    """By default (durability power-loss) every commit is synced: synchronous=FULL."""
    store = await open_sqlite_store(_reactor(), str(tmp_path / "g.db"))
    try:
        sync = await store._submit(lambda c: c.execute("PRAGMA synchronous").fetchone()[0])
        assert sync == 2  # FULL
    finally:
        await store.close()


@pytest_twisted.ensureDeferred
async def test_outbox_survives_reopening(tmp_path: Path) -> None:
    """Held events, their count and each device's sequence are kept across a restart."""
    path = str(tmp_path / "g.db")
    store = await open_sqlite_store(_reactor(), path)
    await store.commit_one(AppendEvent("d", "e1", "t", 1, 1, "{}"))
    await store.commit_one(AppendEvent("d", "e2", "t", 2, 2, "{}"))
    await store.close()
    store = await open_sqlite_store(_reactor(), path)
    try:
        assert await store.size() == 2
        assert await store.commit_one(AppendEvent("d", "e3", "t", 3, 3, "{}")) == 3
    finally:
        await store.close()


@pytest_twisted.ensureDeferred
async def test_newer_schema_refused(tmp_path: Path) -> None:
    """A database from a newer gateway version is refused at open."""
    path = str(tmp_path / "g.db")
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version={len(MIGRATIONS) + 1}")
    conn.close()
    with pytest.raises(RuntimeError):
        await open_sqlite_store(_reactor(), path)


@pytest_twisted.ensureDeferred
async def test_group_commit(tmp_path: Path) -> None:
    """Writes queued within one reactor tick are committed in one transaction."""
    store = await open_sqlite_store(_reactor(), str(tmp_path / "g.db"))
    try:
        await store.put_profile(Profile("default"))
        await store.create_device(Device("d1", "one"))
        before = store.transactions
        await gatherResults(
            [
                store.set_attributes("d1", AttributeScope.CLIENT, {f"k{i}": i}, i)
                for i in range(50)
            ]
        )
        assert store.transactions == before + 1
        assert len(await store.get_attributes("d1", AttributeScope.CLIENT)) == 50
    finally:
        await store.close()


@pytest_twisted.ensureDeferred
async def test_failure_in_batch_isolated(tmp_path: Path) -> None:
    """A failing write in a batch fails alone; the others in the batch commit."""
    store = await open_sqlite_store(_reactor(), str(tmp_path / "g.db"))
    try:
        await store.put_profile(Profile("default"))
        a = store.create_device(Device("d1", "one"))
        b = store.create_device(Device("d2", "one"))  # same name: conflict
        c = store.create_device(Device("d3", "three"))
        bad = store.set_attributes("zz", AttributeScope.SHARED, {"a": 1}, 1)
        await a
        with pytest.raises(Conflict):
            await b
        await c
        with pytest.raises(NotFound):
            await bad
        assert [d.id for d in await store.list_devices()] == ["d1", "d3"]
    finally:
        await store.close()


@pytest_twisted.ensureDeferred
async def test_failed_unit_leaves_no_gap_in_a_batch(tmp_path: Path) -> None:
    """Around a unit that fails, a batch's events keep sequences 1, 2 and the outbox counts two."""
    store = await open_sqlite_store(_reactor(), str(tmp_path / "g.db"))
    try:
        await store.put_profile(Profile("default"))
        await store.create_device(Device("d1", "one"))
        before = store.transactions
        first = store.commit_one(AppendEvent("d1", "e1", "t", 1, 1, "{}"))
        clash = store.commit(
            UnitOfWork.of(
                AppendEvent("d1", "e2", "t", 2, 2, "{}"), CreateDevice(Device("d2", "one"))
            )
        )
        second = store.commit_one(AppendEvent("d1", "e3", "t", 3, 3, "{}"))
        assert await first == 1
        with pytest.raises(Conflict):
            await clash
        assert await second == 2
        assert store.transactions == before + 1
        assert await store.size() == 2
        # The next batch, clean, is committed as well.
        assert await store.commit_one(AppendEvent("d1", "e4", "t", 4, 4, "{}")) == 3
        assert [e.sequence for e in await store.peek(10)] == [1, 2, 3]
    finally:
        await store.close()


@pytest_twisted.ensureDeferred
async def test_outbox_reads_in_a_batch_see_its_pending_events(tmp_path: Path) -> None:
    """A peek queued between appends of one batch sees the earlier ones; sequences run on."""
    store = await open_sqlite_store(_reactor(), str(tmp_path / "g.db"))
    try:
        before = store.transactions
        first = [store.commit_one(AppendEvent("d", f"e{i}", "t", i, i, "{}")) for i in (1, 2)]
        peeked = store.peek(10)
        later = store.commit_one(AppendEvent("d", "e3", "t", 3, 3, "{}"))
        size = store.size()
        assert [await d for d in first] == [1, 2]
        assert [e.event_id for e in await peeked] == ["e1", "e2"]
        assert await later == 3
        assert await size == 3
        assert store.transactions == before + 1
    finally:
        await store.close()


@pytest_twisted.ensureDeferred
async def test_outbox_limit_holds_within_a_batch(tmp_path: Path) -> None:
    """Appends of one batch stop at the limit, and an acknowledgement in it makes room again."""
    store = await open_sqlite_store(_reactor(), str(tmp_path / "g.db"), outbox_limit=2)
    try:
        appends = [store.commit_one(AppendEvent("d", f"e{i}", "t", i, i, "{}")) for i in (1, 2, 3)]
        assert await appends[0] == 1 and await appends[1] == 2
        with pytest.raises(Unavailable):
            await appends[2]
        full = store.commit_one(AppendEvent("d", "e4", "t", 4, 4, "{}"))
        freed = store.acknowledge([1])
        room = store.commit_one(AppendEvent("d", "e5", "t", 5, 5, "{}"))
        with pytest.raises(Unavailable):
            await full
        assert await freed == 1
        assert await room == 3
        assert [e.event_id for e in await store.peek(10)] == ["e2", "e5"]
    finally:
        await store.close()


@pytest_twisted.ensureDeferred
async def test_units_of_one_tick_share_a_transaction(tmp_path: Path) -> None:
    """Units committed within one tick are one transaction, each unit all or nothing in it."""
    store = await open_sqlite_store(_reactor(), str(tmp_path / "g.db"))
    try:
        await store.put_profile(Profile("default"))
        before = store.transactions
        a = store.commit(
            UnitOfWork.of(
                CreateDevice(Device("d1", "one")),
                SetAttributes("d1", AttributeScope.CLIENT, {"a": 1}, 1),
            )
        )
        clash = store.commit(
            UnitOfWork.of(CreateDevice(Device("d2", "two")), CreateDevice(Device("d3", "one")))
        )
        c = store.commit(UnitOfWork.of(CreateDevice(Device("d4", "four"))))
        await a
        with pytest.raises(Conflict):
            await clash
        await c
        assert store.transactions == before + 1
        assert [d.id for d in await store.list_devices()] == ["d4", "d1"]
    finally:
        await store.close()


@pytest_twisted.ensureDeferred
async def test_work_happens_off_the_reactor_thread(tmp_path: Path) -> None:
    """Operations run on the writer thread and results arrive on the reactor thread."""
    store = await open_sqlite_store(_reactor(), str(tmp_path / "g.db"))
    try:
        main = threading.get_ident()
        worker = await store._submit(lambda c: threading.get_ident())
        assert worker != main
        assert threading.get_ident() == main
    finally:
        await store.close()


@pytest_twisted.ensureDeferred
async def test_closed_store_refuses_calls(tmp_path: Path) -> None:
    """After close, calls fail instead of hanging, and close may be repeated."""
    store = await open_sqlite_store(_reactor(), str(tmp_path / "g.db"))
    pending = store.put_profile(Profile("default"))
    await store.close()
    await pending  # queued before close: still written
    await store.close()
    with pytest.raises(RuntimeError):
        await store.list_profiles()


@pytest_twisted.ensureDeferred
async def test_restart_keeps_everything(tmp_path: Path) -> None:
    """Devices, credentials, attributes, telemetry, profiles and claims survive a reopen."""
    path = str(tmp_path / "g.db")
    profile = Profile("psm", power_mode=PowerMode.PSM, psm_activity_timer=10000)
    device = Device("d1", "one", application="app", profile="psm", created=12.5)
    creds = [
        Credential("d1", CredentialKind.ACCESS_TOKEN, "digest"),
        Credential("d1", CredentialKind.PSK, "ident", b"\x01\x02"),
        Credential("d1", CredentialKind.X509, "ab" * 32, b"-----BEGIN"),
        Credential("d1", CredentialKind.BASIC, "user", b"scrypt$..."),
    ]
    big = 123456789012345678901234567890

    store: SQLiteStore = await open_sqlite_store(_reactor(), path)
    await store.put_profile(Profile("default"))
    await store.put_profile(profile)
    await store.create_device(device)
    for c in creds:
        await store.put_credential(c)
    await store.set_attributes("d1", AttributeScope.SHARED, {"n": {"x": [big]}}, 7)
    await store.append_telemetry("d1", [(9, {"t": 21.5})])
    await store.put_claim(Claim("d1", "sec", 99, 9))
    await store.close()

    store = await open_sqlite_store(_reactor(), path)
    try:
        assert await store.get_device("d1") == device
        assert await store.get_profile("psm") == profile
        assert sorted(await store.load_all_credentials(), key=lambda c: c.kind.value) == sorted(
            creds, key=lambda c: c.kind.value
        )
        assert await store.get_attributes("d1", AttributeScope.SHARED) == [
            Attribute(AttributeScope.SHARED, "n", {"x": [big]}, 7)
        ]
        assert await store.get_latest_telemetry("d1") == [TelemetryPoint("t", 21.5, 9)]
        assert await store.get_claim("d1") == Claim("d1", "sec", 99, 9)
    finally:
        await store.close()
