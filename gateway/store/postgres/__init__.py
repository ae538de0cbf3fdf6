"""
The PostgreSQL backend of L{IStore}, for several gateway nodes on one database.

 - psycopg 3, one connection owned by a dedicated thread (queries stay off
   the reactor thread);
 - its own schema migrations (L{MIGRATIONS}), the version kept in the
   C{gateway_schema} table, applied under an advisory lock so nodes that
   start together migrate once;
 - group commits as on SQLite: the calls of one reactor tick run in one
   transaction, each unit of work (and each read) in its own savepoint;
 - L{check_postgres}: before start-up, the server is reached and its
   schema is one this gateway knows, or one line says why not.
"""

from .check import check_postgres
from .schema import MIGRATIONS
from .store import PostgresStore, open_postgres_store

__all__ = ["MIGRATIONS", "PostgresStore", "check_postgres", "open_postgres_store"]
