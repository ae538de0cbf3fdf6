# -*- test-case-name: tests.store.test_sqlite_files -*-
"""
The database file on disk: owner-only, and checked before the gateway
starts.

 - L{private_database}: the database, and its C{-wal} and C{-shm} if they
   exist, readable by the owner only (the file holds PSK keys).  SQLite
   gives the C{-wal} and C{-shm} files it creates the database's mode, so
   they follow whatever the umask.
 - L{check_database}: everything the store needs, tried for real (root
   ignores permission bits, so asking C{os.access} would not tell): the
   directory takes new files (SQLite creates C{-wal} and C{-shm} there),
   the file is an SQLite database of a schema version this gateway knows,
   and a write transaction goes through.  L{StoreUnusable} otherwise.
"""

from __future__ import annotations

import os
import sqlite3
import stat
import tempfile

from gateway.store.interfaces import StoreUnusable

from .schema import SchemaTooNew, schema_version

__all__ = ["private_database", "check_database"]

_HINTS = {
    "SQLITE_NOTADB": "move it away (a new one is made) or restore it from a backup",
    "SQLITE_CORRUPT": "move it away (a new one is made) or restore it from a backup",
    "SQLITE_READONLY": "make it writable by the gateway's user",
    "SQLITE_BUSY": "another process holds it locked; stop it",
}


def private_database(path: str) -> None:
    """
    Create the database file at C{path} (empty, mode 0600) if it is missing;
    take group and other permissions off it and its C{-wal} and C{-shm}.
    """
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    for name in (path, path + "-wal", path + "-shm"):
        try:
            mode = stat.S_IMODE(os.stat(name).st_mode)
        except FileNotFoundError:
            continue
        if mode & 0o077:
            os.chmod(name, mode & 0o700)


def check_database(path: str) -> None:
    """
    Make sure the store can open and write the database at C{path} (an
    absolute path), creating it and its directory if they are missing.
    """
    directory = os.path.dirname(path)
    try:
        os.makedirs(directory, mode=0o700, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=directory, prefix=".write-check-")
    except OSError as e:
        raise StoreUnusable(
            f"the directory {directory} of the database takes no new files ({e.strerror}):"
            " make it writable by the gateway's user"
        ) from None
    os.close(fd)
    os.unlink(probe)
    try:
        private_database(path)
    except OSError as e:
        raise StoreUnusable(
            f"cannot open the database {path} ({e.strerror}): make it readable and"
            " writable by the gateway's user"
        ) from None
    try:
        _try_write(path)
    except SchemaTooNew as e:
        raise StoreUnusable(f"{path}: {e}; run a newer gateway on it") from None
    except sqlite3.Error as e:
        hint = _HINTS.get(getattr(e, "sqlite_errorname", ""), "check the file and its disk")
        raise StoreUnusable(f"cannot use the database {path} ({e}): {hint}") from None


def _try_write(path: str) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        # Writing the version it has is a real write, undone below.
        conn.execute(f"PRAGMA user_version={schema_version(conn)}")
        conn.execute("ROLLBACK")
    finally:
        conn.close()
