# -*- test-case-name: tests.dtls.test_transport -*-
"""
L{DTLSTransport}: CoAP over DTLS 1.2 on one UDP socket, feeding the engine's
C{receive(peer, datagram)} seam with one L{DTLSSession} per client address.

A datagram from an address without a session is read in Python first
(L{gateway.dtls.records}); anything but an epoch-0 ClientHello is dropped.
A ClientHello without a valid cookie (L{gateway.dtls.cookies}) gets a
HelloVerifyRequest and leaves nothing behind; with one, the source host's
handshake budget is charged and the session table checked before a session
is made.  A ClientHello with a new random from an address that has a
session is a client that lost its state: it goes through the cookie check
too, and replaces the old session once verified (RFC 6347 §4.2.8).

One sweeper on the injected clock ends handshakes past
C{handshake_timeout} and sessions idle past C{inactivity_timeout} (with
close_notify).  A closed session's engine state (dedup, exchanges,
observations, block-wise transfers) goes with it.  Stopping sends
close_notify to every open session.
"""

from __future__ import annotations

import errno
import itertools
from typing import Any, Callable, Hashable, Optional, Protocol

from OpenSSL import SSL
from twisted.internet.interfaces import IReactorTime
from twisted.internet.protocol import DatagramProtocol
from twisted.internet.task import LoopingCall
from twisted.logger import Logger

from gateway.coap.params import TransmissionParameters
from gateway.coap.peer import IPeer, normalise_host

from .context import Contexts, ServerCredentials
from .cookies import CookieSecrets
from .counters import MODES, DTLSCounters
from .credentials import IDTLSCredentials, MemoryCredentials
from .ratelimit import HandshakeBudget
from .records import CONTENT_HANDSHAKE, parse_client_hello
from .session import DTLSSession, State
from .settings import DTLSSettings

__all__ = ["DTLSTransport", "Engine"]

log = Logger()


class Engine(Protocol):
    """The engine's side of the seam (L{gateway.coap.layer.MessageLayer})."""

    @property
    def params(self) -> TransmissionParameters: ...

    def receive(self, peer: IPeer, data: bytes) -> None: ...

    def forget_peer(self, key: Hashable) -> None: ...


class _Probe:
    """The app data of a throw-away Connection that only answers HelloVerifyRequests."""

    __slots__ = ("address",)

    def __init__(self, address: Any) -> None:
        self.address = address


class DTLSTransport(DatagramProtocol):
    """
    @param credentials: where PSK keys and registered certificates are found
        (replaceable: the application sets the service layer's once it is open).
    @ivar counters: what has happened, for the API.
    """

    def __init__(
        self,
        layer: Engine,
        server: ServerCredentials,
        clock: IReactorTime,
        settings: Optional[DTLSSettings] = None,
        psk_hint: str = "",
        credentials: Optional[IDTLSCredentials] = None,
        cookie_random: Optional[Callable[[int], bytes]] = None,
    ) -> None:
        self.layer = layer
        self.clock = clock
        self.settings = settings = settings or DTLSSettings()
        self.credentials: IDTLSCredentials = credentials or MemoryCredentials()
        if cookie_random is None:
            self._cookies = CookieSecrets(clock, settings.cookie_rotation)
        else:
            self._cookies = CookieSecrets(clock, settings.cookie_rotation, cookie_random)
        self.contexts = Contexts(server, self._cookies, lambda: self.credentials, psk_hint)
        self._budget = HandshakeBudget(
            clock, settings.handshakes_per_source, settings.handshake_refill, settings.max_sources
        )
        self._sessions: dict[Any, DTLSSession] = {}
        self._serial = itertools.count(1)
        self._sweeper = LoopingCall(self._sweep)
        self._sweeper.clock = clock
        self._sendto: Callable[[bytes, Any], object] = lambda data, address: None
        self.counters = DTLSCounters()
        #: Sends that failed, for metrics.
        self.send_errors = 0

    # -- the socket --------------------------------------------------------------

    def startProtocol(self) -> None:
        transport = self.transport
        assert transport is not None
        sock = getattr(transport, "socket", None)
        self._sendto = sock.sendto if sock is not None else transport.write
        self._sweeper.start(self.settings.sweep_interval, now=False)

    def stopProtocol(self) -> None:
        if self._sweeper.running:
            self._sweeper.stop()
        for session in list(self._sessions.values()):
            session.close("shutdown", notify=True)

    def sendto(self, data: bytes, address: Any) -> None:
        try:
            self._sendto(data, address)
        except OSError as e:
            self.send_errors += 1
            if e.errno == errno.EMSGSIZE:
                log.warn("Datagram of {size} bytes too large for {peer}", size=len(data),
                         peer=address)

    def datagramReceived(self, data: bytes, addr: Any) -> None:
        try:
            session = self._sessions.get(addr)
            if session is not None and not (
                data[0] == CONTENT_HANDSHAKE and self._new_hello(session, data)
            ):
                session.received(data)
            else:
                self._unknown(data, addr, session)
        except Exception:
            log.failure("Unexpected error on a DTLS datagram from {peer}", peer=str(addr))

    @staticmethod
    def _new_hello(session: DTLSSession, data: bytes) -> bool:
        hello = parse_client_hello(data)
        return hello is not None and hello.random != session.hello_random

    # -- the stateless front end ---------------------------------------------

    def _unknown(self, data: bytes, addr: Any, old: Optional[DTLSSession]) -> None:
        hello = parse_client_hello(data)
        counters = self.counters
        if hello is None:
            counters.not_client_hello += 1
            return
        if not self._cookies.check(addr, hello.cookie):
            if hello.cookie:
                counters.cookie_rejections += 1
            self._verify_request(data, addr)
            return
        if not self._budget.take(normalise_host(addr[0])):
            counters.rate_limited += 1
            return
        if old is not None:
            old.close("replaced", notify=False)
        if len(self._sessions) >= self.settings.max_sessions:
            counters.session_limit += 1
            return
        conn = SSL.Connection(self.contexts.for_hello(hello), None)
        session = DTLSSession(
            self, conn, addr, self.layer.params, next(self._serial), hello.random
        )
        self._sessions[addr] = session
        session.start(data)

    def _verify_request(self, data: bytes, addr: Any) -> None:
        conn = SSL.Connection(self.contexts.strict, None)
        conn.set_app_data(_Probe(addr))
        conn.set_accept_state()
        conn.bio_write(data)
        try:
            conn.DTLSv1_listen()
        except SSL.WantReadError:
            pass
        except SSL.Error:
            self.counters.not_client_hello += 1
            return
        try:
            answer = conn.bio_read(2048)
        except SSL.WantReadError:
            return
        self.counters.hello_verify_requests += 1
        self.sendto(answer, addr)

    # -- what sessions report ----------------------------------------------------

    def deliver(self, session: DTLSSession, data: bytes) -> None:
        self.layer.receive(session, data)

    def opened(self, session: DTLSSession) -> None:
        self.counters.handshake(session.mode, "ok")
        log.debug(
            "DTLS session with {peer} open ({mode}, {identity})",
            peer=str(session), mode=session.mode, identity=str(session.identity),
        )

    def closed(self, session: DTLSSession, reason: str) -> None:
        if self._sessions.get(session.address) is session:
            del self._sessions[session.address]
        self.layer.forget_peer(session.key)
        counters = self.counters
        if reason in ("handshake-failed", "handshake-timeout"):
            outcome = "failed" if reason == "handshake-failed" else "timeout"
            counters.handshake(session.mode, outcome)
            refusal = session.refusal
            if outcome == "timeout" and session.psk_found:
                refusal = (
                    f"PSK identity {session.psk_identity!r} was found, but the handshake"
                    " did not finish: probably a wrong key"
                )
            log.info(
                "DTLS handshake with {peer} {outcome}: {reason}",
                peer=str(session), outcome="timed out" if outcome == "timeout" else "failed",
                reason=refusal or "no answer", mode=session.mode,
            )
        elif reason == "replaced":
            counters.replaced += 1
        elif reason == "idle":
            counters.idle_timeouts += 1
        elif reason in ("close_notify", "alert"):
            counters.closed_by_client += 1
        log.debug("DTLS session with {peer} closed: {reason}", peer=str(session), reason=reason)

    # -- timers --------------------------------------------------------------

    def _sweep(self) -> None:
        now = self.clock.seconds()
        settings = self.settings
        handshake_deadline = now - settings.handshake_timeout
        idle_deadline = now - settings.inactivity_timeout
        for session in list(self._sessions.values()):
            if session.state is State.HANDSHAKE:
                if session.started <= handshake_deadline:
                    session.close("handshake-timeout", notify=False)
            elif session.last_seen <= idle_deadline:
                session.close("idle", notify=True)

    # -- reporting -------------------------------------------------------------

    def session(self, address: Any) -> Optional[DTLSSession]:
        """The session of a client address, if there is one."""
        return self._sessions.get(address)

    def __len__(self) -> int:
        return len(self._sessions)

    def report(self) -> dict[str, Any]:
        """Sessions and counters, as C{GET /api/v1/dtls} shows them."""
        by_mode = dict.fromkeys(MODES, 0)
        handshaking = 0
        for session in self._sessions.values():
            if session.state is State.OPEN:
                by_mode[session.mode] += 1
            else:
                handshaking += 1
        settings = self.settings
        return {
            "sessions": {"open": sum(by_mode.values()), "handshaking": handshaking,
                         "by_mode": by_mode, "max": settings.max_sessions},
            **self.counters.report(),
            "send_errors": self.send_errors,
            "settings": {
                "mtu": settings.mtu,
                "handshake_timeout": settings.handshake_timeout,
                "inactivity_timeout": settings.inactivity_timeout,
                "handshakes_per_source": settings.handshakes_per_source,
                "handshake_refill": settings.handshake_refill,
            },
        }
