# -*- test-case-name: tests.application.test_loglevel -*-
"""
L{LogLevelService}: the C{[log] level} filter on twistd's log observers.
"""

from __future__ import annotations

from twisted.application import service
from twisted.logger import (
    FilteringLogObserver,
    LogLevel,
    LogLevelFilterPredicate,
    LogPublisher,
)

__all__ = ["LogLevelService"]


class LogLevelService(service.Service):
    """
    Drop log events below C{level} before they reach the observers of
    C{publisher}, from the (privileged) start of the service to the end of
    the process, so start-up and shutdown chatter is filtered too.
    """

    def __init__(self, level: LogLevel, publisher: LogPublisher) -> None:
        self._level = level
        self._publisher = publisher
        self._installed = False

    def privilegedStartService(self) -> None:
        super().privilegedStartService()
        self._install()

    def startService(self) -> None:
        super().startService()
        self._install()

    def _install(self) -> None:
        if self._installed or self._level <= LogLevel.debug:
            return
        self._installed = True
        predicate = LogLevelFilterPredicate(defaultLogLevel=self._level)
        # twistd begins logging after makeService and before starting the
        # services, so its observers are in place now. LogPublisher has no
        # public way to list them, hence the private attribute.
        for observer in list(getattr(self._publisher, "_observers", [])):
            self._publisher.removeObserver(observer)
            self._publisher.addObserver(FilteringLogObserver(observer, [predicate]))
