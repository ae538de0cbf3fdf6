# -*- test-case-name: tests.upstream.test_forwarder -*-
"""
L{Forwarder}: drains the outbox to the upstream URL over HTTP (treq).

 - Events go strictly in outbox order, one request at a time, so each
   device's events arrive in the order they were accepted.  Order is kept
   among delivered events: a dead-lettered event does not hold back the
   device's later ones, and a replayed one arrives after them.
 - C{binary} mode: one event per request, attributes in C{ce-*} headers,
   C{data} as the body (the CloudEvents SDK's HTTP binding).  C{batch} mode:
   up to C{batch_size} events as one C{application/cloudevents-batch+json}
   array; a partial batch waits up to C{flush_interval} once for more,
   looking at the outbox's size every C{fill_check} seconds and going as
   soon as a whole batch is held (so under load batches go out full and
   at once, and the forwarder keeps pace with what devices send).
 - 2xx: delivered, acknowledged.  No answer (connection refused or lost,
   timeout), 408, 429 or 5xx: the same request again after an exponential
   backoff with full jitter (a uniformly random delay between
   C{retry_initial} and C{retry_initial * 2**attempt}, never above
   C{retry_max}), or after the C{Retry-After} the upstream gave (at most
   C{retry_max}).  Any other
   status: the event moves to the dead letters with the status and the
   response body; a refused batch is sent again as two halves, and so on,
   so that only the refused events are dead-lettered.
 - An empty outbox is looked at again every C{poll_interval} seconds.
 - Stopping takes no new events, lets the request in flight finish for up
   to C{grace} seconds (then cancels it), and leaves the rest in the outbox.
"""

from __future__ import annotations

import email.utils
import math
from typing import Any, Callable, Optional, Sequence

import attrs
from twisted.application.service import Service
from twisted.internet.defer import CancelledError, Deferred, TimeoutError, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import deferLater
from twisted.logger import Logger
from twisted.python.failure import Failure

from gateway.store.interfaces import IOutbox
from gateway.store.unit import OutboxEvent

from .events import binary, structured

__all__ = ["Forwarder", "ForwarderSettings", "ForwarderStatus", "MODES"]

log = Logger()

#: The values of C{[upstream] mode}.
MODES = ("binary", "batch")

BATCH_CONTENT_TYPE = "application/cloudevents-batch+json"

#: The longest response body kept with a dead letter or as the last error.
_BODY_LIMIT = 2048


@attrs.frozen
class ForwarderSettings:
    """The C{[upstream]} keys the forwarder uses."""

    url: str
    mode: str = attrs.field(default="batch", validator=attrs.validators.in_(MODES))
    batch_size: int = 500
    flush_interval: float = 1.0
    timeout: float = 10.0
    retry_initial: float = 1.0
    retry_max: float = 300.0
    grace: float = 5.0
    poll_interval: float = 0.5
    fill_check: float = 0.05
    #: Extra request headers: (name, value) pairs.
    headers: tuple[tuple[str, str], ...] = ()


@attrs.define
class ForwarderStatus:
    """What the forwarder has done, for operators (counts are of events)."""

    delivered: int = 0
    retried: int = 0
    failed: int = 0
    dead: int = 0
    last_error: Optional[str] = None
    #: Seconds of the backoff now being waited, 0 when none.
    backoff: float = 0.0
    #: Whether the last request was answered with a 2xx.
    connected: bool = False


class _Retry(Exception):
    """The request is to be sent again, after C{retry_after} if given."""

    def __init__(self, reason: str, retry_after: Optional[float] = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


def retry_after(value: Optional[bytes], now: float) -> Optional[float]:
    """Seconds a C{Retry-After} header asks to wait (delta-seconds or an HTTP date)."""
    if value is None:
        return None
    text = value.decode("latin-1").strip()
    if text.isdigit():
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    return max(when.timestamp() - now, 0.0)


def _retryable(status: int) -> bool:
    return status in (408, 429) or 500 <= status <= 599


def _request(mode: str, events: Sequence[OutboxEvent]) -> tuple[dict[str, list[str]], bytes]:
    if mode == "binary":
        [event] = events
        message = binary(event)
        return {k: [v] for k, v in message.headers.items()}, message.body
    body = "[" + ",".join(structured(e) for e in events) + "]"
    return {"Content-Type": [BATCH_CONTENT_TYPE]}, body.encode("utf-8")


class Forwarder(Service):
    """
    @param client: a C{treq.client.HTTPClient} (over a persistent
        connection pool in production, C{treq.testing.StubTreq} in tests).
    @param random: uniform floats in [0, 1), for the jitter.
    @param pool: the client's C{HTTPConnectionPool}, closed once stopped.
    """

    def __init__(
        self,
        outbox: IOutbox,
        client: Any,
        clock: IReactorTime,
        settings: ForwarderSettings,
        random: Callable[[], float],
        pool: Any = None,
    ) -> None:
        self._outbox = outbox
        self._pool = pool
        self._client = client
        self._clock = clock
        self._settings = settings
        self._random = random
        self.status = ForwarderStatus()
        self._loop: Optional[Deferred[None]] = None
        self._waiting: Optional[Deferred[None]] = None
        self._in_flight: Optional[Deferred[Any]] = None
        self._attempt = 0
        self._resume_at: Optional[float] = None

    def expected_room(self) -> int:
        """
        Whole seconds until the forwarder expects to deliver again (the
        rest of its backoff, else one flush), at least 1: the Max-Age of an
        uplink refused because the outbox is full.
        """
        wait = self._settings.flush_interval
        if self._resume_at is not None:
            wait = self._resume_at - self._clock.seconds()
        return max(1, math.ceil(wait))

    def report(self) -> dict[str, Any]:
        """The upstream's state for operators (C{GET /api/v1/upstream})."""
        return {
            "forwarding": True,
            "url": self._settings.url,
            "mode": self._settings.mode,
            **attrs.asdict(self.status),
        }

    # -- lifecycle ---------------------------------------------------------

    def startService(self) -> None:
        super().startService()
        self._loop = Deferred.fromCoroutine(self._run())
        self._loop.addErrback(lambda f: log.failure("the forwarder stopped", f))

    def stopService(self) -> "Deferred[None]":
        super().stopService()
        loop, self._loop = self._loop, None
        if loop is None:
            return succeed(None)
        if self._waiting is not None:
            self._waiting.cancel()
        timer = None
        if self._in_flight is not None:
            timer = self._clock.callLater(self._settings.grace, self._cut_short)
        out: Deferred[None] = Deferred()

        def stopped(_: object) -> Optional["Deferred[None]"]:
            if timer is not None and timer.active():
                timer.cancel()
            if self._pool is not None:
                return self._pool.closeCachedConnections()
            return None

        loop.addBoth(stopped)
        loop.addBoth(lambda _: out.callback(None))
        return out

    def _cut_short(self) -> None:
        if self._in_flight is not None:
            self._in_flight.cancel()

    def _sleep(self, seconds: float) -> "Deferred[None]":
        self._waiting = deferLater(self._clock, seconds, lambda: None)
        return self._waiting

    # -- the loop ----------------------------------------------------------

    async def _run(self) -> None:
        s = self._settings
        size = 1 if s.mode == "binary" else s.batch_size
        events: list[OutboxEvent] = []
        while self.running:
            try:
                if not events:
                    events = await self._outbox.peek(size)
                    if not events:
                        await self._sleep(s.poll_interval)
                        continue
                if len(events) < size and s.flush_interval > 0:
                    await self._fill(size)
                    if not self.running:
                        return
                    events = await self._outbox.peek(size)
                events = await self._deliver(events, size)
            except CancelledError:
                # A wait or a request cut short by stopService.
                return
            except Exception as e:
                # The store failed: what it holds stays there; look again later.
                events = []
                self.status.last_error = f"outbox: {type(e).__name__}: {e}"
                log.error(
                    "upstream: {error}; trying again in {delay} s",
                    error=self.status.last_error,
                    delay=s.retry_initial,
                )
                try:
                    await self._sleep(s.retry_initial)
                except CancelledError:
                    return

    async def _fill(self, size: int) -> None:
        """Wait until C{size} events are held, or C{flush_interval} has passed."""
        s = self._settings
        deadline = self._clock.seconds() + s.flush_interval
        while self.running:
            left = deadline - self._clock.seconds()
            if left <= 0:
                return
            await self._sleep(min(s.fill_check, left))
            if await self._outbox.size() >= size:
                return

    async def _deliver(self, events: list[OutboxEvent], size: int) -> list[OutboxEvent]:
        """Deliver C{events} (or dead-letter them); the next events to deliver."""
        following = await self._settle(events, size)
        return await following

    async def _settle(
        self, events: list[OutboxEvent], size: int
    ) -> "Deferred[list[OutboxEvent]]":
        """
        Send C{events} until they are answered, then acknowledge or
        dead-letter them; a Deferred of the next peek, asked together with
        the acknowledgement so that both share one store round trip.
        """
        while self.running:
            try:
                status, body = await self._send(events)
            except _Retry as retry:
                self._note_error(retry.reason, len(events))
                await self._back_off(retry.retry_after)
                continue
            self._attempt = 0
            self.status.backoff = 0.0
            self._resume_at = None
            positions = [e.position for e in events]
            if 200 <= status <= 299:
                self.status.connected = True
                acknowledged = self._outbox.acknowledge(positions)
                following = self._outbox.peek(size)
                try:
                    await acknowledged
                except Exception:
                    following.addErrback(lambda _: None)
                    raise
                self.status.delivered += len(events)
                return following
            if len(events) > 1:
                # One bad event must not take a batch of good ones with it:
                # the halves go again, in order, until the refused are alone.
                half = len(events) // 2
                (await self._settle(events[:half], size)).addErrback(lambda _: None)
                return await self._settle(events[half:], size)
            [event] = events
            reason = body.decode("utf-8", "replace")[:_BODY_LIMIT]
            await self._outbox.dead_letter(
                event.position, status, reason, int(self._clock.seconds() * 1000)
            )
            self.status.dead += 1
            self.status.last_error = f"HTTP {status}: {reason}"
            log.warn(
                "upstream refused event {id} with HTTP {status}: moved to the dead letters",
                id=event.event_id,
                status=status,
            )
            return self._outbox.peek(size)
        return succeed([])

    async def _send(self, events: list[OutboxEvent]) -> tuple[int, bytes]:
        headers, body = _request(self._settings.mode, events)
        for name, value in self._settings.headers:
            headers.setdefault(name, []).append(value)
        request = self._client.post(
            self._settings.url, data=body, headers=headers, allow_redirects=False
        )
        request.addTimeout(self._settings.timeout, self._clock)
        self._in_flight = request
        try:
            response = await request
            reading = response.content()
            reading.addTimeout(self._settings.timeout, self._clock)
            self._in_flight = reading
            content: bytes = await reading
        except TimeoutError:
            raise _Retry(f"no answer within {self._settings.timeout} s") from None
        except CancelledError:
            # stopService's grace period ran out.
            raise
        except Exception as e:
            raise _Retry(f"{type(e).__name__}: {Failure(e).getErrorMessage()}") from None
        finally:
            self._in_flight = None
        status: int = response.code
        if _retryable(status):
            wait = retry_after(
                response.headers.getRawHeaders(b"retry-after", [None])[0], self._clock.seconds()
            )
            raise _Retry(f"HTTP {status}: {content[:_BODY_LIMIT].decode('utf-8', 'replace')}", wait)
        return status, content

    def _note_error(self, reason: str, count: int) -> None:
        self.status.connected = False
        self.status.last_error = reason
        if self._attempt == 0:
            self.status.failed += count
        self.status.retried += count

    async def _back_off(self, asked: Optional[float]) -> None:
        s = self._settings
        if asked is not None:
            delay = min(asked, s.retry_max)
        else:
            ceiling = min(s.retry_max, s.retry_initial * 2 ** min(self._attempt, 64))
            delay = s.retry_initial + self._random() * max(ceiling - s.retry_initial, 0.0)
        self._attempt += 1
        self.status.backoff = delay
        self._resume_at = self._clock.seconds() + delay
        log.info(
            "upstream: {reason}; retrying in {delay:.3f} s (attempt {attempt})",
            reason=self.status.last_error,
            delay=delay,
            attempt=self._attempt,
        )
        await self._sleep(delay)
