# -*- test-case-name: tests.application.test_upstream -*-
"""
What drains the outbox, for C{[upstream]}: the forwarder when a URL is set,
else the pruning of events kept locally.
"""

from __future__ import annotations

import random
from typing import Any

import attrs

from gateway.config import UpstreamConfig
from gateway.service.build import Services
from gateway.service.uplinks import fixed_retry_after
from gateway.upstream.forwarder import Forwarder, ForwarderSettings
from gateway.upstream.http import TLSPolicy, http_client
from gateway.upstream.retention import Retention

__all__ = ["Upstream", "outbox_limit"]


def outbox_limit(config: UpstreamConfig) -> int | None:
    """Events the outbox holds before uplinks are refused: none without a URL (pruned instead)."""
    return config.outbox_max_events if config.url else None


@attrs.define
class Upstream:
    """
    Makes the upstream service once the store is open (L{make}, for
    L{GatewayService}), and answers how long a refused uplink should wait
    (L{retry_after}, for the service layer, which exists before it).
    """

    _config: UpstreamConfig
    _reactor: Any
    _forwarder: Forwarder | None = None

    def retry_after(self) -> int:
        if self._forwarder is None:
            return fixed_retry_after()
        return self._forwarder.expected_room()

    def make(self, services: Services) -> Forwarder | Retention:
        config = self._config
        if not config.url:
            return Retention(
                services.outbox, self._reactor, config.retention, config.outbox_max_events
            )
        tls = TLSPolicy(config.ca_certificates, config.client_certificate, config.client_key)
        client, pool = http_client(self._reactor, tls)
        settings = ForwarderSettings(
            url=config.url,
            mode=config.mode,
            batch_size=config.batch_size,
            flush_interval=config.flush_interval,
            timeout=config.timeout,
            retry_initial=config.retry_initial,
            retry_max=config.retry_max,
            grace=config.shutdown_grace,
            headers=tuple(
                (name.strip(), value.strip())
                for name, _, value in (h.partition(":") for h in config.headers)
            ),
        )
        self._forwarder = Forwarder(
            services.outbox, client, self._reactor, settings, random.random, pool
        )
        return self._forwarder
