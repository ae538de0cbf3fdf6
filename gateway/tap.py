# -*- test-case-name: tests.test_tap -*-
"""
twistd glue: L{Options} parses the command line into a L{GatewayConfig};
L{makeService} composes the gateway's services. This is the one module that
imports the global reactor, and only inside L{makeService}.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from typing import Any

from twisted.application import internet, service
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

from gateway.coap.resource import Resource
from gateway.coap.server import CoAPServer
from gateway.config import (
    ConfigError,
    GatewayConfig,
    Override,
    load_config,
    read_or_create_api_key,
)

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


class GatewayService(service.MultiService):
    """
    The gateway's root service; logs where it listens once its children run.
    """

    def __init__(self, config: GatewayConfig, coap: CoAPServer) -> None:
        super().__init__()
        self.config = config
        self.coap = coap

    def startService(self) -> None:
        super().startService()
        transport = self.coap.transport
        assert transport is not None, "the UDP listener starts before this logs"
        host = transport.getHost()
        dual_stack = _is_dual_stack(transport)
        log.info(
            "coap-gateway listening: CoAP on udp [{coap_host}]:{coap_port}"
            "{dual_stack_note}; data in {data_dir}",
            coap_host=host.host,
            coap_port=host.port,
            dual_stack=dual_stack,
            dual_stack_note=" (IPv6 and IPv4)" if dual_stack else "",
            data_dir=os.path.abspath(self.config.storage.data_dir),
            upstream=self.config.upstream.url or None,
        )

    def stopService(self) -> Any:
        log.info("coap-gateway stopping")
        return super().stopService()


def _is_dual_stack(transport: Any) -> bool:
    sock = getattr(transport, "socket", None)
    if sock is None or sock.family != socket.AF_INET6:
        return False
    host = transport.getHost().host
    return host == "::" and sock.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY) == 0


def build_service(
    config: GatewayConfig,
    reactor: IReactorTime,
    log_publisher: LogPublisher = globalLogPublisher,
) -> GatewayService:
    """
    Compose the gateway for C{config}; C{reactor} must also provide
    C{IReactorUDP}.
    """
    os.makedirs(config.storage.data_dir, exist_ok=True)
    if not config.api.key:
        # Created now so the operator finds it on first start; the API
        # service (a later issue) will read it from the same place.
        read_or_create_api_key(config.storage.api_key_path)

    coap = CoAPServer(
        build_resource_tree(config),
        reactor,
        params=config.coap.transmission,
        limits=config.coap.limits,
    )
    top = GatewayService(config, coap)
    LogLevelService(LogLevel.levelWithName(config.log.level), log_publisher).setServiceParent(top)

    udp = internet.UDPServer(
        config.coap.port, coap, interface=config.coap.bind, reactor=reactor
    )
    udp.setName("coap")
    udp.setServiceParent(top)

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

    return build_service(options["settings"], reactor)
