"""The [rpc] and [power] sections as the service layer's downlinks."""

from __future__ import annotations

from twisted.internet.task import Clock

from gateway.application.downlinks import downlinks
from gateway.config import load_config
from gateway.upstream.rpc import RpcForwarder


def test_sections_reach_the_service_layer() -> None:
    """Queue settings, power defaults (ThingsBoard variables too) and the timeout are read."""
    config = load_config(None, {"GATEWAY_RPC_MAX_QUEUED": "7", "COAP_PSM_ACTIVITY_TIMER": "5000",
                                "COAP_PAGING_TRANSMISSION_WINDOW": "3000",
                                "GATEWAY_RPC_TIMEOUT": "2.5"})
    made = downlinks(config, Clock())
    assert (made.queue.max_queued, made.power.psm_activity_timer, made.timeout) == (7, 5000, 2.5)
    assert made.power.paging_transmission_window == 3000
    assert made.forward is None


def test_upstream_url_makes_a_forwarder() -> None:
    """With [rpc] upstream_url, client-side RPCs are forwarded there."""
    config = load_config(None, {"GATEWAY_RPC_UPSTREAM_URL": "http://127.0.0.1:9/rpc"})
    assert isinstance(downlinks(config, Clock()).forward, RpcForwarder)
