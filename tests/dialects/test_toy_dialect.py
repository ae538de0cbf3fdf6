"""
A second dialect made of nothing but the toolkit (C{toy_plugins/toy.py}),
discovered from a test plugin package: basic authentication checked through
a Deferred, JSON in and out.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from twisted.internet.task import Clock, deferLater

from gateway.coap import numbers as n
from gateway.coap.layer import MessageLayer
from gateway.coap.resource import Resource
from gateway.dialect import install_dialects
from gateway.service.build import Services, build_services
from gateway.store.memory import MemoryStore
from tests.coap.support import PEER, Engine, FakeTransport, option, request
from tests.service.conftest import FAST_HASHER, result

from . import toy_plugins

#: How long the stand-in thread pool takes to hash a password.
HASHING = 0.05


class Toy:
    """The engine serving the dialects of the toy plugin package."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        off_thread = lambda fn: deferLater(clock, HASHING, fn)  # noqa: E731
        self.services: Services = result(
            build_services(MemoryStore(), clock, FAST_HASHER, run_blocking=off_thread)
        )
        created = self.services.registry.create_device("sensor", generate_token=False)
        self.device_id = result(created).device.id
        setting = self.services.registry.set_basic(self.device_id, "user", "pw")
        clock.advance(HASHING)
        result(setting)
        root = Resource()
        self.installed = install_dialects(root, self.services.devices, clock, package=toy_plugins)
        self.transport = FakeTransport()
        self.server = Engine(MessageLayer(root, clock), self.transport)

    def post(self, password: bytes, code: int = n.POST, mid: int = 1) -> list[Any]:
        """Send one request as C{user}; return what was answered at once."""
        query = ((n.URI_QUERY, b"u=user"), (n.URI_QUERY, b"p=" + password))
        data = request(code, "toy", mid=mid, payload=b'{"t":21}', options=query)
        self.server.feed(data, PEER)
        return self.transport.take()


@pytest.fixture
def toy(clock: Clock) -> Toy:
    return Toy(clock)


def test_discovered_and_installed(toy: Toy) -> None:
    """install_dialects finds the toy dialect in the test plugin package."""
    assert toy.installed == ["toy"]


def test_right_password_answered_once_hashed(toy: Toy) -> None:
    """A right password is answered after the off-thread hash with JSON, and the reading is kept."""
    assert toy.post(b"pw") == []
    toy.clock.advance(HASHING)
    [answer] = toy.transport.take()
    assert (answer.mtype, answer.code) == (n.ACK, n.CHANGED)
    assert json.loads(answer.payload) == {"device": "sensor"}
    assert option(answer, n.CONTENT_FORMAT) == n.JSON
    assert [p.value for p in result(toy.services.telemetry.latest(toy.device_id))] == [21]


def test_wrong_password_is_401(toy: Toy) -> None:
    """A wrong password is answered 4.01 once its hash is checked."""
    assert toy.post(b"wrong") == []
    toy.clock.advance(HASHING)
    assert [m.code for m in toy.transport.take()] == [n.UNAUTHORIZED]


def test_unserved_method_refused_before_hashing(toy: Toy) -> None:
    """A method the route does not serve is 4.05 at once, without a password hash."""
    [refused] = toy.post(b"pw", code=n.PUT)
    assert refused.code == n.METHOD_NOT_ALLOWED
