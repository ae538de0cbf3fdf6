"""
Tests for L{gateway.application.loglevel}: the C{[log] level} filter.
"""

from __future__ import annotations

from twisted.logger import LogLevel, LogPublisher

from gateway.application.loglevel import LogLevelService


def test_log_level_filters_from_start_on() -> None:
    """Once started, the log level service drops events below its level, even after stopping."""
    seen: list[str] = []
    publisher = LogPublisher(lambda event: seen.append(event["log_format"]))
    level = LogLevelService(LogLevel.warn, publisher)
    publisher({"log_level": LogLevel.info, "log_format": "before", "log_namespace": "t"})
    level.privilegedStartService()
    level.startService()
    publisher({"log_level": LogLevel.info, "log_format": "info", "log_namespace": "t"})
    publisher({"log_level": LogLevel.warn, "log_format": "warn", "log_namespace": "t"})
    level.stopService()
    publisher({"log_level": LogLevel.info, "log_format": "after", "log_namespace": "t"})
    publisher({"log_level": LogLevel.error, "log_format": "error", "log_namespace": "t"})
    assert seen == ["before", "warn", "error"]


def test_debug_level_leaves_observers_alone() -> None:
    """At level debug nothing is filtered."""
    seen: list[str] = []
    publisher = LogPublisher(lambda event: seen.append(event["log_format"]))
    level = LogLevelService(LogLevel.debug, publisher)
    level.startService()
    publisher({"log_level": LogLevel.debug, "log_format": "debug", "log_namespace": "t"})
    level.stopService()
    assert seen == ["debug"]
