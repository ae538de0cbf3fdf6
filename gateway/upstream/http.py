# -*- test-case-name: tests.upstream.test_forwarder_http -*-
"""The HTTP client the forwarder posts with: treq over a persistent connection pool."""

from __future__ import annotations

from typing import Any

from treq.client import HTTPClient
from twisted.internet.ssl import Certificate, trustRootFromCertificates
from twisted.web.client import Agent, BrowserLikePolicyForHTTPS, HTTPConnectionPool

__all__ = ["http_client", "tls_policy"]


def tls_policy(ca_certificates: str = "") -> BrowserLikePolicyForHTTPS:
    """
    How C{https://} upstreams are verified: against the system CAs, or only
    against the certificates in the PEM file C{ca_certificates}.
    """
    if not ca_certificates:
        return BrowserLikePolicyForHTTPS()
    with open(ca_certificates, "rb") as f:
        pem = f.read()
    marker = b"-----END CERTIFICATE-----"
    blocks = [block + marker for block in pem.split(marker) if b"BEGIN CERTIFICATE" in block]
    if not blocks:
        raise ValueError(f"{ca_certificates}: no PEM certificate")
    roots = [Certificate.loadPEM(block) for block in blocks]
    return BrowserLikePolicyForHTTPS(trustRoot=trustRootFromCertificates(roots))


def http_client(
    reactor: Any, ca_certificates: str = ""
) -> tuple[HTTPClient, HTTPConnectionPool]:
    """
    A treq client keeping its connections open between requests, and its
    pool (close it with C{closeCachedConnections} when done).
    """
    pool = HTTPConnectionPool(reactor, persistent=True)
    # One upstream: two connections are plenty for one request at a time.
    pool.maxPersistentPerHost = 2
    agent = Agent(reactor, contextFactory=tls_policy(ca_certificates), pool=pool)
    return HTTPClient(agent), pool
