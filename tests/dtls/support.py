"""
The DTLS layer driven in memory: a L{DTLSTransport} on a fake wire, clients
from C{scripts/dtls_client.py} (pyOpenSSL memory BIOs) and a Clock.
"""

from __future__ import annotations

import sys
from functools import lru_cache
from pathlib import Path
from typing import Any, Hashable, Optional

from twisted.internet.task import Clock

from gateway.coap.params import TransmissionParameters
from gateway.coap.peer import IPeer
from gateway.dtls import certs
from gateway.dtls.context import ServerCredentials
from gateway.dtls.credentials import MemoryCredentials
from gateway.dtls.settings import DTLSSettings
from gateway.dtls.transport import DTLSTransport

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))

from dtls_client import MemoryClient  # noqa: E402

__all__ = ["MemoryClient", "Harness", "test_ca", "PSK_ID", "PSK_KEY", "ADDRESS", "OTHER"]

PSK_ID = "device-1"
PSK_KEY = b"secretkey"
ADDRESS = ("127.0.0.1", 40000)
OTHER = ("127.0.0.1", 40001)


@lru_cache(maxsize=1)
def test_ca() -> tuple[certs.Issued, ServerCredentials]:
    """A CA and the server credentials it signs (made once: key generation costs)."""
    ca = certs.make_ca()
    server = certs.make_server(ca)
    return ca, ServerCredentials(chain=(server.cert, ca.cert), key=server.key)


class Engine:
    """The engine's seam, recording: answers every datagram with C{b"echo:" + datagram}."""

    params = TransmissionParameters()

    def __init__(self) -> None:
        self.received: list[tuple[IPeer, bytes]] = []
        self.forgotten: list[Hashable] = []

    def receive(self, peer: IPeer, data: bytes) -> None:
        self.received.append((peer, data))
        peer.send(b"echo:" + data)

    def forget_peer(self, key: Hashable) -> None:
        self.forgotten.append(key)


class Wire:
    def __init__(self) -> None:
        self.written: list[tuple[bytes, Any]] = []

    def write(self, data: bytes, addr: Any) -> None:
        self.written.append((data, addr))

    def take(self, addr: Any) -> list[bytes]:
        """The datagrams sent to C{addr} since the last take."""
        mine = [data for data, to in self.written if to == addr]
        self.written = [(data, to) for data, to in self.written if to != addr]
        return mine


class Harness:
    def __init__(
        self,
        settings: Optional[DTLSSettings] = None,
        engine: Any = None,
        clock: Optional[Clock] = None,
        psk_hint: str = "",
    ) -> None:
        self.clock = clock or Clock()
        self.engine = engine if engine is not None else Engine()
        self.credentials = MemoryCredentials(psk={PSK_ID: PSK_KEY})
        self.ca, server = test_ca()
        self.transport = DTLSTransport(
            self.engine, server, self.clock, settings, psk_hint, self.credentials
        )
        self.wire = Wire()
        self.transport.makeConnection(self.wire)  # type: ignore[arg-type]

    def feed(self, datagrams: list[bytes], addr: Any = ADDRESS) -> list[bytes]:
        """Hand datagrams to the transport; what it sent back to C{addr}."""
        for data in datagrams:
            self.transport.datagramReceived(data, addr)
        return self.wire.take(addr)

    def connect(self, client: MemoryClient, addr: Any = ADDRESS, rounds: int = 10) -> MemoryClient:
        """Run the handshake to its end (or until nobody has anything to say)."""
        pending = client.start()
        for _ in range(rounds):
            answers = self.feed(pending, addr)
            pending = [out for data in answers for out in client.receive(data)]
            if not pending:
                break
        return client

    def psk_client(self, identity: str = PSK_ID, key: bytes = PSK_KEY, **kw: Any) -> MemoryClient:
        return MemoryClient(psk=(identity, key), **kw)

    def ca_pem(self) -> bytes:
        return certs.cert_pem(self.ca.cert)

    def exchange(self, client: MemoryClient, data: bytes, addr: Any = ADDRESS) -> list[bytes]:
        """Send application data; the application data the client got back."""
        before = len(client.received)
        for answer in self.feed(client.send(data), addr):
            client.receive(answer)
        return client.received[before:]
