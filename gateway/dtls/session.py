# -*- test-case-name: tests.dtls.test_transport -*-
"""
L{DTLSSession}: one client's DTLS association, an C{SSL.Connection} over
memory BIOs, and the engine's peer for it (L{gateway.coap.peer.IPeer}).

A session exists only once its ClientHello carried a valid cookie.  It
handshakes, then decrypts datagrams for the engine and encrypts the
engine's answers.  Output is packed into datagrams of at most the MTU.

Retransmission: OpenSSL's own DTLS timer compares against the wall clock
inside the library, so an injected clock cannot drive it.  The session
keeps the last flight it sent instead and sends it again on the injected
clock while OpenSSL waits for the client's next flight (its timer is
running), first after C{retransmit_initial} seconds, doubling up to
C{retransmit_max}, as RFC 6347 §4.2.4 and OpenSSL do.  A retransmitted
client flight still makes OpenSSL resend its own at once.
"""

from __future__ import annotations

import enum
from typing import Any, Hashable, Optional, Protocol

from OpenSSL import SSL
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from zope.interface import implementer

from gateway.coap.params import TransmissionParameters
from gateway.coap.peer import IPeer, PeerIdentity, normalise_host

from .fastpath import RecordIO
from .records import pack, single_record
from .settings import DTLSSettings

__all__ = ["DTLSSession", "SessionOwner", "State"]

#: Receive buffer: more than any datagram the transport accepts.
_READ_SIZE = 16384
_APPLICATION_DATA = 23
#: The application-data path's buffers, shared by every session of the process.
_RECORDS = RecordIO(_READ_SIZE)


class State(enum.Enum):
    HANDSHAKE = "handshake"
    OPEN = "open"
    CLOSED = "closed"


class SessionOwner(Protocol):
    """What a session reports to (the transport)."""

    clock: IReactorTime
    settings: DTLSSettings

    def sendto(self, data: bytes, address: Any) -> None: ...

    def deliver(self, session: "DTLSSession", data: bytes) -> None: ...

    def opened(self, session: "DTLSSession") -> None: ...

    def closed(self, session: "DTLSSession", reason: str) -> None: ...


@implementer(IPeer)
class DTLSSession:
    """
    @ivar mode: what the client authenticated with so far: C{"psk"},
        C{"x509"} or C{"one_way"} (the server's certificate only).
    @ivar hello_random: the random of the ClientHello that made it: another
        one from the same address is a client starting over.
    """

    def __init__(
        self,
        owner: SessionOwner,
        conn: SSL.Connection,
        address: Any,
        params: TransmissionParameters,
        serial: int,
        hello_random: bytes,
    ) -> None:
        self._owner = owner
        self._conn = conn
        self.address = address
        self.params = params
        self.key: Hashable = ("dtls", address, serial)
        self.hello_random = hello_random
        self.identity: Optional[PeerIdentity] = None
        self.state = State.HANDSHAKE
        now = owner.clock.seconds()
        self.started = now
        self.last_seen = now
        self.mode = "one_way"
        #: Set by the PSK callback: the identity asked for, and whether it is known.
        self.psk_identity: Optional[str] = None
        self.psk_found = False
        #: Set by the verify callback: the client certificate's SHA-256 hex.
        self.client_certificate: Optional[str] = None
        self.chain_ok = True
        self.refusal: Optional[str] = None
        self._flight: list[bytes] = []
        self._retransmit: Optional[IDelayedCall] = None
        self._delay = owner.settings.retransmit_initial
        conn.set_app_data(self)
        conn.set_accept_state()

    # -- called by OpenSSL's callbacks ------------------------------------------

    def psk_looked_up(self, identity: str, found: bool) -> None:
        self.mode = "psk"
        self.psk_identity = identity
        self.psk_found = found
        if not found:
            self.refusal = f"unknown PSK identity {identity!r}"

    def refused(self, reason: str) -> None:
        self.mode = "x509"
        self.refusal = reason

    # -- IPeer -------------------------------------------------------------------

    def send(self, data: bytes) -> None:
        """Encrypt one CoAP message into one record and send it."""
        if self.state is not State.OPEN:
            return
        try:
            out = _RECORDS.encrypt(self._conn, data)
        except SSL.Error as e:
            self.refusal = f"cannot encrypt: {_reason(e)}"
            self.close("error", notify=False)
            return
        mtu = self._owner.settings.mtu
        for datagram in pack(out, mtu) if len(out) > mtu else (out,):
            self._owner.sendto(datagram, self.address)

    @property
    def host(self) -> str:
        return normalise_host(self.address[0])

    def __str__(self) -> str:
        host, port = self.host, self.address[1]
        return f"dtls [{host}]:{port}" if ":" in host else f"dtls {host}:{port}"

    # -- datagrams -------------------------------------------------------------

    def start(self, hello: bytes) -> None:
        """Take the cookie-verified ClientHello and answer with the server's flight."""
        conn = self._conn
        conn.bio_write(hello)
        try:
            conn.DTLSv1_listen()
        except SSL.Error:
            self.close("handshake-failed", notify=False)
            return
        conn.set_ciphertext_mtu(self._owner.settings.mtu)
        self._handshake()

    def received(self, data: bytes) -> None:
        """One datagram from the client."""
        self.last_seen = self._owner.clock.seconds()
        conn = self._conn
        if self.state is State.OPEN and data[0] == _APPLICATION_DATA and single_record(data):
            try:
                plain = _RECORDS.decrypt(conn, data)
            except SSL.WantReadError:
                return  # a record that does not decrypt is dropped, as RFC 6347 asks
            except SSL.Error as e:
                self._read_failed(e)
                return
            self._owner.deliver(self, plain)
            return
        conn.bio_write(data)
        if self.state is State.HANDSHAKE:
            self._handshake()
            return
        self._read_all()
        if self.state is State.OPEN:
            self._flush()  # e.g. the final flight again, for a retransmitted Finished

    def _read_all(self) -> None:
        conn = self._conn
        while self.state is State.OPEN:
            try:
                plain = conn.recv(_READ_SIZE)
            except SSL.WantReadError:
                return
            except SSL.Error as e:
                self._read_failed(e)
                return
            self._owner.deliver(self, plain)

    def _read_failed(self, error: SSL.Error) -> None:
        if isinstance(error, SSL.ZeroReturnError):
            self.close("close_notify", notify=True)
        else:
            self._flush()
            self.close("alert", notify=False)

    # -- handshake ---------------------------------------------------------------

    def _handshake(self) -> None:
        conn = self._conn
        try:
            conn.do_handshake()
        except SSL.WantReadError:
            done = False
        except SSL.Error as e:
            self._flush()
            if self.refusal is None:
                self.refusal = _reason(e)
            self.close("handshake-failed", notify=False)
            return
        else:
            done = True
        out = self._drain()
        if out:
            self._flight = pack(out, self._owner.settings.mtu)
            self._send_flight()
            self._delay = self._owner.settings.retransmit_initial
        if done:
            self._stop_retransmit()
            self._flight = []
            self._opened()
        elif out:
            self._schedule_retransmit()

    def _opened(self) -> None:
        conn = self._conn
        self.state = State.OPEN
        if self.psk_identity is not None and "PSK" in (conn.get_cipher_name() or ""):
            self.mode = "psk"
            self.identity = PeerIdentity("psk", self.psk_identity)
        elif self.client_certificate is not None:
            self.mode = "x509"
            self.identity = PeerIdentity("x509", self.client_certificate)
        else:
            self.mode = "one_way"
        self._owner.opened(self)
        self._read_all()

    def _schedule_retransmit(self) -> None:
        self._stop_retransmit()
        self._retransmit = self._owner.clock.callLater(self._delay, self._retransmit_flight)

    def _stop_retransmit(self) -> None:
        if self._retransmit is not None and self._retransmit.active():
            self._retransmit.cancel()
        self._retransmit = None

    def _retransmit_flight(self) -> None:
        self._retransmit = None
        if self.state is not State.HANDSHAKE or not self._flight:
            return
        self._send_flight()
        settings = self._owner.settings
        self._delay = min(self._delay * 2, settings.retransmit_max)
        self._schedule_retransmit()

    def _send_flight(self) -> None:
        for datagram in self._flight:
            self._owner.sendto(datagram, self.address)

    # -- output and closing ------------------------------------------------------

    def _drain(self) -> bytes:
        try:
            return self._conn.bio_read(65536)
        except SSL.WantReadError:
            return b""

    def _flush(self) -> None:
        out = self._drain()
        if out:
            for datagram in pack(out, self._owner.settings.mtu):
                self._owner.sendto(datagram, self.address)

    def close(self, reason: str, notify: bool) -> None:
        """
        End the session (once); C{notify} sends close_notify first.  The
        owner hears of it and drops the engine's state for the peer.
        """
        if self.state is State.CLOSED:
            return
        if notify and self.state is State.OPEN:
            try:
                self._conn.shutdown()
            except SSL.Error:
                pass
            self._flush()
        self.state = State.CLOSED
        self._stop_retransmit()
        self._flight = []
        self._owner.closed(self, reason)


def _reason(error: SSL.Error) -> str:
    for entry in error.args[0] if error.args and isinstance(error.args[0], list) else ():
        if isinstance(entry, tuple) and entry:
            return str(entry[-1])
    return str(error) or type(error).__name__

