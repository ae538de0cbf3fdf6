# -*- test-case-name: tests.store.test_backends -*-
"""Checking and opening the store that C{[storage] backend} names."""

from __future__ import annotations

import os
from typing import Any, Optional

from twisted.internet.defer import Deferred
from twisted.logger import Logger

from gateway.store.interfaces import IStore, StoreUnusable
from gateway.store.memory import MemoryStore
from gateway.store.postgres import check_postgres, open_postgres_store
from gateway.store.sqlite import SYNCHRONOUS, check_database, open_sqlite_store

__all__ = ["BACKENDS", "DURABILITIES", "check_store", "open_store"]

log = Logger()

#: The values of C{[storage] backend}.
BACKENDS = ("sqlite", "memory", "postgresql")

#: The values of C{[storage] durability}.
DURABILITIES = tuple(SYNCHRONOUS)

def check_store(backend: str, path: str) -> None:
    """
    Make sure L{open_store} with the same arguments can open and write the
    store (synchronously, before start-up); L{StoreUnusable} says why not.
    """
    if backend == "sqlite":
        check_database(os.path.abspath(path))
    elif backend == "postgresql":
        check_postgres(path)
    elif backend != "memory":
        raise StoreUnusable(f"unknown storage backend {backend!r} (known: {', '.join(BACKENDS)})")


def open_store(
    reactor: Any,
    backend: str,
    path: str,
    durability: str = "power-loss",
    outbox_limit: Optional[int] = None,
) -> "Deferred[IStore]":
    """
    Open the store: C{"sqlite"} at C{path} (relative to the working
    directory; its directory is created), C{"postgresql"} at the DSN
    C{path} (the server's own settings make commits durable), or
    C{"memory"}, which keeps nothing across a restart (C{path} and
    C{durability} are not used).

    @param reactor: provides L{IReactorTime} and L{IReactorFromThreads}.
    @param outbox_limit: see L{gateway.store.interfaces.IOutbox.outbox_limit}.
    """
    async def run() -> IStore:
        if backend == "memory":
            log.warn(
                "storage backend {backend!r}: nothing is persisted, every device,"
                " credential and value is lost when the gateway stops",
                backend=backend,
            )
            return MemoryStore(outbox_limit=outbox_limit)
        if backend == "sqlite":
            absolute = os.path.abspath(path)
            os.makedirs(os.path.dirname(absolute), exist_ok=True)
            return await open_sqlite_store(reactor, absolute, durability, outbox_limit)
        if backend == "postgresql":
            return await open_postgres_store(reactor, path, outbox_limit)
        raise ValueError(f"unknown storage backend {backend!r} (known: {', '.join(BACKENDS)})")

    return Deferred.fromCoroutine(run())
