# -*- test-case-name: tests.service.test_rpc -*-
"""
The server-side RPC queue: operators and applications queue RPCs for a
device, the queue holds them until the device can be reached (it has an
RPC subscription, a dialect's Observe on C{/rpc}, and the power-saving
scheduler says it is awake), and reports what became of each.

 - Per device, RPCs go out in id order, at most NSTART of them (the
   subscription's) waiting for the device's acknowledgement at a time.
 - States: QUEUED -> SENT (handed to the subscription, once that is
   durable) -> DELIVERED (acknowledged; a NON notification at once) ->
   SUCCESSFUL (the device's reply); a one-way RPC acknowledged is
   SUCCESSFUL.  A QUEUED RPC not sent by its expiration time is EXPIRED;
   a sent one without its acknowledgement (one-way) or reply (two-way)
   within its timeout is TIMEOUT.  A send the device did not acknowledge
   (the notification timed out, or the subscription ended first) puts it
   back in the queue, in its place, up to C{max_retries} times, then it is
   TIMEOUT; a reset (RST) is FAILED, as is a cancelled RPC.
 - Every state change is committed with its upstream event
   (C{io.coap-gateway.rpc.v1}) in one unit of work.  A change that cannot
   be committed (the outbox is full) is logged and undone in memory.
 - An application listed in C{drop_applications} takes RPCs only while
   its device waits for one (Drogue's way): one that cannot be sent at
   once is EXPIRED at once, not queued.
 - Bounded: a device holds at most C{max_queued} unfinished RPCs (one more
   is a L{Conflict}, 409) and keeps its C{keep_finished} newest finished
   ones for the API.
 - Unfinished RPCs are kept in memory too (the hot path never waits on
   disk for the next one) and survive a restart in the store: L{start}
   reloads them, puts those that were SENT (their notification died with
   the process) back in the queue, and re-arms every timer from the
   stored times.

Unlike ThingsBoard, an RPC for a sleeping device is not dropped in the
transport: it waits here for the device's next window.
"""

from __future__ import annotations

from typing import Any, Optional

import attrs
from attrs import validators as v
from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.logger import Logger

from gateway.domain.errors import Conflict, IdTaken, InvalidArgument, NotFound
from gateway.domain.model import Device, JSONValue, Rpc, RpcState
from gateway.service.attributes import now_ms
from gateway.service.credentials import CredentialCache
from gateway.service.interfaces import DeliverRpc, Delivery, Unsubscribe
from gateway.service.scheduler import PowerScheduler
from gateway.service.uplinks import RetryAfter, commit_uplink, fixed_retry_after
from gateway.store.interfaces import ICommandQueue, IStore
from gateway.store.unit import EnqueueRpc, UnitOfWork, UpdateRpc
from gateway.store.values import encode_json
from gateway.upstream.events import EventFactory, UplinkKind

__all__ = ["RpcService", "RpcSettings"]

log = Logger()

QUEUED, SENT, DELIVERED = RpcState.QUEUED, RpcState.SENT, RpcState.DELIVERED
_NOT_WAITING = "the device was not waiting, and its application drops what cannot go out at once"

#: Ids an enqueue takes before giving up when other nodes keep taking them first.
_ID_ATTEMPTS = 5

@attrs.frozen
class RpcSettings:
    """The queue's part of the C{[rpc]} section."""

    #: Unfinished RPCs one device may hold.
    max_queued: int = attrs.field(default=100, validator=v.ge(1))
    #: Finished RPCs kept per device for the API (the oldest go first).
    keep_finished: int = attrs.field(default=100, validator=v.ge(0))
    #: Seconds a two-way RPC waits for its reply when the request gives no timeout.
    reply_timeout: float = attrs.field(default=10.0, validator=v.gt(0))
    #: Seconds an RPC may wait in the queue when the request gives no expiration time.
    expiration: float = attrs.field(default=86_400.0, validator=v.gt(0))
    #: Sends the device did not acknowledge before an RPC is TIMEOUT.
    max_retries: int = attrs.field(default=2, validator=v.ge(0))
    #: Applications whose devices take RPCs and commands only while they
    #: wait for one (Drogue's behaviour): one that cannot go out at once is
    #: EXPIRED rather than queued.
    drop_applications: tuple[str, ...] = ()


def _event_data(rpc: Rpc) -> str:
    data: dict[str, JSONValue] = {
        "id": rpc.id,
        "method": rpc.method,
        "params": rpc.params,
        "oneway": rpc.oneway,
        "state": rpc.state.value,
        "retries": rpc.retries,
    }
    if rpc.response is not None:
        data["response"] = rpc.response
    if rpc.error is not None:
        data["error"] = rpc.error
    if rpc.content_type is not None:
        data["contentType"] = rpc.content_type
    return encode_json(data)


@attrs.define
class _Sink:
    deliver: DeliverRpc
    nstart: int
    #: Named in the events of what the device did.
    dialect: str


@attrs.define
class _DeviceQueue:
    """What is known in memory of one device's queue."""

    #: Unfinished RPCs by id, in id order (a retried one keeps its place).
    active: dict[int, Rpc] = attrs.field(factory=dict)
    timers: dict[int, IDelayedCall] = attrs.field(factory=dict)
    #: Ids sent and waiting for the device's acknowledgement.
    in_flight: set[int] = attrs.field(factory=set)
    #: Subscriptions, newest last (the one that is used).
    sinks: list[_Sink] = attrs.field(factory=list)
    #: Who waits for each RPC to finish.
    waiters: dict[int, list["Deferred[Rpc]"]] = attrs.field(factory=dict)

    def idle(self) -> bool:
        return not (self.active or self.sinks or self.waiters)


def _check_ms(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise InvalidArgument(f"{name} must be a positive integer number of ms")
    return value


@attrs.define
class RpcService:
    _store: IStore
    _queue: ICommandQueue
    _cache: CredentialCache
    _clock: IReactorTime
    _events: EventFactory
    _scheduler: PowerScheduler
    _settings: RpcSettings = attrs.field(factory=RpcSettings)
    _retry_after: RetryAfter = fixed_retry_after
    _devices: dict[str, _DeviceQueue] = attrs.field(factory=dict)
    _next_id: int = 0
    _unsubscribe: Optional[Unsubscribe] = None

    # -- lifecycle -----------------------------------------------------------

    def start(self) -> "Deferred[None]":
        """Reload the unfinished RPCs, re-queue the SENT ones, arm the timers."""

        async def run() -> None:
            self._next_id = await self._queue.last_rpc_id() + 1
            for rpc in await self._queue.unfinished_rpcs():
                q = self._device_queue(rpc.device_id)
                q.active[rpc.id] = rpc
                if rpc.state is SENT:
                    # Its notification died with the process.
                    self._retry(q, rpc, "the gateway restarted before it was acknowledged")
                else:
                    self._arm(q, rpc)
            self._unsubscribe = self._scheduler.subscribe(self._reachability)
            for device_id in list(self._devices):
                self._pump(device_id)

        return Deferred.fromCoroutine(run())

    def stop(self) -> None:
        """Cancel every timer (the gateway stops; the store keeps the rest)."""
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        for q in self._devices.values():
            for timer in q.timers.values():
                if timer.active():
                    timer.cancel()
            q.timers.clear()

    # -- what operators do ---------------------------------------------------

    def enqueue(
        self,
        device_id: str,
        method: str,
        params: JSONValue = None,
        oneway: bool = False,
        timeout_ms: Optional[int] = None,
        expires_at: Optional[int] = None,
        dialect: str = "api",
        content_type: Optional[str] = None,
    ) -> "Deferred[Rpc]":
        """
        Queue an RPC; fires with it once it (and its event) is durable.
        L{NotFound} for an unknown device, L{InvalidArgument} for a bad
        argument, L{Conflict} when the device's queue is full,
        L{Unavailable} when the outbox is.
        """

        async def run() -> Rpc:
            device = self._device(device_id)
            if not isinstance(method, str) or not method:
                raise InvalidArgument("method must be a non-empty string")
            if not isinstance(oneway, bool):
                raise InvalidArgument("oneway must be true or false")
            now = now_ms(self._clock)
            timeout = (
                int(self._settings.reply_timeout * 1000)
                if timeout_ms is None
                else _check_ms("timeout", timeout_ms)
            )
            expiry = (
                now + int(self._settings.expiration * 1000)
                if expires_at is None
                else _check_ms("expirationTime", expires_at)
            )
            if expiry <= now:
                raise InvalidArgument("expirationTime is in the past")
            for attempt in range(_ID_ATTEMPTS):
                rpc = Rpc(
                    device_id, self._take_id(), method, params, oneway, timeout, expiry, now,
                    updated=now, content_type=content_type,
                )
                op = EnqueueRpc(rpc, self._settings.max_queued, self._settings.keep_finished)
                unit = UnitOfWork.of(op, self._event(device, op.rpc, dialect, now))
                try:
                    (stored, _) = await commit_uplink(self._store, unit, self._retry_after)
                    break
                except IdTaken:
                    # Another node sharing the store took it.
                    if attempt == _ID_ATTEMPTS - 1:
                        raise
                    self._next_id = max(self._next_id, await self._queue.last_rpc_id() + 1)
            log.info(
                "rpc {rpc_id} {method} queued for device {device_id}",
                rpc_id=stored.id, method=method, device_id=device_id,
            )
            q = self._device_queue(device_id)
            q.active[stored.id] = stored
            self._arm(q, stored)
            self._pump(device_id)
            if device.application in self._settings.drop_applications and (
                stored.id not in q.in_flight
            ):
                return await self._finish(q, stored, RpcState.EXPIRED, error=_NOT_WAITING)
            return stored

        return Deferred.fromCoroutine(run())

    def get(self, device_id: str, rpc_id: int) -> "Deferred[Rpc]":
        """The RPC (as it is now); L{NotFound} if the device has none with this id."""

        async def run() -> Rpc:
            self._device(device_id)
            q = self._devices.get(device_id)
            if q is not None and rpc_id in q.active:
                return q.active[rpc_id]
            found = await self._queue.get_rpc(device_id, rpc_id)
            if found is None:
                raise NotFound(f"device {device_id!r} has no rpc {rpc_id}")
            return found

        return Deferred.fromCoroutine(run())

    def list(
        self, device_id: str, state: Optional[RpcState] = None, limit: int = 1000
    ) -> "Deferred[list[Rpc]]":
        """The device's RPCs (in one state), oldest first, as they are now."""

        async def run() -> list[Rpc]:
            self._device(device_id)
            stored = await self._queue.list_rpcs(device_id, state, limit)
            q = self._devices.get(device_id)
            live = {} if q is None else q.active
            # Memory may be ahead of the store by a commit in progress.
            now = [live.get(r.id, r) for r in stored]
            return [r for r in now if state is None or r.state is state]

        return Deferred.fromCoroutine(run())

    def cancel(self, device_id: str, rpc_id: int) -> "Deferred[Rpc]":
        """Cancel an unfinished RPC (FAILED); L{Conflict} if it has finished."""

        async def run() -> Rpc:
            rpc = await self.get(device_id, rpc_id)
            if rpc.state.final:
                raise Conflict(f"rpc {rpc_id} has finished ({rpc.state.value})")
            q = self._devices[device_id]
            return await self._finish(q, rpc, RpcState.FAILED, error="cancelled")

        return Deferred.fromCoroutine(run())

    def wait(self, device_id: str, rpc_id: int, seconds: float) -> "Deferred[Rpc]":
        """
        The RPC once it has finished, or as it is after C{seconds} if it
        has not been sent by then (once sent, its own timeout bounds the
        wait).
        """

        async def run() -> Rpc:
            rpc = await self.get(device_id, rpc_id)
            if rpc.state.final:
                return rpc
            q = self._devices[device_id]
            d: Deferred[Rpc] = Deferred()
            q.waiters.setdefault(rpc_id, []).append(d)

            def give_up() -> None:
                now = q.active.get(rpc_id)
                if now is None or d.called:
                    return
                if now.state is QUEUED:
                    self._unwait(device_id, q, rpc_id, d)
                    d.callback(now)
                else:
                    waiting[0] = self._clock.callLater(
                        max(now.timeout_ms / 1000, 0.001), give_up
                    )

            waiting = [self._clock.callLater(seconds, give_up)]
            try:
                return await d
            finally:
                if waiting[0].active():
                    waiting[0].cancel()

        return Deferred.fromCoroutine(run())

    def _unwait(self, device_id: str, q: _DeviceQueue, rpc_id: int, d: "Deferred[Rpc]") -> None:
        waiters = q.waiters.get(rpc_id, [])
        if d in waiters:
            waiters.remove(d)
        if not waiters:
            q.waiters.pop(rpc_id, None)
        self._tidy(device_id, q)

    # -- what devices do (through the dialects) -----------------------------

    def subscribe(
        self, device_id: str, deliver: DeliverRpc, nstart: int = 1, dialect: str = "api"
    ) -> Unsubscribe:
        """
        The device listens for RPCs (its Observe on C{/rpc}, through
        C{dialect}): C{deliver} sends one and fires with how that ended; the
        newest subscription is the one used.
        """
        q = self._device_queue(device_id)
        sink = _Sink(deliver, max(nstart, 1), dialect)
        q.sinks.append(sink)
        # Not at once: the subscribing request is answered first.
        self._clock.callLater(0, self._pump, device_id)

        def unsubscribe() -> None:
            if sink in q.sinks:
                q.sinks.remove(sink)
                self._tidy(device_id, q)

        return unsubscribe

    def reply(
        self, device_id: str, rpc_id: int, response: JSONValue, dialect: str = "api"
    ) -> "Deferred[Rpc]":
        """
        The device's reply to a two-way RPC it was sent: SUCCESSFUL.
        L{NotFound} if it has no such RPC, L{Conflict} if that one is not
        waiting for a reply (finished, not sent yet, or one-way).
        """

        async def run() -> Rpc:
            self._device(device_id)
            q = self._devices.get(device_id)
            rpc = None if q is None else q.active.get(rpc_id)
            if rpc is None:
                stored = await self._queue.get_rpc(device_id, rpc_id)
                if stored is None:
                    raise NotFound(f"no rpc {rpc_id}")
                raise Conflict(f"rpc {rpc_id} has finished ({stored.state.value})")
            if rpc.oneway:
                raise Conflict(f"rpc {rpc_id} is one-way: it takes no reply")
            if rpc.state is QUEUED:
                raise Conflict(f"rpc {rpc_id} was not sent yet")
            assert q is not None
            return await self._finish(q, rpc, RpcState.SUCCESSFUL, response=response,
                                      dialect=dialect)

        return Deferred.fromCoroutine(run())

    # -- changes made through other nodes ------------------------------------

    def changed_elsewhere(self, device_id: str, rpc_id: int) -> "Deferred[None]":
        """
        Another node queued or changed one of the device's RPCs: hold what
        the store has of it (its waiters here hear it finish) and send it if
        the device listens here.
        """
        self._next_id = max(self._next_id, rpc_id + 1)

        async def run() -> None:
            stored = await self._queue.get_rpc(device_id, rpc_id)
            q = self._devices.get(device_id)
            if stored is None or (q is None and stored.state.final):
                return
            if q is None:
                q = self._device_queue(device_id)
            if stored.state.final:
                if rpc_id in q.active:
                    self._apply(device_id, q, stored)
                return
            if rpc_id in q.in_flight:
                return  # sent from here: the device's answer decides
            q.active[rpc_id] = stored
            q.active = dict(sorted(q.active.items()))
            self._arm(q, stored)
            self._pump(device_id)

        return Deferred.fromCoroutine(run())

    def resync(self) -> "Deferred[None]":
        """Changes of other nodes may have been missed: hold what the store has."""

        async def run() -> None:
            unfinished: dict[str, list[Rpc]] = {}
            for rpc in await self._queue.unfinished_rpcs():
                unfinished.setdefault(rpc.device_id, []).append(rpc)
            for device_id in set(self._devices) | set(unfinished):
                known = self._devices.get(device_id)
                held = {} if known is None else dict(known.active)
                for rpc in unfinished.get(device_id, []):
                    held.pop(rpc.id, None)
                    await self.changed_elsewhere(device_id, rpc.id)
                for rpc_id in held:  # finished elsewhere
                    await self.changed_elsewhere(device_id, rpc_id)

        return Deferred.fromCoroutine(run())

    # -- sending -------------------------------------------------------------

    def _reachability(self, device_id: str, awake: bool) -> None:
        if awake:
            self._pump(device_id)

    def _pump(self, device_id: str) -> None:
        """Send what may go now: in id order, up to NSTART unacknowledged."""
        q = self._devices.get(device_id)
        if q is None or not q.sinks or not self._scheduler.awake(device_id):
            return
        sink = q.sinks[-1]
        for rpc in list(q.active.values()):
            if len(q.in_flight) >= sink.nstart:
                break
            if rpc.state is QUEUED:
                self._send(device_id, q, rpc, sink)

    def _send(self, device_id: str, q: _DeviceQueue, rpc: Rpc, sink: _Sink) -> None:
        now = now_ms(self._clock)
        sent = attrs.evolve(rpc, state=SENT, sent_at=now, updated=now)
        q.in_flight.add(rpc.id)
        d = self._change(q, rpc, sent)

        def go(committed: bool) -> "Optional[Deferred[None]]":
            if not committed:
                # Put back in the queue: the next wake or subscription retries.
                q.in_flight.discard(rpc.id)
                return None
            if q.active.get(rpc.id) is not sent or sink not in q.sinks:
                outcome: Deferred[Delivery] = succeed("gone")
            else:
                outcome = sink.deliver(sent)
            return outcome.addCallback(
                lambda how: self._delivered(device_id, q, rpc.id, how, sink.dialect)
            )

        d.addCallback(go)
        d.addErrback(
            lambda f: log.failure("sending rpc {rpc_id} failed", f, rpc_id=rpc.id)
        )

    def _delivered(
        self, device_id: str, q: _DeviceQueue, rpc_id: int, outcome: Delivery, dialect: str
    ) -> None:
        q.in_flight.discard(rpc_id)
        rpc = q.active.get(rpc_id)
        if rpc is not None and rpc.state is SENT:
            if outcome in ("ack", "non"):
                if rpc.oneway:
                    self._finish(q, rpc, RpcState.SUCCESSFUL, dialect=dialect)
                else:
                    now = now_ms(self._clock)
                    delivered = attrs.evolve(rpc, state=DELIVERED, updated=now)
                    self._change(q, rpc, delivered, dialect)
            elif outcome == "reset":
                self._finish(
                    q, rpc, RpcState.FAILED, error="the device reset the notification",
                    dialect=dialect,
                )
            else:
                self._retry(q, rpc, "the device did not acknowledge it")
        self._pump(device_id)

    def _retry(self, q: _DeviceQueue, rpc: Rpc, why: str) -> None:
        if rpc.retries >= self._settings.max_retries:
            self._finish(q, rpc, RpcState.TIMEOUT, error=why)
            return
        now = now_ms(self._clock)
        again = attrs.evolve(rpc, state=QUEUED, retries=rpc.retries + 1, sent_at=None, updated=now)
        self._change(q, rpc, again)

    # -- timers --------------------------------------------------------------

    def _arm(self, q: _DeviceQueue, rpc: Rpc) -> None:
        """(Re-)arm the RPC's deadline: its expiry while queued, its timeout once sent."""
        old = q.timers.pop(rpc.id, None)
        if old is not None and old.active():
            old.cancel()
        if rpc.state.final:
            return
        if rpc.state is QUEUED or rpc.sent_at is None:
            deadline = rpc.expires_at
        else:
            deadline = rpc.sent_at + rpc.timeout_ms
        delay = max(deadline / 1000 - self._clock.seconds(), 0.0)
        q.timers[rpc.id] = self._clock.callLater(delay, self._deadline, q, rpc.id)

    def _deadline(self, q: _DeviceQueue, rpc_id: int) -> None:
        q.timers.pop(rpc_id, None)
        rpc = q.active.get(rpc_id)
        if rpc is None:
            return
        if rpc.state is QUEUED:
            self._finish(q, rpc, RpcState.EXPIRED, error="not sent before its expiration time")
            return
        q.in_flight.discard(rpc_id)
        what = "a reply" if rpc.state is DELIVERED else "an acknowledgement"
        self._finish(q, rpc, RpcState.TIMEOUT, error=f"no {what} within {rpc.timeout_ms} ms")
        self._pump(rpc.device_id)

    # -- state changes -------------------------------------------------------

    def _finish(
        self,
        q: _DeviceQueue,
        rpc: Rpc,
        state: RpcState,
        response: JSONValue = None,
        error: Optional[str] = None,
        dialect: str = "api",
    ) -> "Deferred[Rpc]":
        now = now_ms(self._clock)
        done = attrs.evolve(rpc, state=state, updated=now, response=response, error=error)
        d = self._change(q, rpc, done, dialect)

        def result(committed: bool) -> Rpc:
            if not committed:
                raise Conflict(f"rpc {rpc.id} could not be changed to {state.value}")
            return done

        return d.addCallback(result)

    def _change(
        self, q: _DeviceQueue, old: Rpc, new: Rpc, dialect: str = "api"
    ) -> "Deferred[bool]":
        """
        Apply a state change in memory at once (later inputs see it), then
        commit it with its event; fires with whether it was committed (if
        not, memory is put back).
        """
        device_id = old.device_id
        self._apply(device_id, q, new)
        log.debug(
            "rpc {rpc_id} of device {device_id}: {old_state} -> {new_state}",
            rpc_id=old.id, device_id=device_id, old_state=old.state.value,
            new_state=new.state.value,
        )
        device = self._cache.device(device_id)

        async def run() -> bool:
            if device is None:
                raise NotFound(f"no device {device_id!r}")
            update = UpdateRpc(new, (old.state,))
            await commit_uplink(
                self._store,
                UnitOfWork.of(update, self._event(device, update.rpc, dialect, new.updated)),
                self._retry_after,
            )
            return True

        def failed(failure: Any) -> bool:
            if failure.check(NotFound):
                self._forget(device_id)
                return False
            if q.active.get(old.id) is new or (new.state.final and old.id not in q.active):
                self._apply(device_id, q, old)
            if failure.check(Conflict):
                # Another node sharing the store changed it first: hold its outcome.
                log.info(
                    "rpc {rpc_id} of device {device_id} was changed elsewhere before it "
                    "could become {state}", rpc_id=old.id, device_id=device_id,
                    state=new.state.value,
                )
                self.changed_elsewhere(device_id, old.id)
                return False
            log.failure(
                "rpc {rpc_id} of device {device_id} could not become {state}", failure,
                rpc_id=old.id, device_id=device_id, state=new.state.value,
            )
            return False

        d = Deferred.fromCoroutine(run())
        d.addErrback(failed)
        return d

    def _apply(self, device_id: str, q: _DeviceQueue, rpc: Rpc) -> None:
        if rpc.state.final:
            q.active.pop(rpc.id, None)
            q.in_flight.discard(rpc.id)
            self._arm(q, rpc)
            for d in q.waiters.pop(rpc.id, []):
                d.callback(rpc)
            self._tidy(device_id, q)
        else:
            q.active[rpc.id] = rpc
            if self._devices.get(device_id) is not q:
                self._devices[device_id] = q
            self._arm(q, rpc)

    # -- helpers -------------------------------------------------------------

    def _device(self, device_id: str) -> Device:
        device = self._cache.device(device_id)
        if device is None:
            raise NotFound(f"no device {device_id!r}")
        return device

    def _device_queue(self, device_id: str) -> _DeviceQueue:
        q = self._devices.get(device_id)
        if q is None:
            q = self._devices[device_id] = _DeviceQueue()
        return q

    def _tidy(self, device_id: str, q: _DeviceQueue) -> None:
        if q.idle() and self._devices.get(device_id) is q:
            del self._devices[device_id]

    def _forget(self, device_id: str) -> None:
        q = self._devices.pop(device_id, None)
        if q is None:
            return
        for timer in q.timers.values():
            if timer.active():
                timer.cancel()

    def _take_id(self) -> int:
        rpc_id, self._next_id = self._next_id, self._next_id + 1
        return rpc_id

    def _event(self, device: Device, rpc: Rpc, dialect: str, now: int) -> Any:
        return self._events.event(UplinkKind.RPC, device, dialect, now, _event_data(rpc))

    def pending(self, device_id: str) -> int:
        """Unfinished RPCs of the device held in memory (for tests and metrics)."""
        q = self._devices.get(device_id)
        return 0 if q is None else len(q.active)

    def queued(self, device_id: str) -> int:
        """The device's RPCs waiting in the queue to be sent."""
        q = self._devices.get(device_id)
        return 0 if q is None else sum(1 for rpc in q.active.values() if rpc.state is QUEUED)

