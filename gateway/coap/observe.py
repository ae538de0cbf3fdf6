"""
Observe registrations (RFC 7641): who watches which resource, under caps.

An observation lives in its resource's C{observers} dict (txThings' API, so
C{resource.updatedState()} triggers it) and in the registry's table keyed by
(peer, token).  It ends on deregistration (Observe=1), on an RST to a
notification, when a CON notification's retransmissions run out, when a
notification is not a 2.xx, or when its peer is dropped.

Notifications for a peer on hold (a device known to sleep) wait, coalesced
and bounded like those behind a CON in flight, until it is released.
"""

from __future__ import annotations

import copy
from collections import OrderedDict
from typing import Any, Callable, Hashable

from . import numbers as n
from .peer import IPeer
from .resource import NotificationRenderer

_SEQ_MASK = 0xFFFFFF
#: NON notifications remembered so an RST to one cancels its observation.
_RECENT_NON = 10_000
#: Pending notifications kept per observer while a CON one is in flight.
_MAX_PENDING = 16


class Observation:
    __slots__ = (
        "registry",
        "resource",
        "peer",
        "token",
        "request",
        "confirmable",
        "seq",
        "last_confirmable",
        "in_flight",
        "pending",
        "active",
    )

    def __init__(
        self, registry: ObservationRegistry, resource: Any, peer: IPeer, request: Any, now: float
    ) -> None:
        self.registry = registry
        self.resource = resource
        self.peer = peer
        self.token: bytes = request.token
        # Later notifications re-render this request; strip what only
        # concerned the registering exchange.
        self.request = copy.copy(request)
        self.request.opt = copy.deepcopy(request.opt)
        for number in (n.OBSERVE, n.BLOCK2, n.BLOCK1, n.SIZE2, n.SIZE1):
            self.request.opt.deleteOption(number)
        self.confirmable: bool = request.mtype == 0
        self.seq = 1
        self.last_confirmable = now
        self.in_flight = False
        self.pending: list[NotificationRenderer | None] = []
        self.active = True

    @property
    def key(self) -> tuple[Hashable, bytes]:
        return (self.peer.key, self.token)

    def next_seq(self) -> int:
        self.seq = (self.seq + 1) & _SEQ_MASK
        return self.seq

    def trigger(self, render: NotificationRenderer | None = None) -> None:
        if not self.active:
            return
        if self.in_flight or self.registry.holding(self.peer.key):
            # Plain re-renders coalesce; explicit changes queue, bounded.
            if render is None and None in self.pending:
                return
            if len(self.pending) >= _MAX_PENDING:
                self.pending.pop(0)
            self.pending.append(render)
            return
        self.registry.send(self, render)


class ObservationRegistry:
    """
    @param send: C{send(observation, render)} renders and sends one notification.
    """

    def __init__(
        self,
        max_observers: int,
        max_per_resource: int,
        send: Callable[[Observation, NotificationRenderer | None], None],
    ) -> None:
        self._max = max_observers
        self._max_per_resource = max_per_resource
        self.send = send
        self._table: dict[tuple[Hashable, bytes], Observation] = {}
        self._recent_non: OrderedDict[tuple[Hashable, int], Observation] = OrderedDict()
        self._held: set[Hashable] = set()

    def __len__(self) -> int:
        return len(self._table)

    def register(self, resource: Any, peer: IPeer, request: Any, now: float) -> Observation | None:
        """Add (or replace, for the same token) an observation; None over the caps."""
        key = (peer.key, request.token)
        old = self._table.get(key)
        if old is not None:
            self.cancel(old)
        if len(self._table) >= self._max or len(resource.observers) >= self._max_per_resource:
            return None
        observation = Observation(self, resource, peer, request, now)
        self._table[key] = observation
        resource.observers[key] = observation
        resource.observer_added(observation)
        return observation

    def deregister(self, peer_key: Hashable, token: bytes) -> bool:
        observation = self._table.get((peer_key, token))
        if observation is None:
            return False
        self.cancel(observation)
        return True

    def cancel(self, observation: Observation) -> None:
        if not observation.active:
            return
        observation.active = False
        observation.pending.clear()
        self._table.pop(observation.key, None)
        resource = observation.resource
        if resource.observers.pop(observation.key, None) is not None:
            resource.observer_removed(observation)

    def cancel_peer(self, peer_key: Hashable) -> None:
        self._held.discard(peer_key)
        for observation in self._of_peer(peer_key):
            self.cancel(observation)

    def hold(self, peer_key: Hashable) -> None:
        """Keep notifications for this peer until L{release}."""
        self._held.add(peer_key)

    def holding(self, peer_key: Hashable) -> bool:
        return bool(self._held) and peer_key in self._held

    def release(self, peer_key: Hashable) -> None:
        """Send what waited for this peer: the oldest pending notification of each observation."""
        if peer_key not in self._held:
            return
        self._held.discard(peer_key)
        for observation in self._of_peer(peer_key):
            # A CON notification sets in_flight and the rest follow its ACK;
            # NON ones go out one after the other.
            while observation.pending and observation.active and not observation.in_flight:
                self.send(observation, observation.pending.pop(0))

    def _of_peer(self, peer_key: Hashable) -> list[Observation]:
        return [o for key, o in self._table.items() if key[0] == peer_key]

    def sent_non(self, peer_key: Hashable, mid: int, observation: Observation) -> None:
        self._recent_non[(peer_key, mid)] = observation
        if len(self._recent_non) > _RECENT_NON:
            self._recent_non.popitem(last=False)

    def reset(self, peer_key: Hashable, mid: int) -> bool:
        """An RST for a NON notification: cancel its observation."""
        observation = self._recent_non.pop((peer_key, mid), None)
        if observation is None:
            return False
        self.cancel(observation)
        return True

    def settled(self, observation: Observation, outcome: str) -> None:
        """A CON notification was acknowledged, reset or timed out."""
        observation.in_flight = False
        if outcome in ("ack", "reset", "timeout"):
            observation.resource.notification_settled(observation, outcome)
        if outcome != "ack":
            self.cancel(observation)
            return
        if observation.pending and observation.active and not self.holding(observation.peer.key):
            self.send(observation, observation.pending.pop(0))
