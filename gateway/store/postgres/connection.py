# -*- test-case-name: tests.store.test_postgres -*-
"""
The thread that owns the PostgreSQL connection and runs group commits.

Jobs queued during one reactor tick arrive as one batch and run in one
transaction; results are delivered on the reactor thread after the commit.
Optimistically without savepoints (each costs two round trips per job):
when a job fails, the transaction is rolled back and the batch run again
with each job inside its own savepoint, so a failing job leaves nothing of
itself and does not undo the others, and batches stay careful until one
passes without a failure.  Jobs only touch the database (and the
partitions' record of the locks their session holds), so running one
twice changes nothing.  A connection that broke is opened
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
        #: Whether batches run with a savepoint per job (see L{_run_batch}).
        self._careful = False

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
        if not self._careful:
            results = self._run_optimistic(batch)
            if results is not None:
                return results
        results = self._run_careful(batch)
        self._careful = not all(ok for _, ok, _ in results)
        return results

    def _begin(self) -> Any:
        conn = self._connection()
        cur = conn.cursor()
        cur.execute("BEGIN")
        return cur

    def _run_optimistic(self, batch: list[Job]) -> Optional[Results]:
        """The batch's results, or C{None} (and nothing kept) when a job failed."""
        try:
            cur = self._begin()
        except BaseException:
            return _failed(batch, Failure())
        try:
            results: Results = [(d, True, fn(cur)) for fn, d in batch]
        except (psycopg.OperationalError, psycopg.InterfaceError):
            return self._broken(batch)
        except BaseException:
            try:
                cur.execute("ROLLBACK")
            except psycopg.Error:
                return self._broken(batch)
            return None
        return self._commit(cur, batch, results)

    def _run_careful(self, batch: list[Job]) -> Results:
        try:
            cur = self._begin()
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
        except BaseException:
            return self._broken(batch)
        return self._commit(cur, batch, results)

    def _commit(self, cur: Any, batch: list[Job], results: Results) -> Results:
        try:
            cur.execute("COMMIT")
        except BaseException:
            return self._broken(batch)
        self.transactions += 1
        return results

    def _broken(self, batch: list[Job]) -> Results:
        """The connection failed: nothing of the batch is known to be kept."""
        f = Failure()
        conn = self._conn
        if conn is not None:
            try:
                conn.execute("ROLLBACK")
            except psycopg.Error:
                conn.close()
        return _failed(batch, f)


def _failed(batch: list[Job], failure: Failure) -> Results:
    return [(d, False, failure) for _, d in batch]


def _deliver(results: Results) -> None:
    for d, ok, value in results:
        if ok:
            d.callback(value)
        else:
            d.errback(value)
