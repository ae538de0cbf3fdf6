# -*- test-case-name: tests.store.test_postgres -*-
"""Whether the database C{[storage] dsn} names can hold the store, asked before start-up."""

from __future__ import annotations

import psycopg

from gateway.store.interfaces import StoreUnusable

from .schema import SchemaTooNew, schema_version

__all__ = ["check_postgres"]


def check_postgres(dsn: str) -> None:
    """
    Connect to C{dsn} and read its schema version, inside a transaction that
    is rolled back; L{StoreUnusable}, in one line, if that fails.
    """
    try:
        with psycopg.connect(dsn, connect_timeout=10) as conn:
            schema_version(conn.cursor())
            conn.rollback()
    except SchemaTooNew as e:
        raise StoreUnusable(f"PostgreSQL: {e}; run a newer gateway on it") from None
    except psycopg.Error as e:
        reason = " ".join(str(e).split()) or type(e).__name__
        raise StoreUnusable(
            f"cannot use the PostgreSQL database ({reason}): check storage.dsn"
            " (or GATEWAY_STORAGE_DSN, libpq's PG* variables) and that the server runs"
        ) from None
