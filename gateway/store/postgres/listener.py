# -*- test-case-name: tests.store.test_postgres_changes -*-
"""
The thread that holds the store's LISTEN connection: the NOTIFY payloads
the operations send (L{gateway.store.changes}) become L{Change}s delivered
on the reactor thread.

A broken connection is made again after C{retry} seconds; the changes
committed meanwhile were not heard, so the first thing delivered after a
reconnection is a C{RESYNC}.
"""

from __future__ import annotations

import threading
from typing import Any, Callable, Optional

import psycopg
from psycopg import sql
from twisted.internet.defer import Deferred
from twisted.logger import Logger

from gateway.store.changes import Change, ChangeKind, decode

from .schema import CHANNEL_SQL

__all__ = ["Listener"]

log = Logger()

#: How long one wait for notifications lasts, so that a stop is seen soon.
_POLL = 0.25


class Listener(threading.Thread):
    """
    Delivers each change to C{deliver} on the reactor thread; C{own_session}
    names the backend pid of the store's writing session (its changes are
    C{local}).  L{listening} fires once the first LISTEN is in place.
    """

    def __init__(
        self,
        dsn: str,
        reactor: Any,
        deliver: Callable[[Change], None],
        own_session: Callable[[], Optional[int]],
        retry: float = 1.0,
    ) -> None:
        super().__init__(name="postgres-listen", daemon=True)
        self._dsn = dsn
        self._reactor = reactor
        self._deliver = deliver
        self._own_session = own_session
        self._retry = retry
        self._stopping = threading.Event()
        self.listening: Deferred[None] = Deferred()
        #: The backend pid of the listening session (C{None} until connected).
        self.session: Optional[int] = None

    def stop(self) -> None:
        """Leave within a poll interval (from any thread)."""
        self._stopping.set()

    def run(self) -> None:
        first = True
        while not self._stopping.is_set():
            try:
                with psycopg.connect(self._dsn, autocommit=True) as conn:
                    self.session = conn.info.backend_pid
                    row: Any = conn.execute(f"SELECT {CHANNEL_SQL}").fetchone()
                    conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(row[0])))
                    self._reactor.callFromThread(self._up, first)
                    first = False
                    while not self._stopping.is_set():
                        for notify in conn.notifies(timeout=_POLL):
                            self._heard(notify)
            except psycopg.Error as e:
                self._reactor.callFromThread(self._lost, str(e).splitlines()[0] if str(e) else "")
                self._stopping.wait(self._retry)

    def _heard(self, notify: psycopg.Notify) -> None:
        change = decode(notify.payload, notify.pid == self._own_session())
        if change is not None:
            self._reactor.callFromThread(self._deliver, change)

    def _up(self, first: bool) -> None:
        if first:
            self.listening.callback(None)
        else:
            log.info("listening for other nodes' changes again")
            self._deliver(Change(ChangeKind.RESYNC))

    def _lost(self, why: str) -> None:
        log.warn("the connection listening for other nodes' changes broke: {why}", why=why)
