# -*- test-case-name: tests.application.test_gateway -*-
"""
L{GatewayService}: the gateway's root service, which opens the service
layer before any listener starts and closes it after they have stopped.
"""

from __future__ import annotations

import gc
import os
import socket
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from twisted.application import service
from twisted.internet.defer import Deferred, DeferredList, maybeDeferred
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure

from gateway.api.app import build_api
from gateway.api.dtls import dtls_off
from gateway.api.site import ApiSite
from gateway.coap.udp import UDPTransport
from gateway.config import GatewayConfig
from gateway.dialect import install_dialects
from gateway.dtls.transport import DTLSTransport
from gateway.service.build import Services

from .dtls import CacheCredentials

__all__ = ["GatewayService", "UpstreamService"]

# The namespace these lines had before the split, so log filters still match.
log = Logger(namespace="gateway.tap")


class UpstreamService(Protocol):
    """What drains the outbox: a service that reports its state."""

    def startService(self) -> None: ...

    def stopService(self) -> "Deferred[None] | None": ...

    def report(self) -> Mapping[str, Any]: ...


class GatewayService(service.MultiService):
    """
    The gateway's root service.

    Starting it opens the service layer (the store in the data directory)
    first; then the dialects are installed under the CoAP root, the API site
    gets its resource, the upstream service (made by C{upstream}) starts, and
    only then do the C{listeners} start.  (Its privileged start lets them
    bind their ports, paused, before that.)  Stopping it stops the
    listeners, then the upstream service, and then closes the store, so
    pending writes are flushed.  Children other than the listeners (added with
    C{setServiceParent}) start at once.

    @ivar service_layer: the open L{Services} while running.
    """

    def __init__(
        self,
        config: GatewayConfig,
        coap: UDPTransport,
        api_site: ApiSite,
        listeners: Sequence[service.IService],
        clock: IReactorTime,
        open_services: Callable[[], "Deferred[Services]"],
        api_key: str,
        on_fatal: Callable[[], None] = lambda: None,
        upstream: Callable[[Services], UpstreamService] | None = None,
        dtls: DTLSTransport | None = None,
    ) -> None:
        """
        @param listeners: the services that serve the network (CoAP over
            UDP, the API over TCP, ...), made children of this one; the API's
            is the one named C{"api"}.
        @param on_fatal: called if the gateway cannot start.
        @param upstream: makes what drains the outbox (forwarding, pruning)
            once the store is open; it starts before the listeners, stops
            after them and before the store closes, and reports to the API.
        @param dtls: the DTLS transport (its listener is among C{listeners}),
            given the credential cache once the store is open, and reporting
            to the API.
        """
        super().__init__()
        self.config = config
        self.coap = coap
        self.api_site = api_site
        self.service_layer: Services | None = None
        self._listeners = list(listeners)
        self._clock = clock
        self._open_services = open_services
        self._api_key = api_key
        self._on_fatal = on_fatal
        self._make_upstream = upstream
        self.dtls = dtls
        self._upstream: UpstreamService | None = None
        self._starting: Deferred[None] | None = None
        for listener in self._listeners:
            listener.setServiceParent(self)

    def _others(self) -> list[service.IService]:
        return [s for s in self if s not in self._listeners]

    def privilegedStartService(self) -> None:
        # Listeners bind now, before the reactor runs, so a port in use stops
        # start-up at once; they serve from startService, once the store is open.
        service.Service.privilegedStartService(self)
        for child in self:
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
        dialects = self.config.dialects
        installed = install_dialects(
            self.coap.layer.root,
            services.devices,
            self._clock,
            enabled=dialects.names,
            options=dialects.options,
        )
        dtls_report = dtls_off
        if self.dtls is not None:
            self.dtls.credentials = CacheCredentials(services.credentials)
            dtls_report = self._dtls_report
        if self._make_upstream is None:
            self.api_site.resource = build_api(services, self._api_key, dtls=dtls_report)
        else:
            upstream = self._make_upstream(services)
            self.api_site.resource = build_api(
                services, self._api_key, upstream.report, dtls_report
            )
        if not self.running:
            return
        if self._make_upstream is not None:
            self._upstream = upstream
            upstream.startService()
        for listener in self._listeners:
            listener.startService()
        services.cluster.start()
        # What is alive now (modules, caches, resources) lives as long as the
        # process: out of the collector's full passes, which would otherwise
        # walk it all again and again under load (about 12% of a request).
        gc.freeze()
        self._log_listening(installed)

    def _dtls_report(self) -> Mapping[str, Any]:
        assert self.dtls is not None
        return {"enabled": True, **self.dtls.report()}

    def _failed(self, failure: Failure) -> None:
        log.failure("coap-gateway could not start", failure)
        self._on_fatal()

    def _log_listening(self, dialects: list[str]) -> None:
        transport = self.coap.transport
        assert transport is not None, "the UDP listener starts before this logs"
        host = transport.getHost()
        dual_stack = _is_dual_stack(transport)
        api = self.api_address()
        secure = self.dtls.transport if self.dtls is not None else None
        dtls = secure.getHost() if secure is not None else None
        log.info(
            "coap-gateway listening: CoAP on udp [{coap_host}]:{coap_port}"
            "{dual_stack_note}{dtls_note}; API on http://{api_host}:{api_port}; dialects"
            " {dialects}; data in {data_dir}",
            coap_host=host.host,
            coap_port=host.port,
            dual_stack=dual_stack,
            dual_stack_note=" (IPv6 and IPv4)" if dual_stack else "",
            dtls_host=dtls.host if dtls is not None else None,
            dtls_port=dtls.port if dtls is not None else None,
            dtls_note=(
                f"; CoAP over DTLS on udp [{dtls.host}]:{dtls.port}"
                + (" (IPv6 and IPv4)" if _is_dual_stack(secure) else "")
                if dtls is not None
                else ""
            ),
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
        # Listeners first, so nothing is answered once the rest goes.
        children = [*reversed(self._listeners), *reversed(self._others())]
        await DeferredList([maybeDeferred(child.stopService) for child in children])
        upstream, self._upstream = self._upstream, None
        if upstream is not None:
            await maybeDeferred(upstream.stopService)
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
