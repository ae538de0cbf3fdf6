"""
The plain UDP transport: one datagram socket feeding the message layer.

Each source address is a L{UDPPeer}; the table of them is bounded, and an
address evicted from it keeps its engine state (keyed by address), so it is
only a cache of peer objects.
"""

from __future__ import annotations

import errno
from typing import Any, Callable

from twisted.internet.protocol import DatagramProtocol
from twisted.logger import Logger

from .layer import MessageLayer
from .peer import UDPPeer

__all__ = ["UDPTransport"]

log = Logger()


class UDPTransport(DatagramProtocol):
    """
    @param layer: the engine every datagram goes to.
    @param max_peers: peer objects kept at once (the engine limit by default).
    """

    def __init__(self, layer: MessageLayer, max_peers: int | None = None) -> None:
        self.layer = layer
        self._max_peers = layer.limits.max_peers if max_peers is None else max_peers
        self._peers: dict[Any, UDPPeer] = {}
        self._sendto: Callable[[bytes, Any], object] = lambda data, addr: None
        #: Sends that failed, for metrics.
        self.send_errors = 0

    @property
    def max_packet_size(self) -> int:
        """
        The receive size to listen with (C{listenUDP(maxPacketSize=...)}): one
        byte over the largest datagram the engine accepts, so that a larger
        one is seen to be too large instead of arriving silently cut short.
        """
        return self.layer.limits.max_datagram_size + 1

    def startProtocol(self) -> None:
        # Twisted's udp.Port.write re-validates the address text four times per
        # datagram; answers go to addresses the kernel just gave us, so send
        # on the socket directly when there is one.
        transport = self.transport
        assert transport is not None
        sock = getattr(transport, "socket", None)
        self._sendto = self._socket_sendto(sock) if sock is not None else transport.write

    def stopProtocol(self) -> None:
        self.layer.stop()
        self._peers.clear()

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
            peer = self._peers.get(addr)
            if peer is None:
                if len(self._peers) >= self._max_peers:
                    del self._peers[next(iter(self._peers))]
                peer = self._peers[addr] = UDPPeer(self._sendto, addr, self.layer.params)
            self.layer.receive(peer, data)
        except Exception:
            log.failure("Unexpected error on a datagram from {peer}", peer=str(addr))
