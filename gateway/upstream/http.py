"""The HTTP client the forwarder posts with: treq over a persistent connection pool."""

from __future__ import annotations

from typing import Any

from treq.client import HTTPClient
from twisted.web.client import Agent, HTTPConnectionPool

__all__ = ["http_client"]


def http_client(reactor: Any) -> tuple[HTTPClient, HTTPConnectionPool]:
    """
    A treq client keeping its connections open between requests, and its
    pool (close it with C{closeCachedConnections} when done).
    """
    pool = HTTPConnectionPool(reactor, persistent=True)
    # One upstream: two connections are plenty for one request at a time.
    pool.maxPersistentPerHost = 2
    return HTTPClient(Agent(reactor, pool=pool)), pool
