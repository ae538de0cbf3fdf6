# -*- test-case-name: tests.store.test_backends -*-
"""Checking and opening the store that C{[storage] backend} names."""

from __future__ import annotations

import os
from typing import Any

from twisted.internet.defer import Deferred
from twisted.logger import Logger

from gateway.store.interfaces import IStore, StoreUnusable
from gateway.store.memory import MemoryStore
from gateway.store.sqlite import check_database, open_sqlite_store

__all__ = ["BACKENDS", "check_store", "open_store"]

log = Logger()

#: The values of C{[storage] backend}.
BACKENDS = ("sqlite", "memory")


def check_store(backend: str, path: str) -> None:
    """
    Make sure L{open_store} with the same arguments can open and write the
    store (synchronously, before start-up); L{StoreUnusable} says why not.
    """
    if backend == "sqlite":
        check_database(os.path.abspath(path))
    elif backend != "memory":
        raise StoreUnusable(f"unknown storage backend {backend!r} (known: {', '.join(BACKENDS)})")


def open_store(reactor: Any, backend: str, path: str) -> "Deferred[IStore]":
    """
    Open the store: C{"sqlite"} at C{path} (relative to the working
    directory; its directory is created), or C{"memory"}, which keeps
    nothing across a restart (C{path} is not used).

    @param reactor: provides L{IReactorTime} and L{IReactorFromThreads}.
    """
    async def run() -> IStore:
        if backend == "memory":
            log.warn(
                "storage backend {backend!r}: nothing is persisted, every device,"
                " credential and value is lost when the gateway stops",
                backend=backend,
            )
            return MemoryStore()
        if backend == "sqlite":
            absolute = os.path.abspath(path)
            os.makedirs(os.path.dirname(absolute), exist_ok=True)
            return await open_sqlite_store(reactor, absolute)
        raise ValueError(f"unknown storage backend {backend!r} (known: {', '.join(BACKENDS)})")

    return Deferred.fromCoroutine(run())
