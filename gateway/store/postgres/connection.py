# -*- test-case-name: tests.store.test_postgres -*-
"""
The thread that owns the PostgreSQL connection and runs group commits.

Jobs queued during one reactor tick arrive as one batch and run in one
transaction, each inside its own savepoint, so a failing job leaves
nothing of itself and does not undo the others; results are delivered on
the reactor thread after the commit.  A connection that broke is opened
again for the next batch (the server restarted, a failover).
"""

from __future__ import annotations

import queue
import threading
from typing import Any, Callable, Optional

import psycopg
from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

from gateway.domain.errors import Conflict

from .schema import Cursor

__all__ = ["Connection", "Job"]

#: One unit of work (or one read) and the Deferred of its result.
Job = tuple[Callable[[Cursor], Any], "Deferred[Any]"]
Results = list[tuple["Deferred[Any]", bool, Any]]


class Connection(threading.Thread):
    """
    Runs the batches put on L{queue} (C{None} stops it), then calls
    C{closed} on the reactor thread.
    """

    def __init__(self, dsn: str, reactor: Any, closed: Callable[[], None]) -> None:
        super().__init__(name="postgres-store", daemon=True)
        self.dsn = dsn
        self.reactor = reactor
        self._closed = closed
        self.queue: "queue.Queue[Optional[list[Job]]]" = queue.Queue()
        self._conn: Optional[psycopg.Connection[Any]] = None
        #: Transactions committed so far (for tests and metrics).
        self.transactions = 0
        #: The backend pid of the open session (its NOTIFYs are this node's).
        self.session: Optional[int] = None

    def run(self) -> None:
        stopping = False
        while not stopping:
            batch = self.queue.get()
            if batch is None:
                break
            while True:
                try:
                    more = self.queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stopping = True
                    break
                batch.extend(more)
            self.reactor.callFromThread(_deliver, self._run_batch(batch))
        if self._conn is not None:
            self._conn.close()
        self.reactor.callFromThread(self._closed)

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(self.dsn, autocommit=True)
            self.session = self._conn.info.backend_pid
        return self._conn

    def _run_batch(self, batch: list[Job]) -> Results:
        try:
            conn = self._connection()
            cur = conn.cursor()
            cur.execute("BEGIN")
        except BaseException:
            return _failed(batch, Failure())
        results: Results = []
        try:
            for fn, d in batch:
                cur.execute("SAVEPOINT job")
                try:
                    value = fn(cur)
                except psycopg.errors.IntegrityError as e:
                    cur.execute("ROLLBACK TO SAVEPOINT job")
                    results.append((d, False, Failure(Conflict(str(e).splitlines()[0]))))
                except (psycopg.OperationalError, psycopg.InterfaceError):
                    raise
                except BaseException:
                    f = Failure()
                    cur.execute("ROLLBACK TO SAVEPOINT job")
                    results.append((d, False, f))
                else:
                    cur.execute("RELEASE SAVEPOINT job")
                    results.append((d, True, value))
            cur.execute("COMMIT")
        except BaseException:
            # The connection failed: nothing of the batch is known to be kept.
            f = Failure()
            try:
                conn.execute("ROLLBACK")
            except psycopg.Error:
                conn.close()
            return _failed(batch, f)
        self.transactions += 1
        return results


def _failed(batch: list[Job], failure: Failure) -> Results:
    return [(d, False, failure) for _, d in batch]


def _deliver(results: Results) -> None:
    for d, ok, value in results:
        if ok:
            d.callback(value)
        else:
            d.errback(value)
