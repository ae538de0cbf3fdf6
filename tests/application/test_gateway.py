"""
Tests for L{gateway.application.gateway}: the root service starts the
listeners it is given only once the service layer is open, and stops them
before the store closes.
"""

from __future__ import annotations

from typing import Any

import attrs
from twisted.application import service
from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from twisted.logger import capturedLogs
from twisted.web.resource import Resource as WebResource

from gateway.api.site import ApiSite
from gateway.application.gateway import GatewayService
from gateway.coap.layer import MessageLayer
from gateway.coap.resource import Resource
from gateway.coap.udp import UDPTransport
from gateway.config import DialectsConfig, GatewayConfig
from gateway.service.build import Services, build_services
from gateway.store.memory import MemoryStore
from tests.service.conftest import FAST_HASHER, result


class Listener(service.Service):
    """
    Stands in for a network listener: records in C{events} when it starts
    and when it stops listening (a stop while not started is a no-op, as for
    the real ones).
    """

    port = None

    def __init__(self, name: str, events: list[str]) -> None:
        self.setName(name)
        self._events = events

    def startService(self) -> None:
        super().startService()
        self._events.append(f"start {self.name}")

    def stopService(self) -> None:
        if self.running:
            self._events.append(f"stop {self.name}")
        super().stopService()


class Upstream(Listener):
    """Stands in for the upstream service, which also reports its state."""

    def report(self) -> dict[str, Any]:
        return {"forwarding": True}


class FakeDatagramTransport:
    def getHost(self) -> IPv4Address:
        return IPv4Address("UDP", "127.0.0.1", 5683)

    def write(self, data: bytes, addr: Any) -> None:
        pass


class UDPListener(Listener):
    """A L{Listener} that also connects the CoAP server to a transport while it runs."""

    def __init__(self, coap: UDPTransport, events: list[str]) -> None:
        super().__init__("coap", events)
        self._coap = coap

    def startService(self) -> None:
        super().startService()
        self._coap.makeConnection(FakeDatagramTransport())  # type: ignore[arg-type]

    def stopService(self) -> None:
        if self.running:
            self._coap.doStop()
        super().stopService()


@attrs.define
class RecordingStore(MemoryStore):
    events: list[str] = attrs.field(factory=list)

    def close(self) -> "Deferred[None]":
        self.events.append("close store")
        return super().close()


@attrs.define
class Gateway:
    top: GatewayService
    events: list[str]
    opening: "Deferred[Services]"
    services: Services
    fatal: list[bool]


def gateway(config: GatewayConfig | None = None, upstream: bool = False) -> Gateway:
    """
    A gateway over the in-memory store with stand-in listeners coap, api and
    dtls (and, with C{upstream}, a stand-in upstream service).
    """
    clock = Clock()
    events: list[str] = []
    store = RecordingStore(events=events)
    services = result(build_services(store, clock, FAST_HASHER))
    opening: Deferred[Services] = Deferred()
    coap = UDPTransport(MessageLayer(Resource(), clock))
    fatal: list[bool] = []
    listeners = [UDPListener(coap, events), Listener("api", events), Listener("dtls", events)]
    top = GatewayService(
        config or GatewayConfig(),
        coap,
        ApiSite(WebResource()),
        listeners,
        clock,
        lambda: opening,
        "key",
        lambda: fatal.append(True),
        *([lambda _: Upstream("upstream", events)] if upstream else []),
    )
    Listener("other", events).setServiceParent(top)
    return Gateway(top, events, opening, services, fatal)


def test_listeners_start_once_the_service_layer_is_open() -> None:
    """Other children start at once; the listeners given start, in order, after the open."""
    gw = gateway()
    gw.top.privilegedStartService()
    gw.top.startService()
    assert gw.events == ["start other"]
    with capturedLogs() as events:
        gw.opening.callback(gw.services)
    assert gw.events == ["start other", "start coap", "start api", "start dtls"]
    [listening] = [e for e in events if "coap_port" in e]
    assert (listening["coap_host"], listening["coap_port"]) == ("127.0.0.1", 5683)
    assert listening["dialects"] == "drogue, efento, thingsboard"
    assert gw.top.service_layer is gw.services
    assert gw.fatal == []


def test_the_node_beats_once_it_serves_and_stops_with_the_store() -> None:
    """The heartbeat starts with the listeners and stops before the store closes."""
    gw = gateway()
    gw.top.startService()
    assert result(gw.services.cluster.status())["nodes"] == []
    gw.opening.callback(gw.services)
    assert [n["alive"] for n in result(gw.services.cluster.status())["nodes"]] == [True]
    result(gw.top.stopService())
    assert gw.services.cluster._loop is not None and not gw.services.cluster._loop.running


def test_listeners_stop_before_the_store_closes() -> None:
    """Stopping stops the listeners (last first), then the other children, then the store."""
    gw = gateway()
    gw.top.startService()
    gw.opening.callback(gw.services)
    del gw.events[:]
    result(gw.top.stopService())
    assert gw.events == ["stop dtls", "stop api", "stop coap", "stop other", "close store"]
    assert gw.top.service_layer is None


def test_upstream_runs_while_the_store_is_open() -> None:
    """The upstream service starts once the store is open, before the listeners, and stops
    after them, before the store closes."""
    gw = gateway(upstream=True)
    gw.top.startService()
    assert gw.events == ["start other"]
    gw.opening.callback(gw.services)
    assert gw.events == ["start other", "start upstream", "start coap", "start api", "start dtls"]
    del gw.events[:]
    result(gw.top.stopService())
    assert gw.events == [
        "stop dtls", "stop api", "stop coap", "stop other", "stop upstream", "close store"
    ]


def test_failed_open_starts_no_listener() -> None:
    """If the service layer does not open, no listener starts, on_fatal is called once."""
    gw = gateway()
    gw.top.startService()
    with capturedLogs() as events:
        gw.opening.errback(RuntimeError("disk on fire"))
    assert gw.events == ["start other"]
    assert gw.fatal == [True]
    [failed] = [e for e in events if "log_failure" in e]
    assert failed["log_format"] == "coap-gateway could not start"
    result(gw.top.stopService())
    assert gw.events == ["start other", "stop other"]


def test_stopped_while_opening_starts_no_listener() -> None:
    """A gateway stopped before the service layer opens never starts its listeners."""
    gw = gateway()
    gw.top.startService()
    stopped = gw.top.stopService()
    gw.opening.callback(gw.services)
    result(stopped)
    assert gw.events == ["start other", "stop other", "close store"]


def test_enabled_dialects_and_their_options_are_installed() -> None:
    """The [dialects] settings decide which dialects mount under the CoAP root, configured."""
    options = {"thingsboard": {"max_string_length": 8}}
    gw = gateway(GatewayConfig(dialects=DialectsConfig(("thingsboard",), options)))
    gw.top.startService()
    gw.opening.callback(gw.services)
    v1 = gw.top.coap.layer.root.children[b"api"].children[b"v1"]
    assert v1._context.rules.max_string_length == 8


def test_no_dialect_enabled() -> None:
    """With no dialect enabled the CoAP root serves none and the start-up line says so."""
    gw = gateway(GatewayConfig(dialects=DialectsConfig(())))
    gw.top.startService()
    with capturedLogs() as events:
        gw.opening.callback(gw.services)
    assert b"api" not in gw.top.coap.layer.root.children
    assert [e["dialects"] for e in events if "coap_port" in e] == ["none"]


class BindingListener(Listener):
    """A L{Listener} that also records its privileged start (where real ones bind)."""

    def privilegedStartService(self) -> None:
        super().privilegedStartService()
        self._events.append(f"bind {self.name}")


def test_privileged_start_binds_the_listeners_first() -> None:
    """The privileged start lets every listener bind at once; they serve only after the open."""
    gw = gateway()
    events = gw.events
    top = GatewayService(
        GatewayConfig(), gw.top.coap, ApiSite(WebResource()),
        [BindingListener("coap", events), BindingListener("api", events)],
        Clock(), lambda: gw.opening, "key",
    )
    top.privilegedStartService()
    top.startService()
    assert events == ["bind coap", "bind api"]
    gw.top.coap.makeConnection(FakeDatagramTransport())  # type: ignore[arg-type]
    gw.opening.callback(gw.services)
    assert events == ["bind coap", "bind api", "start coap", "start api"]


def test_dtls_gets_the_credential_cache_and_reports_to_the_api() -> None:
    """Once the store is open, DTLS looks keys up in the cache and GET /api/v1/dtls reports it."""
    import json

    from treq.testing import StubTreq

    from gateway.application.dtls import CacheCredentials
    from gateway.dtls.transport import DTLSTransport
    from tests.dtls.support import test_ca

    gw = gateway()
    _, server = test_ca()
    dtls = DTLSTransport(gw.top.coap.layer, server, Clock())
    site = ApiSite(WebResource())
    top = GatewayService(
        GatewayConfig(), gw.top.coap, site, [UDPListener(gw.top.coap, gw.events)],
        Clock(), lambda: gw.opening, "key", dtls=dtls,
    )
    top.startService()
    gw.opening.callback(gw.services)
    assert isinstance(dtls.credentials, CacheCredentials)
    result(gw.services.registry.create_device("d", generate_token=False))
    device = result(gw.services.registry.find_device("d"))
    result(gw.services.registry.set_psk(device.id, "ident", b"key"))
    assert dtls.credentials.psk_key("ident") == b"key"
    stub = StubTreq(site.resource)
    response = result(stub.get("http://gw.invalid/api/v1/dtls",
                               headers={b"Authorization": [b"Bearer key"]}))
    body = json.loads(result(stub.content(response)))
    assert body["enabled"] is True and body["sessions"]["open"] == 0
