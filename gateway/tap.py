# -*- test-case-name: tests.test_tap -*-
"""
twistd glue: L{Options} parses the command line into a L{GatewayConfig};
L{makeService} composes the gateway's services. This is the one module that
imports the global reactor, and only inside L{makeService}.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Mapping
from typing import Any

from twisted.application import internet, service
from twisted.internet.defer import Deferred, DeferredList, maybeDeferred
from twisted.internet.interfaces import IReactorTime
from twisted.logger import (
    FilteringLogObserver,
    Logger,
    LogLevel,
    LogLevelFilterPredicate,
    LogPublisher,
    globalLogPublisher,
)
from twisted.python import usage
from twisted.python.failure import Failure
from twisted.web.resource import Resource as WebResource

from gateway.api.app import build_api
from gateway.api.listener import TCPListener
from gateway.api.site import ApiSite
from gateway.coap.resource import Resource
from gateway.coap.server import CoAPServer
from gateway.config import (
    ConfigError,
    GatewayConfig,
    Override,
    load_config,
    read_or_create_api_key,
)
from gateway.dialect import install_dialects
from gateway.service.build import Services, open_services

log = Logger()

#: Command-line options that override one configuration key each.
OVERRIDE_OPTIONS: Mapping[str, tuple[str, str]] = {
    "coap-bind": ("coap", "bind"),
    "coap-port": ("coap", "port"),
    "api-port": ("api", "port"),
    "data-dir": ("storage", "data_dir"),
    "log-level": ("log", "level"),
}


class Options(usage.Options):
    """
    C{twistd coap-gateway} options. After parsing, C{self["settings"]} holds
    the L{GatewayConfig}.
    """

    synopsis = "[--config PATH] [overrides]"
    longdesc = (
        "Serve CoAP devices. Without --config the built-in defaults apply "
        "(etc/gateway.toml lists them). Any key can also be set with an "
        "environment variable GATEWAY_<SECTION>_<KEY>; options given here win."
    )
    optParameters = [
        ["config", "c", None, "TOML configuration file."],
        ["coap-bind", None, None, "Address for plain CoAP (coap.bind; '::' = all)."],
        ["coap-port", None, None, "UDP port for plain CoAP (coap.port)."],
        ["api-port", None, None, "TCP port of the northbound API (api.port)."],
        ["data-dir", None, None, "Directory for state (storage.data_dir)."],
        ["log-level", None, None, "debug, info, warn, error or critical (log.level)."],
    ]

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        super().__init__()
        self._environ = os.environ if environ is None else environ

    def postOptions(self) -> None:
        overrides = [
            Override(section, key, self[option], f"--{option}")
            for option, (section, key) in OVERRIDE_OPTIONS.items()
            if self[option] is not None
        ]
        try:
            self["settings"] = load_config(self["config"], self._environ, overrides)
        except ConfigError as e:
            raise usage.UsageError(str(e)) from None


def build_resource_tree(config: GatewayConfig) -> Resource:
    """
    Build the CoAP resource tree the engine serves.

    This is where device-API dialects attach: each dialect plugin in
    C{plugins/} (found with C{twisted.plugin.getPlugins}) will be given the
    service layer and will C{root.putChild(b"<segment>", subtree)} here. The
    engine adds C{/.well-known/core} itself.
    """
    root = Resource()
    return root


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


#: Children of L{GatewayService} that serve the network: started only once
#: the service layer is open, so no device or operator is answered before.
LISTENERS = ("coap", "api")


class GatewayService(service.MultiService):
    """
    The gateway's root service.

    Starting it opens the service layer (the store in the data directory)
    first; then the dialects are installed under the CoAP root, the API gets
    its resource, and only then do the listeners (children named in
    L{LISTENERS}) start.  Stopping it stops the listeners and then closes
    the store, so pending writes are flushed.

    @ivar service_layer: the open L{Services} while running.
    """

    def __init__(
        self,
        config: GatewayConfig,
        coap: CoAPServer,
        clock: IReactorTime,
        open_services: Callable[[], "Deferred[Services]"],
        api_key: str,
        on_fatal: Callable[[], None] = lambda: None,
    ) -> None:
        super().__init__()
        self.config = config
        self.coap = coap
        self.api_site = ApiSite(WebResource())
        self.service_layer: Services | None = None
        self._clock = clock
        self._open_services = open_services
        self._api_key = api_key
        self._on_fatal = on_fatal
        self._starting: Deferred[None] | None = None

    def _others(self) -> list[service.IService]:
        return [s for s in self if s.name not in LISTENERS]

    def _listeners(self) -> list[service.IService]:
        return [s for s in self if s.name in LISTENERS]

    def privilegedStartService(self) -> None:
        # Listeners bind in startService, once the store is open.
        for child in self._others():
            child.privilegedStartService()

    def startService(self) -> None:
        service.Service.startService(self)
        for child in self._others():
            child.startService()
        self._starting = Deferred.fromCoroutine(self._start())
        self._starting.addErrback(self._failed)

    def whenListening(self) -> "Deferred[None]":
        """Fires once the listeners are up (or start-up has failed)."""
        if self._starting is None:
            raise RuntimeError("the gateway has not been started")
        return _settled(self._starting)

    async def _start(self) -> None:
        services = await self._open_services()
        self.service_layer = services
        installed = install_dialects(self.coap.root, services, self._clock)
        self.api_site.resource = build_api(services, self._api_key)
        if not self.running:
            return
        for child in self._listeners():
            child.startService()
        self._log_listening(installed)

    def _failed(self, failure: Failure) -> None:
        log.failure("coap-gateway could not start", failure)
        self._on_fatal()

    def _log_listening(self, dialects: list[str]) -> None:
        transport = self.coap.transport
        assert transport is not None, "the UDP listener starts before this logs"
        host = transport.getHost()
        dual_stack = _is_dual_stack(transport)
        api = self.api_address()
        log.info(
            "coap-gateway listening: CoAP on udp [{coap_host}]:{coap_port}"
            "{dual_stack_note}; API on http://{api_host}:{api_port}; dialects"
            " {dialects}; data in {data_dir}",
            coap_host=host.host,
            coap_port=host.port,
            dual_stack=dual_stack,
            dual_stack_note=" (IPv6 and IPv4)" if dual_stack else "",
            api_host=api[0] if api else None,
            api_port=api[1] if api else None,
            dialects=", ".join(dialects) or "none",
            data_dir=os.path.abspath(self.config.storage.data_dir),
            upstream=self.config.upstream.url or None,
        )

    def api_address(self) -> tuple[str, int] | None:
        """(host, port) the API listens on, while it does."""
        listener = self.getServiceNamed("api")
        port = getattr(listener, "port", None)
        if port is None:
            return None
        host = port.getHost()
        return (host.host, host.port)

    def stopService(self) -> "Deferred[None]":
        log.info("coap-gateway stopping")
        return Deferred.fromCoroutine(self._stop())

    async def _stop(self) -> None:
        starting = self._starting
        service.Service.stopService(self)
        if starting is not None:
            await _settled(starting)
        await DeferredList(
            [maybeDeferred(child.stopService) for child in reversed(list(self))]
        )
        services, self.service_layer = self.service_layer, None
        if services is not None:
            await services.close()
        self._starting = None


def _settled(d: "Deferred[Any]") -> "Deferred[None]":
    """A Deferred firing with None once C{d} has a result, leaving C{d} as is."""
    out: Deferred[None] = Deferred()

    def relay(result: object) -> object:
        out.callback(None)
        return result

    d.addBoth(relay)
    return out


def _is_dual_stack(transport: Any) -> bool:
    sock = getattr(transport, "socket", None)
    if sock is None or sock.family != socket.AF_INET6:
        return False
    host = transport.getHost().host
    return host == "::" and sock.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY) == 0


def build_service(
    config: GatewayConfig,
    reactor: Any,
    log_publisher: LogPublisher = globalLogPublisher,
    on_fatal: Callable[[], None] = lambda: None,
) -> GatewayService:
    """
    Compose the gateway for C{config}; C{reactor} must provide
    C{IReactorTime}, C{IReactorUDP}, C{IReactorTCP} and C{IReactorThreads}
    (the SQLite store writes on a thread).  C{on_fatal} is called if the
    gateway cannot start (the store does not open).
    """
    os.makedirs(config.storage.data_dir, exist_ok=True)
    api_key = config.api.key or read_or_create_api_key(config.storage.api_key_path)

    coap = CoAPServer(
        build_resource_tree(config),
        reactor,
        params=config.coap.transmission,
        limits=config.coap.limits,
    )
    top = GatewayService(
        config,
        coap,
        reactor,
        lambda: open_services(reactor, config.storage.backend, str(config.storage.database_path)),
        api_key,
        on_fatal,
    )
    LogLevelService(LogLevel.levelWithName(config.log.level), log_publisher).setServiceParent(top)

    udp = internet.UDPServer(
        config.coap.port, coap, interface=config.coap.bind, reactor=reactor
    )
    udp.setName("coap")
    udp.setServiceParent(top)

    api = TCPListener(reactor, config.api.port, top.api_site, interface=config.api.bind)
    api.setName("api")
    api.setServiceParent(top)

    if config.dtls.enabled:
        log.warn(
            "DTLS is enabled in the configuration but not yet available in this"
            " version; udp port {dtls_port} is not served, plain CoAP is.",
            dtls_port=config.dtls.port,
        )
    return top


def makeService(options: Mapping[str, Any]) -> service.MultiService:
    """
    Build the gateway from parsed L{Options}, on the global reactor.
    """
    from twisted.internet import reactor

    def fatal() -> None:
        if reactor.running:
            reactor.stop()

    return build_service(options["settings"], reactor, on_fatal=fatal)
