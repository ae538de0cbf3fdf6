"""Helpers shared by the engine tests: a fake socket and message builders."""

from __future__ import annotations

from typing import Any

from twisted.internet.task import Clock
from txthings import coap as tx

from gateway.coap import codec
from gateway.coap import numbers as n
from gateway.coap.params import EngineLimits, TransmissionParameters
from gateway.coap.resource import Resource
from gateway.coap.server import CoAPServer

PEER = ("127.0.0.1", 40000)
OTHER = ("127.0.0.1", 40001)


class FakeTransport:
    def __init__(self) -> None:
        self.written: list[tuple[bytes, Any]] = []

    def write(self, data: bytes, addr: Any) -> None:
        self.written.append((data, addr))

    def take(self) -> list[Any]:
        """Decoded messages written since the last call."""
        out = [codec.decode(data) for data, _ in self.written]
        self.written.clear()
        return out


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
) -> tuple[CoAPServer, FakeTransport, Clock]:
    clock = Clock()
    server = CoAPServer(root, clock, params=params, limits=limits)
    transport = FakeTransport()
    server.makeConnection(transport)  # type: ignore[arg-type]
    return server, transport, clock


def option(message: Any, number: int) -> Any:
    values = message.opt.getOption(number)
    return values[0].value if values else None
