"""
Fixtures: the same contract runs against every L{IStore} backend.
"""

from __future__ import annotations

from pathlib import Path
from typing import AsyncIterator, Optional

import pytest
import pytest_twisted

from gateway.domain.model import Profile
from gateway.store.interfaces import IStore
from gateway.store.memory import MemoryStore
from gateway.store.postgres import open_postgres_store
from gateway.store.sqlite import open_sqlite_store

#: Every backend the contract runs against.
BACKENDS = ["memory", "sqlite", "postgresql"]


async def open_backend(
    request: pytest.FixtureRequest, tmp_path: Path, outbox_limit: Optional[int] = None
) -> IStore:
    """A new, empty store of the backend C{request.param} names."""
    from twisted.internet import reactor

    if request.param == "memory":
        return MemoryStore(outbox_limit=outbox_limit)
    if request.param == "sqlite":
        return await open_sqlite_store(
            reactor, str(tmp_path / "gateway.db"), outbox_limit=outbox_limit
        )
    # Only PostgreSQL runs start the server.
    dsn = request.getfixturevalue("postgres_dsn")
    return await open_postgres_store(reactor, dsn, outbox_limit=outbox_limit)


@pytest_twisted.async_yield_fixture(params=BACKENDS)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[IStore]:
    s = await open_backend(request, tmp_path)
    await s.put_profile(Profile("default"))
    yield s
    await s.close()
