"""
The upstream service the gateway composes for [upstream]: a forwarder with
a URL, the pruning of local events without one; and the Max-Age a refused
uplink gets.
"""

from __future__ import annotations

from twisted.internet.task import Clock

from gateway.application.upstream import Upstream, outbox_limit
from gateway.config import UpstreamConfig
from gateway.service.build import memory_services
from gateway.upstream.forwarder import Forwarder
from gateway.upstream.retention import Retention
from tests.service.conftest import FAST_HASHER, result


def test_without_url_events_stay_local_and_bounded() -> None:
    """No URL: nothing is refused (no outbox limit) and the local events are pruned."""
    config = UpstreamConfig()
    assert outbox_limit(config) is None
    services = result(memory_services(Clock(), FAST_HASHER))
    upstream = Upstream(config, Clock())
    assert isinstance(upstream.make(services), Retention)
    assert upstream.retry_after() == 30


def test_with_url_the_outbox_is_bounded_and_forwarded() -> None:
    """A URL: the outbox holds at most outbox_max_events and a forwarder drains it."""
    config = UpstreamConfig(url="http://127.0.0.1:9000/events", outbox_max_events=5,
                            flush_interval=2.0)
    assert outbox_limit(config) == 5
    services = result(memory_services(Clock(), FAST_HASHER))
    upstream = Upstream(config, Clock())
    assert upstream.retry_after() == 30
    assert isinstance(upstream.make(services), Forwarder)
    assert upstream.retry_after() == 2


def test_configured_headers_reach_the_forwarder() -> None:
    """upstream.headers become the forwarder's (name, value) request headers."""
    config = UpstreamConfig(url="http://127.0.0.1:9000/events",
                            headers=("Authorization: Bearer a:b", "X-Site:  north "))
    services = result(memory_services(Clock(), FAST_HASHER))
    forwarder = Upstream(config, Clock()).make(services)
    assert isinstance(forwarder, Forwarder)
    assert forwarder._settings.headers == (("Authorization", "Bearer a:b"), ("X-Site", "north"))
