"""The thread that owns the SQLite connection and runs group commits."""

from __future__ import annotations

import queue
import sqlite3
import threading
from typing import TYPE_CHECKING, Any, Callable, Optional

from twisted.internet.defer import Deferred
from twisted.python.failure import Failure

from gateway.domain.errors import Conflict

from .transaction import Transaction

if TYPE_CHECKING:
    from .store import SQLiteStore

#: One unit of work (or one read) and the Deferred of its result.
Job = tuple[Callable[[Transaction], Any], "Deferred[Any]"]


class Writer(threading.Thread):
    """The thread that owns the connection and runs the batches."""

    def __init__(self, path: str, reactor: Any, store: "SQLiteStore", synchronous: str) -> None:
        super().__init__(name=f"sqlite-writer:{path}", daemon=True)
        self.path = path
        self.synchronous = synchronous
        self.reactor = reactor
        self.store = store
        self.queue: "queue.Queue[Optional[list[Job]]]" = queue.Queue()
        #: Whether batches run with a savepoint per job (see L{_run_batch}).
        self._careful = False

    def run(self) -> None:
        conn: Optional[sqlite3.Connection] = None
        error: Optional[BaseException] = None
        try:
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=True)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(f"PRAGMA synchronous={self.synchronous}")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute("PRAGMA busy_timeout=5000")
        except BaseException as e:
            error = e
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
            if conn is None:
                assert error is not None
                self.reactor.callFromThread(_deliver, _failed(batch, Failure(error)))
            else:
                self.reactor.callFromThread(_deliver, self._run_batch(conn, batch))
        if conn is not None:
            conn.close()
        self.reactor.callFromThread(self.store._closed_in_thread)

    def _run_batch(
        self, conn: sqlite3.Connection, batch: list[Job]
    ) -> list[tuple["Deferred[Any]", bool, Any]]:
        # Optimistic: the whole batch in one transaction, no savepoint per job.
        # When a job fails, the transaction is rolled back and the batch redone
        # with a savepoint around each job, and batches stay careful until one
        # passes without a failure (a full outbox fails job after job).  Jobs
        # only touch the database, so running one twice changes nothing.
        if not self._careful:
            results = self._run_optimistic(conn, batch)
            if results is not None:
                return results
        results = self._run_careful(conn, batch)
        self._careful = not all(ok for _, ok, _ in results)
        return results

    def _run_optimistic(
        self, conn: sqlite3.Connection, batch: list[Job]
    ) -> Optional[list[tuple["Deferred[Any]", bool, Any]]]:
        """The batch's results, or C{None} (and nothing kept) when a job failed."""
        try:
            conn.execute("BEGIN IMMEDIATE")
        except BaseException:
            return _failed(batch, Failure())
        results: list[tuple[Deferred[Any], bool, Any]] = []
        tx = Transaction(conn, self.store.outbox_limit)
        try:
            for fn, d in batch:
                results.append((d, True, fn(tx)))
            tx.flush()
        except BaseException:
            conn.execute("ROLLBACK")
            return None
        return self._commit(conn, batch, results)

    def _run_careful(
        self, conn: sqlite3.Connection, batch: list[Job]
    ) -> list[tuple["Deferred[Any]", bool, Any]]:
        results: list[tuple[Deferred[Any], bool, Any]] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
        except BaseException:
            return _failed(batch, Failure())
        tx = Transaction(conn, self.store.outbox_limit)
        for fn, d in batch:
            # A failing job leaves nothing of itself, and the others stay.
            conn.execute("SAVEPOINT job")
            try:
                value = fn(tx)
                tx.flush()
            except sqlite3.IntegrityError as e:
                tx.discard()
                conn.execute("ROLLBACK TO job")
                conn.execute("RELEASE job")
                results.append((d, False, Failure(Conflict(str(e)))))
            except BaseException:
                f = Failure()
                tx.discard()
                conn.execute("ROLLBACK TO job")
                conn.execute("RELEASE job")
                results.append((d, False, f))
            else:
                conn.execute("RELEASE job")
                results.append((d, True, value))
        return self._commit(conn, batch, results)

    def _commit(
        self,
        conn: sqlite3.Connection,
        batch: list[Job],
        results: list[tuple["Deferred[Any]", bool, Any]],
    ) -> list[tuple["Deferred[Any]", bool, Any]]:
        try:
            conn.execute("COMMIT")
        except BaseException:
            f = Failure()
            try:
                conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass
            return _failed(batch, f)
        self.store.transactions += 1
        return results


def _failed(batch: list[Job], failure: Failure) -> list[tuple["Deferred[Any]", bool, Any]]:
    return [(d, False, failure) for _, d in batch]


def _deliver(results: list[tuple["Deferred[Any]", bool, Any]]) -> None:
    for d, ok, value in results:
        if ok:
            d.callback(value)
        else:
            d.errback(value)
