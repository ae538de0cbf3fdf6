"""
The CoAP message layer (RFC 7252 §4): datagrams from transports to exchanges.

Transports (plain UDP, DTLS) hand every datagram to L{MessageLayer.receive}
with the peer it came from, and the layer answers through C{peer.send}.
Datagrams go through the strict codec, deduplication per (peer, MID), then
the dispatcher; answers are piggybacked when the handler is quick, otherwise
an empty ACK is sent after the peer's C{piggyback_delay} and the answer
follows as a separate CON.  Nothing is logged per datagram: the hot path
only counts.
"""

from __future__ import annotations

import random
from typing import Any, Hashable

from twisted.internet.interfaces import IReactorTime

from . import codec
from . import numbers as n
from .blockwise import Blockwise
from .deadlines import Deadlines
from .dedup import Deduplicator
from .dispatch import Dispatcher, error_response
from .exchange import Exchange
from .notify import Notifier
from .observe import Observation, ObservationRegistry
from .params import EngineLimits, TransmissionParameters
from .peer import IPeer
from .resource import NotificationRenderer, Resource, WellKnownCore
from .transmit import Transmitter

__all__ = ["MessageLayer"]


class MessageLayer:
    """
    The engine serving the resource tree under C{root}.

    @param root: a L{gateway.coap.resource.Resource}; C{/.well-known/core} is
        added to it unless it has one.
    @param clock: schedules every timer of the engine.
    @param params: the transmission parameters transports give new peers.
    """

    def __init__(
        self,
        root: Any,
        clock: IReactorTime,
        params: TransmissionParameters | None = None,
        limits: EngineLimits | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.root = root
        self.clock = clock
        self.params = params or TransmissionParameters()
        self.limits = limits = limits or EngineLimits()
        self.dedup = Deduplicator(
            clock, limits.dedup_entries, limits.dedup_entries_per_peer, limits.dedup_bytes
        )
        self.transmitter = Transmitter(clock, limits.max_peers, rng)
        self.observations = ObservationRegistry(limits, self._notify)
        self.blockwise = Blockwise(clock, limits)
        self.dispatcher = Dispatcher(root, clock, limits, self.observations, self.blockwise)
        #: The empty ACKs due for requests still being served.
        self._piggyback = Deadlines(clock)
        self._notifier = Notifier(clock, self.transmitter, self.dispatcher, self.observations)
        if b".well-known" not in root.children:
            well_known = Resource()
            well_known.visible = False
            well_known.putChild(b"core", WellKnownCore(root))
            root.putChild(b".well-known", well_known)
        #: Datagrams dropped as malformed, for metrics.
        self.malformed = 0

    def receive(self, peer: IPeer, data: bytes) -> None:
        """Handle one datagram from C{peer} (plain UDP or a DTLS session)."""
        limits = self.limits
        if len(data) > limits.max_datagram_size:
            limit = limits.max_datagram_size
            self._refuse_unparsed(
                peer,
                data,
                n.REQUEST_ENTITY_TOO_LARGE,
                f"datagram over {limit} bytes: use Block1",
                size1=limit,
            )
            return
        try:
            message = codec.decode(data, limits.max_options)
        except codec.TooManyOptions:
            self._refuse_unparsed(
                peer, data, n.BAD_REQUEST, f"more than {limits.max_options} options"
            )
            return
        except codec.MessageFormatError as e:
            self.malformed += 1
            if e.mtype == n.CON and e.mid is not None:
                peer.send(codec.empty(n.RST, e.mid))
            return
        mtype = message.mtype
        code = message.code
        mid = message.mid
        if n.is_request(code):
            if mtype == n.ACK or mtype == n.RST:
                self.malformed += 1  # a request can't ride in an ACK or RST
                return
            entry = self.dedup.lookup(peer.key, mid, data)
            if entry is not None:
                if entry.response is not None:
                    peer.send(entry.response)
                return
            params = peer.params
            lifetime = params.exchange_lifetime if mtype == n.CON else params.non_lifetime
            entry = self.dedup.remember(peer.key, mid, data, lifetime)
            self._serve(Exchange(peer, message, entry))
        elif code == n.EMPTY:
            if mtype == n.CON:
                peer.send(codec.empty(n.RST, mid))  # CoAP ping
            elif mtype == n.ACK:
                self.transmitter.acknowledge(peer.key, mid)
            elif mtype == n.RST:
                if not self.transmitter.reset(peer.key, mid):
                    self.observations.reset(peer.key, mid)
        elif mtype == n.ACK:
            self.transmitter.acknowledge(peer.key, mid)
        elif mtype == n.CON:
            peer.send(codec.empty(n.RST, mid))  # a response we never asked for

    def _refuse_unparsed(
        self, peer: IPeer, data: bytes, code: int, diagnostic: str, **options: int
    ) -> None:
        # Only the header and token are read: the rest may be cut short.
        try:
            mtype, mid, token, request_code = codec.decode_header(data)
        except codec.MessageFormatError:
            self.malformed += 1
            return
        if not n.is_request(request_code) or mtype in (n.ACK, n.RST):
            self.malformed += 1
            return
        response = error_response(code, diagnostic, **options)
        response.token = token
        if mtype == n.CON:
            response.mtype, response.mid = n.ACK, mid
        else:
            response.mtype, response.mid = n.NON, self.transmitter.next_mid(peer.key)
        peer.send(codec.encode(response))

    def forget_peer(self, key: Hashable) -> None:
        """
        Drop every piece of state held for a peer (a closed DTLS session, an
        evicted address): dedup entries, exchanges, observations, holds and
        block-wise transfers.
        """
        self.dedup.forget_peer(key)
        self.transmitter.cancel_peer(key)
        self.observations.cancel_peer(key)
        self.blockwise.forget_peer(key)

    def hold(self, key: Hashable) -> None:
        """Keep notifications for this peer (asleep) until L{release}."""
        self.observations.hold(key)

    def release(self, key: Hashable) -> None:
        """Send the notifications held for this peer (awake again)."""
        self.observations.release(key)

    def stop(self) -> None:
        """Stop every retransmission (the transports are closing)."""
        self.transmitter.cancel_all()
        self._piggyback.clear()

    def _serve(self, exchange: Exchange) -> None:
        self.dispatcher.handle(exchange, self._respond)
        if exchange.done or exchange.request.mtype != n.CON:
            return
        if exchange.accepted:
            self._empty_ack(exchange)
        else:
            exchange.timer = self._piggyback.add(
                exchange.peer.params.piggyback_delay, self._empty_ack, exchange
            )

    def _empty_ack(self, exchange: Exchange) -> None:
        exchange.timer = None
        exchange.empty_acked = True
        data = codec.empty(n.ACK, exchange.request.mid)
        self.dedup.answered(exchange.entry, data)
        exchange.peer.send(data)

    def _respond(self, response: Any, exchange: Exchange) -> None:
        exchange.done = True
        if exchange.timer is not None:
            exchange.timer.cancel()
            exchange.timer = None
        request = exchange.request
        request.exchange = None  # the dispatcher's link back: no cycle left for the GC
        peer = exchange.peer
        response.token = request.token
        if request.mtype == n.CON and not exchange.empty_acked:
            response.mtype = n.ACK
            response.mid = request.mid
        else:
            response.mtype = n.CON if request.mtype == n.CON else n.NON
            response.mid = self.transmitter.next_mid(peer.key)
        data = codec.encode(response)
        if response.mtype == n.CON:
            self.transmitter.send_confirmable(peer, response.mid, data)
        else:
            self.dedup.answered(exchange.entry, data)
            peer.send(data)

    def _notify(self, observation: Observation, render: NotificationRenderer | None) -> None:
        self._notifier.send(observation, render)
