"""
Opening the store that [storage] names, and what [storage] accepts.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from twisted.logger import LogLevel, capturedLogs
from zope.interface.verify import verifyObject

from gateway.config import ConfigError, load_config
from gateway.store.backends import BACKENDS, open_store
from gateway.store.interfaces import IStore
from gateway.store.memory import MemoryStore
from gateway.store.sqlite import SQLiteStore


def _reactor() -> Any:
    from twisted.internet import reactor

    return reactor


@pytest_twisted.ensureDeferred
async def test_memory_backend_warns_and_writes_nothing(tmp_path: Path) -> None:
    """The memory backend opens a memory store, writes no file and warns that nothing persists."""
    path = tmp_path / "gateway.db"
    with capturedLogs() as events:
        store = await open_store(_reactor(), "memory", str(path))
    try:
        assert isinstance(store, MemoryStore) and verifyObject(IStore, store)
        warnings = [e for e in events if e["log_level"] == LogLevel.warn]
        assert len(warnings) == 1 and "nothing is persisted" in warnings[0]["log_format"]
        assert list(tmp_path.iterdir()) == []
    finally:
        await store.close()


@pytest_twisted.ensureDeferred
async def test_sqlite_relative_path_from_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A relative database path starts at the working directory, is created, and logs absolute."""
    monkeypatch.chdir(tmp_path)
    with capturedLogs() as events:
        store = await open_store(_reactor(), "sqlite", os.path.join("state", "my.db"))
    await store.close()
    assert isinstance(store, SQLiteStore)
    assert (tmp_path / "state" / "my.db").is_file()
    paths = [e["path"] for e in events if "path" in e]
    assert paths == [str(tmp_path / "state" / "my.db")]


@pytest_twisted.ensureDeferred
async def test_unknown_backend_refused() -> None:
    """open_store refuses a backend it does not know, naming the known ones."""
    with pytest.raises(ValueError, match="known: sqlite, memory"):
        await open_store(_reactor(), "mysql", "x.db")


def test_config_takes_every_backend() -> None:
    """[storage] backend accepts each backend the store can open."""
    for backend in BACKENDS:
        config = load_config(None, {"GATEWAY_STORAGE_BACKEND": backend})
        assert config.storage.backend == backend


def test_config_refuses_other_backends(tmp_path: Path) -> None:
    """Any other backend is a one-line ConfigError at load naming the valid ones."""
    toml = tmp_path / "gateway.toml"
    toml.write_text('[storage]\nbackend = "postgres"\n')
    with pytest.raises(ConfigError) as raised:
        load_config(str(toml), {})
    message = str(raised.value)
    assert message.startswith("storage.backend: ")
    assert "'sqlite'" in message and "'memory'" in message and "\n" not in message


def test_config_database_path() -> None:
    """An empty path means <data_dir>/gateway.db; any other path is used as given."""
    default = load_config(None, {"GATEWAY_STORAGE_DATA_DIR": "/srv/gw"})
    assert default.storage.database_path == Path("/srv/gw/gateway.db")
    given = load_config(None, {"GATEWAY_STORAGE_PATH": "db/other.db"})
    assert given.storage.database_path == Path("db/other.db")


@pytest_twisted.ensureDeferred
async def test_durability_and_outbox_limit_reach_the_backend(tmp_path: Path) -> None:
    """[storage] durability picks SQLite's synchronous mode; the outbox limit reaches both."""
    store = await open_store(
        _reactor(), "sqlite", str(tmp_path / "g.db"), "process-crash", outbox_limit=7
    )
    try:
        assert isinstance(store, SQLiteStore) and store.outbox_limit == 7
        sync = await store._submit(lambda c: c.execute("PRAGMA synchronous").fetchone()[0])
        assert sync == 1  # NORMAL
    finally:
        await store.close()
    memory = await open_store(_reactor(), "memory", "", outbox_limit=3)
    assert isinstance(memory, MemoryStore) and memory.outbox_limit == 3
