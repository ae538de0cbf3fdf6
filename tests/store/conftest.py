"""
Fixtures: the same contract runs against every L{IStore} backend.
"""

from __future__ import annotations

from pathlib import Path
from typing import AsyncIterator

import pytest
import pytest_twisted

from gateway.domain.model import Profile
from gateway.store.interfaces import IStore
from gateway.store.memory import MemoryStore
from gateway.store.sqlite import open_sqlite_store


@pytest_twisted.async_yield_fixture(params=["memory", "sqlite"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[IStore]:
    from twisted.internet import reactor

    if request.param == "memory":
        s: IStore = MemoryStore()
    else:
        s = await open_sqlite_store(reactor, str(tmp_path / "gateway.db"))
    await s.put_profile(Profile("default"))
    yield s
    await s.close()
