"""
Tests for L{gateway.store.sqlite.files}: the database is owner-only whatever
the umask, and what would keep the store from working is found before it
opens, as one line naming the file.
"""

from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted

from gateway.store.backends import check_store
from gateway.store.interfaces import StoreUnusable
from gateway.store.sqlite import MIGRATIONS, check_database, open_sqlite_store
from gateway.store.sqlite.files import private_database


def _reactor() -> Any:
    from twisted.internet import reactor

    return reactor


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest_twisted.ensureDeferred
async def test_database_wal_and_shm_are_owner_only(tmp_path: Path) -> None:
    """Under a umask of 0 the database and the -wal and -shm SQLite makes next to it are 0600."""
    path = tmp_path / "gateway.db"
    old = os.umask(0)
    try:
        store = await open_sqlite_store(_reactor(), str(path))
    finally:
        os.umask(old)
    try:
        await store.list_profiles()
        files = {p.name: mode(p) for p in tmp_path.iterdir()}
    finally:
        await store.close()
    assert files == {"gateway.db": 0o600, "gateway.db-wal": 0o600, "gateway.db-shm": 0o600}


def test_existing_files_lose_group_and_other_permissions(tmp_path: Path) -> None:
    """A world-readable database (and its -wal) is made owner-only; a read-only one stays so."""
    path = tmp_path / "gateway.db"
    for name, before in (("gateway.db", 0o644), ("gateway.db-wal", 0o666)):
        (tmp_path / name).write_bytes(b"")
        os.chmod(tmp_path / name, before)
    private_database(str(path))
    assert (mode(path), mode(tmp_path / "gateway.db-wal")) == (0o600, 0o600)
    os.chmod(path, 0o444)
    private_database(str(path))
    assert mode(path) == 0o400


def test_check_creates_a_missing_database(tmp_path: Path) -> None:
    """A missing database (and its directory) is created owner-only, leaving no probe behind."""
    path = tmp_path / "new" / "gateway.db"
    check_database(str(path))
    assert [p.name for p in path.parent.iterdir()] == ["gateway.db"]
    assert mode(path) == 0o600


def test_a_file_that_is_no_database_is_refused(tmp_path: Path) -> None:
    """A corrupt database is one line: the file, SQLite's reason and what to do."""
    path = tmp_path / "gateway.db"
    path.write_bytes(b"this is not an SQLite database, not at all" * 10)
    with pytest.raises(StoreUnusable) as raised:
        check_database(str(path))
    assert str(raised.value) == (
        f"cannot use the database {path} (file is not a database):"
        " move it away (a new one is made) or restore it from a backup"
    )


def test_a_newer_schema_is_refused(tmp_path: Path) -> None:
    """A database of a newer gateway is refused before start-up, naming both versions."""
    path = tmp_path / "gateway.db"
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version={len(MIGRATIONS) + 1}")
    conn.close()
    with pytest.raises(StoreUnusable) as raised:
        check_database(str(path))
    assert str(raised.value) == (
        f"{path}: database schema version {len(MIGRATIONS) + 1} is newer than this gateway"
        f" ({len(MIGRATIONS)}); run a newer gateway on it"
    )


def test_a_directory_in_the_way_is_refused(tmp_path: Path) -> None:
    """A directory where the database should be is one line naming it."""
    (tmp_path / "gateway.db").mkdir()
    with pytest.raises(StoreUnusable, match=f"^cannot open the database {tmp_path}/gateway.db "):
        check_database(str(tmp_path / "gateway.db"))


def test_check_store_by_backend(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """sqlite is checked at its absolute path, memory needs nothing, an unknown backend fails."""
    monkeypatch.chdir(tmp_path)
    check_store("memory", "nowhere/gateway.db")
    assert not (tmp_path / "nowhere").exists()
    check_store("sqlite", "var/gateway.db")
    assert (tmp_path / "var" / "gateway.db").is_file()
    with pytest.raises(StoreUnusable, match="unknown storage backend 'nope'"):
        check_store("nope", "x")
