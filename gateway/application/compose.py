# -*- test-case-name: tests.test_tap -*-
"""
L{build_service}: the gateway composed for a configuration, on a given
reactor.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from twisted.logger import LogLevel, LogPublisher, globalLogPublisher
from twisted.web.resource import Resource as WebResource

from gateway.api.site import ApiSite
from gateway.coap.layer import MessageLayer
from gateway.coap.resource import Resource
from gateway.coap.udp import UDPTransport
from gateway.config import GatewayConfig
from gateway.dialect import event_shapes
from gateway.dtls.transport import DTLSTransport
from gateway.service.build import open_services
from gateway.store.backends import check_store
from gateway.store.interfaces import StoreUnusable

from .datadir import prepare_data_dir
from .downlinks import downlinks
from .dtls import server_credentials
from .gateway import GatewayService
from .listeners import Listener
from .loglevel import LogLevelService
from .startup import StartupError
from .upstream import Upstream, outbox_limit

__all__ = ["build_service"]


def build_service(
    config: GatewayConfig,
    reactor: Any,
    log_publisher: LogPublisher = globalLogPublisher,
    on_fatal: Callable[[], None] = lambda: None,
) -> GatewayService:
    """
    Compose the gateway for C{config}; C{reactor} must provide
    C{IReactorTime}, C{IReactorUDP}, C{IReactorTCP} and C{IReactorThreads}
    (the SQLite store writes on a thread).  What keeps the gateway from
    starting and can be found before the reactor runs (the data directory,
    the store, a port) raises L{StartupError}, here or when the listeners
    bind; C{on_fatal} is called if it fails later (the store does not open).
    """
    api_key = prepare_data_dir(config)
    storage = config.storage
    try:
        check_store(storage.backend, storage.location)
    except StoreUnusable as e:
        raise StartupError(str(e)) from None

    # The dialects mount under this root once the service layer is open;
    # plain CoAP and DTLS feed the same engine.
    layer = MessageLayer(
        Resource(),
        reactor,
        params=config.coap.transmission,
        limits=config.coap.limits,
    )
    coap = UDPTransport(layer)
    udp = Listener(
        "coap",
        lambda: reactor.listenUDP(
            config.coap.port, coap, interface=config.coap.bind, maxPacketSize=coap.max_packet_size
        ),
        "CoAP on udp",
        "--coap-port",
    )
    api_site = ApiSite(WebResource())
    api = Listener(
        "api",
        lambda: reactor.listenTCP(config.api.port, api_site, interface=config.api.bind),
        "the API on tcp",
        "--api-port",
    )

    listeners = [udp, api]
    dtls = None
    if config.dtls.enabled:
        dtls_config = config.dtls
        dtls = DTLSTransport(
            layer,
            server_credentials(dtls_config, storage.data_dir),
            reactor,
            dtls_config.session,
            dtls_config.psk_identity_hint,
        )
        secure = dtls
        listeners.append(
            Listener(
                "dtls",
                lambda: reactor.listenUDP(
                    dtls_config.port,
                    secure,
                    interface=dtls_config.bind,
                    # A record adds at most 37 bytes (GCM) to the largest CoAP datagram.
                    maxPacketSize=coap.max_packet_size + 64,
                ),
                "CoAP over DTLS on udp",
                "--dtls-port",
            )
        )

    upstream = Upstream(config.upstream, reactor)

    top = GatewayService(
        config,
        coap,
        api_site,
        listeners,
        reactor,
        lambda: open_services(
            reactor,
            storage.backend,
            storage.location,
            limits=config.limits,
            durability=storage.durability,
            outbox_limit=outbox_limit(config.upstream),
            retry_after=upstream.retry_after,
            downlinks=downlinks(config, reactor),
            shapes=event_shapes(config.dialects.names),
            ota_dir=str(Path(storage.data_dir) / "ota"),
            instance=config.cluster.name,
            heartbeat_interval=config.cluster.heartbeat_interval,
        ),
        api_key,
        on_fatal,
        upstream.make,
        dtls,
    )
    LogLevelService(LogLevel.levelWithName(config.log.level), log_publisher).setServiceParent(top)
    return top
