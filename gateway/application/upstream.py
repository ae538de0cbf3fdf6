# -*- test-case-name: tests.application.test_upstream -*-
"""
What drains the outbox, for C{[upstream]}: the forwarder when a URL is set,
else the pruning of events kept locally.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from gateway.config import UpstreamConfig
from gateway.service.build import Services
from gateway.upstream.forwarder import Forwarder, ForwarderSettings
from gateway.upstream.http import http_client
from gateway.upstream.retention import Retention

__all__ = ["outbox_limit", "upstream_service"]


def outbox_limit(config: UpstreamConfig) -> int | None:
    """Events the outbox holds before uplinks are refused: none without a URL (pruned instead)."""
    return config.outbox_max_events if config.url else None


def upstream_service(
    config: UpstreamConfig, reactor: Any
) -> Callable[[Services], Forwarder | Retention]:
    """Makes the upstream service once the store is open (see L{GatewayService})."""

    def make(services: Services) -> Forwarder | Retention:
        if not config.url:
            return Retention(
                services.outbox, reactor, config.retention, config.outbox_max_events
            )
        client, pool = http_client(reactor, config.ca_certificates)
        settings = ForwarderSettings(
            url=config.url,
            mode=config.mode,
            batch_size=config.batch_size,
            flush_interval=config.flush_interval,
            timeout=config.timeout,
            retry_initial=config.retry_initial,
            retry_max=config.retry_max,
            grace=config.shutdown_grace,
        )
        return Forwarder(services.outbox, client, reactor, settings, random.random, pool)

    return make
