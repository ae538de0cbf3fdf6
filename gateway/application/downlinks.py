# -*- test-case-name: tests.application.test_downlinks -*-
"""What C{[rpc]} and C{[power]} make of the service layer's downlinks."""

from __future__ import annotations

from typing import Any

from gateway.config import GatewayConfig
from gateway.service.build import Downlinks
from gateway.upstream.http import http_client
from gateway.upstream.rpc import RpcForwarder

__all__ = ["downlinks"]


def downlinks(config: GatewayConfig, reactor: Any) -> Downlinks:
    """The queue settings, power defaults and (with C{upstream_url}) the RPC forwarder."""
    rpc = config.rpc
    forward = None
    if rpc.upstream_url:
        client, _ = http_client(reactor)
        forward = RpcForwarder(client, rpc.upstream_url)
    return Downlinks(queue=rpc.queue, power=config.power, forward=forward, timeout=rpc.timeout)
