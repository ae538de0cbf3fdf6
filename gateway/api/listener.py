# -*- test-case-name: tests.test_tap -*-
"""
L{TCPListener}: a service listening on a TCP port while it runs, which,
unlike C{internet.TCPServer}, says which port it got (port 0 in tests).
"""

from __future__ import annotations

from typing import Any, Optional

from twisted.application import service
from twisted.internet.defer import Deferred, maybeDeferred, succeed
from twisted.internet.interfaces import IListeningPort, IReactorTCP
from twisted.internet.protocol import ServerFactory

__all__ = ["TCPListener"]


class TCPListener(service.Service):
    """Listen on C{interface}:C{port} with C{factory} from start to stop."""

    def __init__(
        self, reactor: IReactorTCP, port: int, factory: ServerFactory[Any], interface: str = ""
    ) -> None:
        self._reactor = reactor
        self._port_number = port
        self._factory = factory
        self._interface = interface
        self.port: Optional[IListeningPort] = None

    def startService(self) -> None:
        super().startService()
        self.port = self._reactor.listenTCP(
            self._port_number, self._factory, interface=self._interface
        )

    def stopService(self) -> "Deferred[Any]":
        super().stopService()
        port, self.port = self.port, None
        if port is None:
            return succeed(None)
        return maybeDeferred(port.stopListening)
