"""
The embedded SQLite backend of L{IStore}.

 - stdlib C{sqlite3}, WAL journal, C{synchronous=FULL} (durability
   C{power-loss}, the default) or C{NORMAL} (C{process-crash}),
   C{foreign_keys=ON};
 - schema migrations: L{MIGRATIONS} is applied in order, the schema version
   being C{PRAGMA user_version};
 - the database and its C{-wal} and C{-shm} are owner-only (mode 0600);
   L{check_database} tries, before start-up, everything the store needs;
 - one dedicated thread owns the connection.  Calls made on the reactor
   thread are collected during one reactor tick and handed to the thread as
   one batch, which runs in one transaction (group commit): each unit of
   work (and each read) inside its own savepoint, so a failing unit leaves
   nothing of itself behind and does not undo the other units.
   Batches queued while the thread is busy are merged into the next
   transaction.  Results are delivered on the reactor thread with
   C{callFromThread}, after the commit.  Reads run on the same thread, in
   order with the writes.

Values are serialised to JSON text on the calling thread, when the
operations are built (L{gateway.store.unit}), so callers may mutate what
they passed as soon as the call returns.
"""

from .files import check_database
from .schema import MIGRATIONS
from .store import SYNCHRONOUS, SQLiteStore, open_sqlite_store

__all__ = ["SQLiteStore", "open_sqlite_store", "check_database", "MIGRATIONS", "SYNCHRONOUS"]
