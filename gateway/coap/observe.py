"""
Observe registrations (RFC 7641): who watches which resource, under caps.

An observation lives in its resource's C{observers} dict (txThings' API, so
C{resource.updatedState()} triggers it) and in the registry's table keyed by
(peer, token).  It ends on deregistration (Observe=1), on an RST to a
notification, when a CON notification's retransmissions run out, when a
notification is not a 2.xx, or when its peer is dropped.

Caps: in total, per resource and per peer, and on the size of what is kept
of the registering request (its options, minus those that concerned only
the registering exchange; the option objects are shared, not copied).

Notifications for a peer on hold (a device known to sleep) wait, coalesced
and bounded like those behind a CON in flight, until it is released.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Callable, Hashable

from txthings import coap as tx

from . import numbers as n
from .options import table as option_table
from .params import EngineLimits
from .peer import IPeer
from .resource import NotificationRenderer

_SEQ_MASK = 0xFFFFFF
#: NON notifications remembered so an RST to one cancels its observation.
_RECENT_NON = 10_000
#: Pending notifications kept per observer while a CON one is in flight.
_MAX_PENDING = 16
#: Options that concern only the registering exchange, not the notifications.
_EXCHANGE_ONLY = frozenset((n.OBSERVE, n.BLOCK2, n.BLOCK1, n.SIZE2, n.SIZE1))
#: What one kept option is charged for besides its value.
_OPTION_OVERHEAD = 64


def _kept_request(request: Any) -> tuple[Any, int]:
    """The request later notifications re-render, and the bytes it is charged."""
    kept = tx.Message(code=request.code, mtype=request.mtype, mid=request.mid, token=request.token)
    table = option_table(kept)
    size = 0
    for number, options in option_table(request).items():
        if number not in _EXCHANGE_ONLY:
            table[number] = list(options)
            for option in options:
                value = option.value
                size += _OPTION_OVERHEAD + (len(value) if isinstance(value, bytes) else 8)
    for name in ("peer", "remote", "prepath", "postpath"):
        setattr(kept, name, getattr(request, name, None))
    return kept, size


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
        self, registry: ObservationRegistry, resource: Any, peer: IPeer, kept: Any, now: float
    ) -> None:
        self.registry = registry
        self.resource = resource
        self.peer = peer
        self.token: bytes = kept.token
        self.request = kept
        self.confirmable: bool = kept.mtype == n.CON
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
        limits: EngineLimits,
        send: Callable[[Observation, NotificationRenderer | None], None],
    ) -> None:
        self._limits = limits
        self.send = send
        self._per_peer: dict[Hashable, int] = {}
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
        limits = self._limits
        if (
            len(self._table) >= limits.max_observers
            or len(resource.observers) >= limits.max_observers_per_resource
            or self._per_peer.get(peer.key, 0) >= limits.max_observers_per_peer
        ):
            return None
        kept, size = _kept_request(request)
        if size > limits.max_observe_request_bytes:
            return None
        observation = Observation(self, resource, peer, kept, now)
        self._table[key] = observation
        self._per_peer[peer.key] = self._per_peer.get(peer.key, 0) + 1
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
        if self._table.pop(observation.key, None) is not None:
            peer_key = observation.peer.key
            left = self._per_peer[peer_key] - 1
            if left:
                self._per_peer[peer_key] = left
            else:
                del self._per_peer[peer_key]
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
