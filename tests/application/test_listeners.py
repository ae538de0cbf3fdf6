"""
Tests for L{gateway.application.listeners}: a port is bound in the
privileged start, paused until the service starts, and a port that cannot
be bound is a one-line start-up error.
"""

from __future__ import annotations

import socket
from typing import Any

import pytest
from twisted.internet.interfaces import IListeningPort, IPushProducer
from twisted.internet.protocol import DatagramProtocol
from zope.interface import implementer

from gateway.application.listeners import Listener
from gateway.application.startup import StartupError
from tests.service.conftest import result


@implementer(IListeningPort, IPushProducer)
class FakePort:
    def __init__(self, events: list[str]) -> None:
        self._events = events

    def pauseProducing(self) -> None:
        self._events.append("pause")

    def resumeProducing(self) -> None:
        self._events.append("resume")

    def stopProducing(self) -> None:
        self._events.append("stop producing")

    def startListening(self) -> None:
        self._events.append("listen")

    def stopListening(self) -> None:
        self._events.append("close")

    def getHost(self) -> Any:
        return None


def listener(events: list[str]) -> Listener:
    def listen() -> IListeningPort:
        events.append("bind")
        return FakePort(events)

    return Listener("coap", listen, "CoAP on udp", "--coap-port")


def test_bound_paused_then_served() -> None:
    """The privileged start binds and pauses the port; the start serves it; the stop closes it."""
    events: list[str] = []
    service = listener(events)
    service.privilegedStartService()
    assert events == ["bind", "pause"]
    service.startService()
    assert events == ["bind", "pause", "resume"]
    result(service.stopService())
    assert events == ["bind", "pause", "resume", "close"]
    assert service.port is None


def test_started_without_privileged_start_binds_then() -> None:
    """Started directly (as in a test harness), the listener binds when it starts."""
    events: list[str] = []
    service = listener(events)
    service.startService()
    assert events == ["bind"]
    assert service.port is not None


def test_bound_but_never_started_is_closed_on_stop() -> None:
    """A port bound for a gateway that never got ready is closed when it stops."""
    events: list[str] = []
    service = listener(events)
    service.privilegedStartService()
    result(service.stopService())
    assert events == ["bind", "pause", "close"]


def test_port_in_use_is_a_startup_error() -> None:
    """A port that cannot be bound stops start-up with one line naming it and the option."""
    from twisted.internet import reactor

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        service = Listener(
            "coap",
            lambda: reactor.listenUDP(port, DatagramProtocol(), interface="127.0.0.1"),
            "CoAP on udp",
            "--coap-port",
        )
        with pytest.raises(StartupError) as raised:
            service.privilegedStartService()
    assert str(raised.value) == (
        f"cannot listen for CoAP on udp [127.0.0.1]:{port} (Address already in use):"
        " stop what uses it or choose another port with --coap-port"
    )
    assert service.port is None
