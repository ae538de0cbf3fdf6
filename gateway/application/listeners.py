# -*- test-case-name: tests.application.test_listeners -*-
"""
L{Listener}: one port the gateway serves, bound as soon as twistd starts
services and served only once the gateway is ready.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

from twisted.application import service
from twisted.internet.defer import Deferred, maybeDeferred, succeed
from twisted.internet.error import CannotListenError
from twisted.internet.interfaces import IListeningPort, IPushProducer

from .startup import StartupError

__all__ = ["Listener"]


class Listener(service.Service):
    """
    A port bound by C{listen()} in L{privilegedStartService}, which twistd
    calls before the reactor runs (and before it sheds privileges), so a
    port that cannot be bound stops start-up there with a L{StartupError}.
    The port is paused (the kernel queues what arrives) until
    L{startService}, which binds it if that has not happened yet, and serves
    it.  Stopping closes it, started or not.

    @ivar port: the bound port, or C{None}.
    """

    def __init__(
        self, name: str, listen: Callable[[], IListeningPort], what: str, option: str
    ) -> None:
        """
        @param what: what it serves, for the error (C{"CoAP on udp"}).
        @param option: how the operator chooses another port, for the error
            (C{"--coap-port"}).
        """
        self.setName(name)
        self._listen = listen
        self._what = what
        self._option = option
        self.port: Optional[IListeningPort] = None

    def _bind(self) -> IListeningPort:
        try:
            return self._listen()
        except CannotListenError as e:
            reason = getattr(e.socketError, "strerror", None) or e.socketError
            raise StartupError(
                f"cannot listen for {self._what} [{e.interface or '*'}]:{e.port} ({reason}):"
                f" stop what uses it or choose another port with {self._option}"
            ) from None

    def privilegedStartService(self) -> None:
        super().privilegedStartService()
        if self.port is None:
            self.port = self._bind()
            producer = IPushProducer(self.port, None)
            if producer is not None:
                producer.pauseProducing()

    def startService(self) -> None:
        super().startService()
        if self.port is None:
            self.port = self._bind()
        else:
            producer = IPushProducer(self.port, None)
            if producer is not None:
                producer.resumeProducing()

    def stopService(self) -> "Deferred[Any]":
        super().stopService()
        port, self.port = self.port, None
        if port is None:
            return succeed(None)
        return maybeDeferred(port.stopListening)
