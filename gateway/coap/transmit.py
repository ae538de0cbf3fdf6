"""
Outgoing messages: message IDs per peer and CON retransmission (RFC 7252 §4.2).

Exchanges are keyed by (peer, MID), so an ACK from one peer never settles an
exchange with another; at most NSTART CONs are outstanding per peer and the
rest wait in a short per-peer queue.  Timers and NSTART are the peer's own
(C{peer.params}).
"""

from __future__ import annotations

import random
from collections import deque
from typing import Callable, Hashable

from twisted.internet.interfaces import IDelayedCall, IReactorTime

from .peer import IPeer

#: Outcome of a CON: "ack", "reset", "timeout" or "dropped" (queue overflow).
Outcome = str
Done = Callable[[Outcome], None]

_MAX_QUEUED_PER_PEER = 64


class _Exchange:
    __slots__ = ("peer", "mid", "data", "done", "timeout", "attempt", "call")

    def __init__(self, peer: IPeer, mid: int, data: bytes, done: Done | None) -> None:
        self.peer = peer
        self.mid = mid
        self.data = data
        self.done = done
        self.timeout = 0.0
        self.attempt = 0
        self.call: IDelayedCall | None = None


class Transmitter:
    def __init__(
        self,
        clock: IReactorTime,
        max_peers: int,
        rng: random.Random | None = None,
    ) -> None:
        self._clock = clock
        self._max_peers = max_peers
        self._rng = rng or random.Random()
        self._mids: dict[Hashable, int] = {}
        self._live: dict[tuple[Hashable, int], _Exchange] = {}
        self._outstanding: dict[Hashable, int] = {}
        self._queued: dict[Hashable, deque[_Exchange]] = {}

    def __len__(self) -> int:
        return len(self._live)

    def next_mid(self, key: Hashable) -> int:
        """A message ID not in use towards C{key}."""
        mid = self._mids.get(key)
        if mid is None:
            if len(self._mids) >= self._max_peers:
                del self._mids[next(iter(self._mids))]
            mid = self._rng.randrange(0x10000)
        for _ in range(0x10000):
            mid = (mid + 1) & 0xFFFF
            if (key, mid) not in self._live:
                break
        self._mids[key] = mid
        return mid

    def send_confirmable(
        self, peer: IPeer, mid: int, data: bytes, done: Done | None = None
    ) -> None:
        """Send a CON now (or once fewer than NSTART are outstanding) until it is settled."""
        exchange = _Exchange(peer, mid, data, done)
        self._live[(peer.key, mid)] = exchange
        if self._outstanding.get(peer.key, 0) < peer.params.nstart:
            self._start(exchange)
            return
        queue = self._queued.setdefault(peer.key, deque())
        queue.append(exchange)
        if len(queue) > _MAX_QUEUED_PER_PEER:
            dropped = queue.popleft()
            self._finish(dropped, "dropped", started=False)

    def acknowledge(self, key: Hashable, mid: int) -> bool:
        return self._settle(key, mid, "ack")

    def reset(self, key: Hashable, mid: int) -> bool:
        return self._settle(key, mid, "reset")

    def cancel_peer(self, key: Hashable) -> None:
        """Stop every exchange with C{key} without reporting an outcome."""
        for exchange in list(self._queued.pop(key, ())):
            self._live.pop((key, exchange.mid), None)
        for (peer_key, mid), exchange in list(self._live.items()):
            if peer_key == key:
                exchange.done = None
                self._settle(key, mid, "cancelled")

    def cancel_all(self) -> None:
        """Stop every exchange (the socket is closing)."""
        for key in {peer_key for peer_key, _ in self._live}:
            self.cancel_peer(key)

    def _start(self, exchange: _Exchange) -> None:
        key = exchange.peer.key
        self._outstanding[key] = self._outstanding.get(key, 0) + 1
        params = exchange.peer.params
        exchange.timeout = params.ack_timeout * self._rng.uniform(1.0, params.ack_random_factor)
        exchange.peer.send(exchange.data)
        exchange.call = self._clock.callLater(exchange.timeout, self._retransmit, exchange)

    def _retransmit(self, exchange: _Exchange) -> None:
        if exchange.attempt >= exchange.peer.params.max_retransmit:
            exchange.call = None
            self._live.pop((exchange.peer.key, exchange.mid), None)
            self._finish(exchange, "timeout", started=True)
            return
        exchange.attempt += 1
        exchange.timeout *= 2
        exchange.peer.send(exchange.data)
        exchange.call = self._clock.callLater(exchange.timeout, self._retransmit, exchange)

    def _settle(self, key: Hashable, mid: int, outcome: Outcome) -> bool:
        exchange = self._live.pop((key, mid), None)
        if exchange is None:
            return False
        if exchange.call is None:
            queue = self._queued.get(key)
            if queue is not None and exchange in queue:
                queue.remove(exchange)
                self._finish(exchange, outcome, started=False)
                return True
        else:
            exchange.call.cancel()
            exchange.call = None
        self._finish(exchange, outcome, started=True)
        return True

    def _finish(self, exchange: _Exchange, outcome: Outcome, started: bool) -> None:
        key = exchange.peer.key
        self._live.pop((key, exchange.mid), None)
        if started:
            left = self._outstanding.get(key, 1) - 1
            if left > 0:
                self._outstanding[key] = left
            else:
                self._outstanding.pop(key, None)
            queue = self._queued.get(key)
            if queue:
                self._start(queue.popleft())
                if not queue:
                    del self._queued[key]
        if exchange.done is not None:
            exchange.done(outcome)
