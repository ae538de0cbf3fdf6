"""
The CoAP server endpoint: RFC 7252 message layer over one datagram socket.

Datagrams go through the strict codec, deduplication per (peer, MID), then
the dispatcher; answers are piggybacked when the handler is quick, otherwise
an empty ACK is sent after C{piggyback_delay} and the answer follows as a
separate CON.  Nothing is logged per datagram: the hot path only counts.
"""

from __future__ import annotations

import errno
import random
from typing import Any, Callable

from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.internet.protocol import DatagramProtocol
from twisted.logger import Logger

from . import codec
from . import numbers as n
from .blockwise import Blockwise
from .dedup import Deduplicator, Entry
from .dispatch import Dispatcher
from .observe import Observation, ObservationRegistry
from .params import EngineLimits, TransmissionParameters
from .peer import IPeer, UDPPeer
from .resource import NotificationRenderer, Resource, WellKnownCore
from .transmit import Transmitter

log = Logger()

_DAY = 24 * 3600.0


class _Responder:
    """Answers one received request once its handler is done."""

    __slots__ = ("server", "peer", "request", "entry", "done", "empty_acked", "timer")

    def __init__(self, server: CoAPServer, peer: IPeer, request: Any, entry: Entry) -> None:
        self.server = server
        self.peer = peer
        self.request = request
        self.entry = entry
        self.done = False
        self.empty_acked = False
        self.timer: IDelayedCall | None = None

    def send_empty_ack(self) -> None:
        self.timer = None
        self.empty_acked = True
        data = codec.empty(n.ACK, self.request.mid)
        self.entry.response = data
        self.peer.send(data)

    def respond(self, response: Any) -> None:
        self.done = True
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        request = self.request
        server = self.server
        response.token = request.token
        if request.mtype == n.CON and not self.empty_acked:
            response.mtype = n.ACK
            response.mid = request.mid
        else:
            response.mtype = n.CON if request.mtype == n.CON else n.NON
            response.mid = server.transmitter.next_mid(self.peer.key)
        data = codec.encode(response)
        if response.mtype == n.CON:
            server.transmitter.send_confirmable(self.peer, response.mid, data)
        else:
            self.entry.response = data
            self.peer.send(data)


class CoAPServer(DatagramProtocol):
    """
    A CoAP server for the resource tree under C{root}.

    @param root: a L{gateway.coap.resource.Resource}; C{/.well-known/core} is
        added to it unless it has one.
    @param clock: schedules every timer of the engine.
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
        self.params = params = params or TransmissionParameters()
        self.limits = limits = limits or EngineLimits()
        self.dedup = Deduplicator(
            clock,
            params.exchange_lifetime,
            params.non_lifetime,
            limits.dedup_entries,
            limits.dedup_entries_per_peer,
        )
        self.transmitter = Transmitter(clock, params, limits.max_peers, rng)
        self.observations = ObservationRegistry(
            limits.max_observers, limits.max_observers_per_resource, self._notify
        )
        self.blockwise = Blockwise(clock, limits)
        self.dispatcher = Dispatcher(root, clock, limits, self.observations, self.blockwise)
        if b".well-known" not in root.children:
            well_known = Resource()
            well_known.visible = False
            well_known.putChild(b"core", WellKnownCore(root))
            root.putChild(b".well-known", well_known)
        self._udp_peers: dict[Any, UDPPeer] = {}
        self._sendto: Callable[[bytes, Any], object] = lambda data, addr: None
        #: Datagrams dropped as malformed, and sends that failed, for metrics.
        self.malformed = 0
        self.send_errors = 0

    def startProtocol(self) -> None:
        # Twisted's udp.Port.write re-validates the address text four times per
        # datagram; answers go to addresses the kernel just gave us, so send
        # on the socket directly when there is one.
        transport = self.transport
        assert transport is not None
        sock = getattr(transport, "socket", None)
        self._sendto = self._socket_sendto(sock) if sock is not None else transport.write

    def stopProtocol(self) -> None:
        self.transmitter.cancel_all()
        self._udp_peers.clear()

    def _socket_sendto(self, sock: Any) -> Callable[[bytes, Any], object]:
        sendto = sock.sendto

        def send(data: bytes, addr: Any) -> None:
            try:
                sendto(data, addr)
            except OSError as e:
                self.send_errors += 1
                if e.errno == errno.EMSGSIZE:
                    log.warn(
                        "Datagram of {size} bytes too large for {peer}", size=len(data), peer=addr
                    )

        return send

    def datagramReceived(self, data: bytes, addr: Any) -> None:
        try:
            peer = self._udp_peers.get(addr)
            if peer is None:
                if len(self._udp_peers) >= self.limits.max_peers:
                    del self._udp_peers[next(iter(self._udp_peers))]
                peer = self._udp_peers[addr] = UDPPeer(self._sendto, addr)
            self.receive(peer, data)
        except Exception:
            log.failure("Unexpected error on a datagram from {peer}", peer=str(addr))

    def receive(self, peer: IPeer, data: bytes) -> None:
        """Handle one datagram from C{peer} (plain UDP or a DTLS session)."""
        try:
            message = codec.decode(data)
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
            entry = self.dedup.remember(peer.key, mid, data, mtype == n.CON)
            self._serve(peer, message, entry)
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

    def forget_peer(self, key: Any) -> None:
        """Drop every piece of state held for a peer (e.g. a closed DTLS session)."""
        self._udp_peers.pop(key, None)
        self.dedup.forget_peer(key)
        self.transmitter.cancel_peer(key)
        self.observations.cancel_peer(key)

    def _serve(self, peer: IPeer, request: Any, entry: Entry) -> None:
        responder = _Responder(self, peer, request, entry)
        self.dispatcher.handle(request, peer, responder.respond)
        if not responder.done and request.mtype == n.CON:
            responder.timer = self.clock.callLater(
                self.params.piggyback_delay, responder.send_empty_ack
            )

    def _notify(self, observation: Observation, render: NotificationRenderer | None) -> None:
        d = self.dispatcher.render_notification(observation, render)
        d.addCallback(self._send_notification, observation)

    def _send_notification(self, response: Any, observation: Observation) -> None:
        if not observation.active:
            return
        peer = observation.peer
        success = 64 <= response.code < 96
        now = self.clock.seconds()
        confirmable = (
            observation.confirmable or not success or now - observation.last_confirmable >= _DAY
        )
        if confirmable and observation.in_flight:
            observation.pending.insert(0, None)
            return
        response.token = observation.token
        if success:
            response.opt.observe = observation.next_seq()
        response.mid = self.transmitter.next_mid(peer.key)
        if confirmable:
            response.mtype = n.CON
            observation.in_flight = True
            observation.last_confirmable = now
            self.transmitter.send_confirmable(
                peer,
                response.mid,
                codec.encode(response),
                lambda outcome: self.observations.settled(observation, outcome),
            )
        else:
            response.mtype = n.NON
            peer.send(codec.encode(response))
            self.observations.sent_non(peer.key, response.mid, observation)
        if not success:
            self.observations.cancel(observation)
