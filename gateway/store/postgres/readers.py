# -*- test-case-name: tests.store.test_postgres -*-
"""
L{Readers}: a pool of connections for the store's reads, so that an API
listing or a device lookup does not wait behind the writer's group commits
(the writer's connection, L{gateway.store.postgres.connection}, keeps the
writes, and the outbox reads that go with its session's partition locks).

Each of up to C{size} threads holds its own autocommit connection, opened
on first use and again after it broke; a read sees what was committed
before it started, as another node would.
"""

from __future__ import annotations

import threading
from typing import Any, Callable, Optional, TypeVar

import psycopg
from twisted.internet.defer import Deferred
from twisted.internet.threads import deferToThreadPool
from twisted.python.threadpool import ThreadPool

from .schema import Cursor

__all__ = ["Readers"]

T = TypeVar("T")


class Readers:
    def __init__(self, reactor: Any, dsn: str, size: int = 4) -> None:
        self._reactor = reactor
        self._dsn = dsn
        self._pool = ThreadPool(minthreads=0, maxthreads=size, name="postgres-read")
        self._local = threading.local()
        self._lock = threading.Lock()
        self._opened: list[psycopg.Connection[Any]] = []
        self._pool.start()

    def run(self, fn: Callable[[Cursor], T]) -> "Deferred[T]":
        """C{fn(cursor)} on one of the pool's connections, off the reactor thread."""
        return deferToThreadPool(self._reactor, self._pool, self._call, fn)

    def _call(self, fn: Callable[[Cursor], T]) -> T:
        conn: Optional[psycopg.Connection[Any]] = getattr(self._local, "conn", None)
        if conn is None or conn.closed:
            conn = psycopg.connect(self._dsn, autocommit=True)
            self._local.conn = conn
            with self._lock:
                self._opened.append(conn)
        try:
            with conn.cursor() as cur:
                return fn(cur)
        except (psycopg.OperationalError, psycopg.InterfaceError):
            conn.close()  # opened again by the next read of this thread
            raise

    def stop(self) -> None:
        """Wait for the reads running, then close every connection."""
        self._pool.stop()
        with self._lock:
            opened, self._opened = self._opened, []
        for conn in opened:
            conn.close()
