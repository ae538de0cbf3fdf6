"""
The forwarder against a real HTTP server (twisted.web on a loopback port
chosen by the OS), through treq over a persistent connection pool.
"""

from __future__ import annotations

import json
import random
from typing import Any, AsyncIterator

import pytest
import pytest_twisted
from twisted.internet.defer import Deferred
from twisted.internet.task import deferLater
from twisted.web.server import Site

from gateway.upstream.forwarder import BATCH_CONTENT_TYPE, Forwarder, ForwarderSettings
from gateway.upstream.http import http_client

from .test_forwarder import A, B, Sink, _store


def _reactor() -> Any:
    from twisted.internet import reactor

    return reactor


@pytest_twisted.async_yield_fixture
async def server() -> AsyncIterator[tuple[Sink, str]]:
    sink = Sink((503, {"Retry-After": "0"}, b"warming up"))
    port = _reactor().listenTCP(0, Site(sink), interface="127.0.0.1")
    yield sink, f"http://127.0.0.1:{port.getHost().port}/events"
    await port.stopListening()


async def _until(condition: Any) -> None:
    for _ in range(500):
        if condition():
            return
        await deferLater(_reactor(), 0.01, lambda: None)
    raise AssertionError("timed out")


@pytest.mark.parametrize("mode", ["binary", "batch"])
@pytest_twisted.ensureDeferred
async def test_delivers_to_a_real_server(server: tuple[Sink, str], mode: str) -> None:
    """Every held event reaches a real server, after a 503, in order, counted by id."""
    sink, url = server
    store = _store((A, 1), (B, 2), (A, 3))
    ids = [e.event_id for e in await store.peek(10)]
    client, pool = http_client(_reactor())
    forwarder = Forwarder(
        store, client, _reactor(),
        ForwarderSettings(url=url, mode=mode, flush_interval=0.0, retry_initial=0.01),
        random.random,
    )
    forwarder.startService()
    try:
        await _until(lambda: forwarder.status.delivered == 3)
    finally:
        await forwarder.stopService()
        await pool.closeCachedConnections()
    assert await store.size() == 0
    bodies = [(h, body) for h, body in sink.requests[1:]]
    if mode == "batch":
        [(headers, body)] = bodies
        assert headers["content-type"] == BATCH_CONTENT_TYPE
        assert [e["id"] for e in json.loads(body)] == ids
    else:
        assert [h["ce-id"] for h, _ in bodies] == ids
    assert forwarder.status.retried >= 1 and forwarder.status.connected


@pytest_twisted.ensureDeferred
async def test_refused_connection_is_reported_and_retried() -> None:
    """With nothing listening the forwarder reports the error and keeps the events."""
    port = _reactor().listenTCP(0, Site(Sink()), interface="127.0.0.1")
    url = f"http://127.0.0.1:{port.getHost().port}/events"
    await port.stopListening()
    store = _store((A, 1))
    client, pool = http_client(_reactor())
    forwarder = Forwarder(
        store, client, _reactor(), ForwarderSettings(url=url, retry_initial=0.01, retry_max=0.02),
        random.random,
    )
    forwarder.startService()
    try:
        await _until(lambda: forwarder.status.retried >= 2)
    finally:
        stopped: Deferred[None] = forwarder.stopService()
        await stopped
        await pool.closeCachedConnections()
    assert "ConnectionRefused" in (forwarder.status.last_error or "")
    assert not forwarder.status.connected
    assert await store.size() == 1
