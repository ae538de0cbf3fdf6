"""
The forwarder drains the outbox to an HTTP upstream: both modes, retries on
a Clock, dead letters, order, shutdown.  The upstream is a twisted.web
resource behind C{treq.testing.StubTreq}, or a client that fails on purpose.
"""

from __future__ import annotations

import json
from typing import Any

from treq.testing import StubTreq
from twisted.internet.defer import Deferred, fail
from twisted.internet.error import ConnectionRefusedError
from twisted.internet.task import Clock
from twisted.web.resource import Resource
from twisted.web.server import Request

from gateway.domain.model import Device
from gateway.store.memory import MemoryStore
from gateway.store.unit import AppendTelemetry
from gateway.upstream.events import EventFactory, structured
from gateway.upstream.forwarder import (
    BATCH_CONTENT_TYPE,
    Forwarder,
    ForwarderSettings,
    retry_after,
)
from tests.service.conftest import result

URL = "http://upstream.invalid/events"
A = Device("dev-a", "a")
B = Device("dev-b", "b")


class Sink(Resource):
    """Records each POST; answers with the next of C{answers} (then 200)."""

    isLeaf = True

    def __init__(self, *answers: tuple[int, dict[str, str], bytes]) -> None:
        super().__init__()
        self.answers = list(answers)
        self.requests: list[tuple[dict[str, str], bytes]] = []

    def render_POST(self, request: Request) -> bytes:
        raw = request.requestHeaders.getAllRawHeaders()
        headers = {k.decode().lower(): v[0].decode() for k, v in raw}
        self.requests.append((headers, request.content.read()))
        status, extra, body = self.answers.pop(0) if self.answers else (200, {}, b"")
        request.setResponseCode(status)
        for k, v in extra.items():
            request.setHeader(k, v)
        return body


def _store(*devices_and_values: tuple[Device, int]) -> MemoryStore:
    store = MemoryStore()
    factory = EventFactory("gw")
    for device, value in devices_and_values:
        write = AppendTelemetry(device.id, [(value, {"v": value})])
        result(store.commit_one(factory.telemetry(device, "tb", value, write, value)))
    return store


def _forwarder(
    store: MemoryStore, client: Any, clock: Clock, **settings: Any
) -> Forwarder:
    values: dict[str, Any] = {"url": URL, "flush_interval": 0.0, "retry_initial": 1.0,
                              "retry_max": 10.0, "timeout": 5.0, **settings}
    return Forwarder(store, client, clock, ForwarderSettings(**values), random=lambda: 0.5)


def test_batch_mode_posts_the_stored_events_as_one_array() -> None:
    """In batch mode the held events go as one cloudevents-batch array, then leave the outbox."""
    clock, sink = Clock(), Sink()
    store = _store((A, 1), (B, 2), (A, 3))
    expected = [json.loads(structured(e)) for e in result(store.peek(10))]
    _forwarder(store, StubTreq(sink), clock, mode="batch").startService()
    [(headers, body)] = sink.requests
    assert headers["content-type"] == BATCH_CONTENT_TYPE
    assert json.loads(body) == expected
    assert result(store.size()) == 0


def test_binary_mode_posts_each_event_with_ce_headers() -> None:
    """In binary mode each event is one request: ce-* headers and its data as the body."""
    clock, sink = Clock(), Sink()
    store = _store((A, 1), (B, 2))
    held = result(store.peek(10))
    forwarder = _forwarder(store, StubTreq(sink), clock, mode="binary")
    forwarder.startService()
    assert len(sink.requests) == 2
    headers, body = sink.requests[0]
    ce = {k: v for k, v in headers.items() if k.startswith("ce-")}
    assert ce == {
        "ce-specversion": "1.0",
        "ce-id": held[0].event_id,
        "ce-source": "/coap-gateway/gw/devices/dev-a",
        "ce-type": "io.coap-gateway.telemetry.v1",
        "ce-subject": "a",
        # The SDK's binding writes microseconds.
        "ce-time": "1970-01-01T00:00:00.001000Z",
        "ce-application": "default",
        "ce-device": "a",
        "ce-deviceid": "dev-a",
        "ce-dialect": "tb",
        "ce-sequence": "1",
    }
    assert headers["content-type"] == "application/json"
    assert json.loads(body) == [{"ts": 1, "values": {"v": 1}}]
    assert sink.requests[1][0]["ce-deviceid"] == "dev-b"
    assert forwarder.status.delivered == 2 and forwarder.status.connected


def test_retry_after_is_honoured() -> None:
    """A 503 with Retry-After 7 is sent again exactly 7 seconds later."""
    clock = Clock()
    sink = Sink((503, {"Retry-After": "7"}, b"busy"))
    store = _store((A, 1))
    forwarder = _forwarder(store, StubTreq(sink), clock)
    forwarder.startService()
    assert len(sink.requests) == 1
    assert forwarder.status.backoff == 7 and forwarder.status.last_error == "HTTP 503: busy"
    assert not forwarder.status.connected
    clock.advance(6.9)
    assert len(sink.requests) == 1
    clock.advance(0.1)
    assert len(sink.requests) == 2
    assert result(store.size()) == 0
    assert (forwarder.status.retried, forwarder.status.failed, forwarder.status.delivered) == (
        1, 1, 1
    )


def test_backoff_grows_exponentially_with_jitter_up_to_the_maximum() -> None:
    """Without Retry-After the waits are jittered between retry_initial and a doubling ceiling."""
    clock = Clock()
    sink = Sink(*[(500, {}, b"")] * 6)
    store = _store((A, 1))
    forwarder = _forwarder(store, StubTreq(sink), clock)
    forwarder.startService()
    waits = []
    for _ in range(6):
        waits.append(forwarder.status.backoff)
        clock.advance(forwarder.status.backoff)
    # random() is 0.5: 1 + 0.5 * (min(10, 2**n) - 1)
    assert waits == [1.0, 1.5, 2.5, 4.5, 5.5, 5.5]
    assert len(sink.requests) == 7 and result(store.size()) == 0


def test_client_errors_go_to_the_dead_letters_and_later_events_follow() -> None:
    """A 400 moves the event to the dead letters with status and body; the next one is sent."""
    clock = Clock()
    sink = Sink((400, {}, b"bad event"))
    store = _store((A, 1), (A, 2))
    forwarder = _forwarder(store, StubTreq(sink), clock, mode="binary")
    forwarder.startService()
    [dead] = result(store.dead_letters())
    assert (dead.event.sequence, dead.status, dead.reason) == (1, 400, "bad event")
    assert [h["ce-sequence"] for h, _ in sink.requests] == ["1", "2"]
    assert result(store.size()) == 0
    assert forwarder.status.dead == 1 and forwarder.status.delivered == 1


class Picky(Sink):
    """Refuses, with a 400, every batch that holds an event of value 3."""

    def render_POST(self, request: Request) -> bytes:
        body = request.content.read()
        self.requests.append(({}, body))
        if any(e["data"][0]["values"]["v"] == 3 for e in json.loads(body)):
            request.setResponseCode(400)
            return b"value 3 is refused"
        return b""


def test_a_refused_batch_is_halved_until_only_the_bad_event_is_dead() -> None:
    """A 400 on a batch sends its halves again, in order: only the refused event goes dead."""
    clock, sink = Clock(), Picky()
    store = _store(*((A, v) for v in range(1, 7)))
    forwarder = _forwarder(store, StubTreq(sink), clock, batch_size=6)
    forwarder.startService()
    [dead] = result(store.dead_letters())
    assert (dead.event.sequence, dead.status, dead.reason) == (3, 400, "value 3 is refused")
    delivered = [
        e["sequence"] for _, body in sink.requests
        if not any(e["data"][0]["values"]["v"] == 3 for e in json.loads(body))
        for e in json.loads(body)
    ]
    assert delivered == [1, 2, 4, 5, 6]
    assert result(store.size()) == 0
    assert forwarder.status.dead == 1 and forwarder.status.delivered == 5


class Refusing:
    """A client that cannot connect C{times} times, then posts to C{sink}."""

    def __init__(self, times: int, sink: Resource) -> None:
        self.times = times
        self.stub = StubTreq(sink)

    def post(self, url: str, **kw: Any) -> "Deferred[Any]":
        if self.times:
            self.times -= 1
            return fail(ConnectionRefusedError())
        return self.stub.post(url, **kw)  # type: ignore[no-any-return]


def test_outage_loses_nothing_and_keeps_order() -> None:
    """Events held through an outage all arrive once it ends, each device's in order."""
    clock, sink = Clock(), Sink()
    store = _store(*[(A if i % 2 else B, i) for i in range(10)])
    ids = [e.event_id for e in result(store.peek(100))]
    forwarder = _forwarder(store, Refusing(3, sink), clock, batch_size=4)
    forwarder.startService()
    assert sink.requests == [] and "ConnectionRefusedError" in (forwarder.status.last_error or "")
    clock.pump([10.0] * 5)
    received = [e for _, body in sink.requests for e in json.loads(body)]
    assert [e["id"] for e in received] == ids
    for device in ("dev-a", "dev-b"):
        sequences = [e["sequence"] for e in received if e["deviceid"] == device]
        assert sequences == sorted(sequences) == list(range(1, 6))


class Silent:
    """A client whose requests are never answered (until cancelled)."""

    def __init__(self) -> None:
        self.requests: list[Deferred[Any]] = []

    def post(self, url: str, **kw: Any) -> "Deferred[Any]":
        d: Deferred[Any] = Deferred()
        self.requests.append(d)
        return d


def test_timeout_is_retried() -> None:
    """A request not answered within the timeout is cancelled and sent again after a backoff."""
    clock, client = Clock(), Silent()
    forwarder = _forwarder(_store((A, 1)), client, clock)
    forwarder.startService()
    clock.advance(5.0)
    assert forwarder.status.last_error == "no answer within 5.0 s"
    clock.advance(forwarder.status.backoff)
    assert len(client.requests) == 2


def test_shutdown_waits_for_the_request_in_flight_then_keeps_the_rest() -> None:
    """Stopping lets the request in flight run for the grace period, and no event is lost."""
    clock, client = Clock(), Silent()
    store = _store((A, 1), (A, 2))
    forwarder = _forwarder(store, client, clock, grace=2.0)
    forwarder.startService()
    stopped = forwarder.stopService()
    clock.advance(1.9)
    assert not stopped.called
    clock.advance(0.1)
    assert stopped.called
    assert result(store.size()) == 2
    clock.advance(100)
    assert len(client.requests) == 1


def test_shutdown_while_idle_is_immediate() -> None:
    """A forwarder waiting for events stops at once and sends nothing more."""
    clock, sink = Clock(), Sink()
    store = MemoryStore()
    forwarder = _forwarder(store, StubTreq(sink), clock)
    forwarder.startService()
    assert result(forwarder.stopService()) is None
    _store_into(store)
    clock.advance(10)
    assert sink.requests == []


def _store_into(store: MemoryStore) -> None:
    write = AppendTelemetry(A.id, [(1, {"v": 1})])
    result(store.commit_one(EventFactory("gw").telemetry(A, "tb", 1, write, None)))


def test_new_events_are_found_by_polling() -> None:
    """Events appended while the outbox was empty are sent at the next poll."""
    clock, sink = Clock(), Sink()
    store = MemoryStore()
    _forwarder(store, StubTreq(sink), clock, poll_interval=0.5).startService()
    _store_into(store)
    assert sink.requests == []
    clock.advance(0.5)
    assert len(sink.requests) == 1


class _FailingOnce:
    """An outbox whose first C{peek} fails, as a store in trouble would."""

    def __init__(self, store: MemoryStore) -> None:
        self._store = store
        self.failed = False

    def peek(self, limit: int, after: int = 0) -> "Deferred[Any]":
        if not self.failed:
            self.failed = True
            return fail(OSError("disk I/O error"))
        return self._store.peek(limit, after)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


def test_a_failing_store_is_tried_again_and_nothing_is_lost() -> None:
    """An outbox that cannot be read is reported, and after retry_initial its events go."""
    clock, sink = Clock(), Sink()
    store = _store((A, 1), (B, 2))
    outbox = _FailingOnce(store)
    forwarder = Forwarder(
        outbox,  # type: ignore[arg-type]
        StubTreq(sink),
        clock,
        ForwarderSettings(url=URL, flush_interval=0.0, retry_initial=2.0),
        random=lambda: 0.5,
    )
    forwarder.startService()
    assert outbox.failed and sink.requests == []
    assert forwarder.status.last_error == "outbox: OSError: disk I/O error"
    clock.advance(2.0)
    [(_, body)] = sink.requests
    assert [e["data"][0]["values"]["v"] for e in json.loads(body)] == [1, 2]
    assert result(store.size()) == 0


def test_partial_batch_waits_the_flush_interval_once() -> None:
    """A batch short of batch_size waits flush_interval for more, then goes as it is."""
    clock, sink = Clock(), Sink()
    store = _store((A, 1))
    _forwarder(store, StubTreq(sink), clock, flush_interval=1.0, batch_size=10).startService()
    _store_into(store)
    assert sink.requests == []
    clock.advance(1.0)
    [(_, body)] = sink.requests
    assert len(json.loads(body)) == 2


def test_partial_batch_goes_as_soon_as_it_is_whole() -> None:
    """Waiting for a partial batch, the forwarder sends once batch_size events are held."""
    clock, sink = Clock(), Sink()
    store = _store((A, 1))
    _forwarder(store, StubTreq(sink), clock, flush_interval=1.0, batch_size=3,
               fill_check=0.05).startService()
    _store_into(store)
    clock.advance(0.05)
    assert sink.requests == []  # two of three
    _store_into(store)
    clock.advance(0.05)
    [(_, body)] = sink.requests
    assert len(json.loads(body)) == 3
    assert clock.seconds() < 1.0


def test_retry_after_forms() -> None:
    """Retry-After is read as delta-seconds or as an HTTP date; anything else is ignored."""
    assert retry_after(b"120", 0) == 120
    assert retry_after(b"Thu, 01 Jan 1970 00:01:40 GMT", 40) == 60
    assert retry_after(b"soon", 0) is None
    assert retry_after(None, 0) is None


def test_expected_room_is_the_rest_of_the_backoff() -> None:
    """While backing off the forwarder expects room when the wait ends; else after one flush."""
    clock = Clock()
    sink = Sink((503, {"Retry-After": "20"}, b""))
    forwarder = _forwarder(_store((A, 1)), StubTreq(sink), clock, flush_interval=0.0)
    assert forwarder.expected_room() == 1
    forwarder.startService()
    assert forwarder.expected_room() == 10  # Retry-After 20, capped at retry_max 10
    clock.advance(6.5)
    assert forwarder.expected_room() == 4
    clock.advance(3.5)
    assert forwarder.expected_room() == 1


def test_extra_headers_go_with_every_request() -> None:
    """Configured headers (an Authorization token) are sent with each request."""
    clock, sink = Clock(), Sink()
    _forwarder(_store((A, 1)), StubTreq(sink), clock,
               headers=(("Authorization", "Bearer t0k"),)).startService()
    [(headers, _)] = sink.requests
    assert headers["authorization"] == "Bearer t0k"
