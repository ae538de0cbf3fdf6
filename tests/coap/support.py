"""
Helpers shared by the engine tests: the message layer driven as a transport
drives it (fake peers on one fake wire), and message builders.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.task import Clock
from txthings import coap as tx
from zope.interface import implementer

from gateway.coap import codec
from gateway.coap import numbers as n
from gateway.coap.layer import MessageLayer
from gateway.coap.params import EngineLimits, TransmissionParameters
from gateway.coap.peer import IPeer
from gateway.coap.resource import Resource

PEER = ("127.0.0.1", 40000)
OTHER = ("127.0.0.1", 40001)


class FakeTransport:
    """The wire: every datagram the engine sent, and to whom."""

    def __init__(self) -> None:
        self.written: list[tuple[bytes, Any]] = []

    def write(self, data: bytes, addr: Any) -> None:
        self.written.append((data, addr))

    def take(self) -> list[Any]:
        """Decoded messages written since the last call."""
        out = [codec.decode(data) for data, _ in self.written]
        self.written.clear()
        return out


@implementer(IPeer)
class FakePeer:
    """A peer whose datagrams go onto a L{FakeTransport}."""

    def __init__(
        self,
        transport: FakeTransport,
        address: tuple[str, int],
        params: TransmissionParameters,
        identity: Any = None,
    ) -> None:
        self.transport = transport
        self.address = self.key = address
        self.params = params
        self.identity = identity

    def send(self, data: bytes) -> None:
        self.transport.write(data, self.address)

    def __str__(self) -> str:
        return f"{self.address[0]}:{self.address[1]}"


class Engine:
    """
    A L{MessageLayer} fed by fake peers, one per address; its attributes
    (C{observations}, C{blockwise}, ...) are the layer's.
    """

    def __init__(self, layer: MessageLayer, transport: FakeTransport) -> None:
        self.layer = layer
        self.transport = transport
        self.peers: dict[tuple[str, int], FakePeer] = {}

    def peer(self, address: tuple[str, int] = PEER, identity: Any = None) -> FakePeer:
        peer = self.peers.get(address)
        if peer is None:
            peer = self.peers[address] = FakePeer(
                self.transport, address, self.layer.params, identity
            )
        return peer

    def feed(self, data: bytes, address: tuple[str, int] = PEER) -> None:
        """One datagram from the peer at C{address}."""
        self.layer.receive(self.peer(address), data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.layer, name)


def request(
    code: int = n.GET,
    path: str = "",
    mtype: int = n.CON,
    mid: int = 1,
    token: bytes = b"t1",
    payload: bytes = b"",
    options: tuple[tuple[int, Any], ...] = (),
) -> bytes:
    message = tx.Message(mtype=mtype, mid=mid, code=code, token=token, payload=payload)
    for segment in path.split("/"):
        if segment:
            message.opt.addOption(tx.StringOption(n.URI_PATH, segment.encode()))
    for number, value in options:
        if number in (n.BLOCK1, n.BLOCK2):
            option = tx.BlockOption(number, value)
        elif isinstance(value, int):
            option = tx.UintOption(number, value)
        else:
            option = tx.OpaqueOption(number, value)
        message.opt.addOption(option)
    return codec.encode(message)


def make_server(
    root: Resource, params: TransmissionParameters | None = None, limits: EngineLimits | None = None
) -> tuple[Engine, FakeTransport, Clock]:
    clock = Clock()
    transport = FakeTransport()
    engine = Engine(MessageLayer(root, clock, params=params, limits=limits), transport)
    return engine, transport, clock


def option(message: Any, number: int) -> Any:
    values = message.opt.getOption(number)
    return values[0].value if values else None
