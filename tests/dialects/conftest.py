"""
Fixtures for the dialect tests: the engine with a fake socket, a Clock and
the in-memory service layer, and a ThingsBoard device with a known token.
"""

from __future__ import annotations

from typing import Any, Iterator

import pytest
from twisted.internet.task import Clock
from txthings import coap as tx

from gateway.coap import codec
from gateway.coap import numbers as n
from gateway.coap.layer import MessageLayer
from gateway.coap.resource import Resource
from gateway.dialects.thingsboard import ThingsBoardDialect
from gateway.service.build import Services
from tests.coap.support import PEER, Engine, FakeTransport, request
from tests.service.conftest import result

TOKEN = "A1_TEST_TOKEN"


class Harness:
    """Sends requests to the engine serving the ThingsBoard dialect."""

    def __init__(self, clock: Clock, services: Services, dialect: ThingsBoardDialect) -> None:
        self.clock = clock
        self.services = services
        self.root = Resource()
        dialect.install(self.root, services.devices, clock)
        self.transport = FakeTransport()
        self.server = Engine(MessageLayer(self.root, clock), self.transport)
        self._mid = 0
        self.device_id = result(
            services.registry.create_device("dev", access_token=TOKEN)
        ).device.id

    def send(
        self,
        code: int,
        path: str,
        payload: bytes = b"",
        options: tuple[tuple[int, Any], ...] = (),
        token: bytes = b"t1",
        mtype: int = n.CON,
        peer: tuple[str, int] = PEER,
        one_option: bool = False,
    ) -> list[Any]:
        """Send one request; return what the server wrote back (decoded)."""
        self._mid += 1
        if one_option:
            message = tx.Message(
                mtype=mtype, mid=self._mid, code=code, token=token, payload=payload
            )
            message.opt.addOption(tx.StringOption(n.URI_PATH, path.strip("/").encode()))
            for number, value in options:
                option = tx.UintOption if isinstance(value, int) else tx.OpaqueOption
                message.opt.addOption(option(number, value))
            data = codec.encode(message)
        else:
            data = request(code, path, mtype, self._mid, token, payload, options)
        self.server.feed(data, peer)
        return self.transport.take()

    def ask(self, code: int, path: str, payload: bytes = b"", **kwargs: Any) -> Any:
        """Send one request and return its single (piggybacked) response."""
        (response,) = self.send(code, path, payload, **kwargs)
        return response


@pytest.fixture
def tb(clock: Clock, services: Services) -> Iterator[Harness]:
    yield Harness(clock, services, ThingsBoardDialect())
