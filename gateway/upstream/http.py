# -*- test-case-name: tests.upstream.test_forwarder_https -*-
"""The HTTP client the forwarder posts with: treq over a persistent connection pool."""

from __future__ import annotations

from typing import Any, Optional

from treq.client import HTTPClient
from twisted.internet.ssl import (
    Certificate,
    PrivateCertificate,
    optionsForClientTLS,
    trustRootFromCertificates,
)
from twisted.web.client import Agent, HTTPConnectionPool
from twisted.web.iweb import IPolicyForHTTPS
from zope.interface import implementer

__all__ = ["http_client", "TLSPolicy"]

_END = b"-----END CERTIFICATE-----"


def _certificates(path: str) -> list[Certificate]:
    with open(path, "rb") as f:
        pem = f.read()
    blocks = [block + _END for block in pem.split(_END) if b"BEGIN CERTIFICATE" in block]
    if not blocks:
        raise ValueError(f"{path}: no PEM certificate")
    return [Certificate.loadPEM(block) for block in blocks]


@implementer(IPolicyForHTTPS)
class TLSPolicy:
    """
    How C{https://} upstreams are verified: the server's certificate must
    chain to the system CAs, or only to those in the PEM file
    C{ca_certificates}, and name the host; with C{client_certificate} (a PEM
    file holding the certificate and, unless C{client_key} names another
    file, its key) the gateway proves who it is (mutual TLS).
    """

    def __init__(
        self, ca_certificates: str = "", client_certificate: str = "", client_key: str = ""
    ) -> None:
        self._trust: Any = None
        if ca_certificates:
            self._trust = trustRootFromCertificates(_certificates(ca_certificates))
        self._client: Optional[PrivateCertificate] = None
        if client_certificate:
            with open(client_certificate, "rb") as f:
                pem = f.read()
            if client_key:
                with open(client_key, "rb") as f:
                    pem = f.read() + b"\n" + pem
            self._client = PrivateCertificate.loadPEM(pem)

    def creatorForNetloc(self, hostname: bytes, port: int) -> Any:
        return optionsForClientTLS(
            hostname.decode("idna"), trustRoot=self._trust, clientCertificate=self._client
        )


def http_client(
    reactor: Any, tls: Optional[TLSPolicy] = None
) -> tuple[HTTPClient, HTTPConnectionPool]:
    """
    A treq client keeping its connections open between requests, and its
    pool (close it with C{closeCachedConnections} when done).
    """
    pool = HTTPConnectionPool(reactor, persistent=True)
    # One upstream: two connections are plenty for one request at a time.
    pool.maxPersistentPerHost = 2
    agent = Agent(reactor, contextFactory=tls or TLSPolicy(), pool=pool)
    return HTTPClient(agent), pool
