"""
The forwarder against a real HTTPS server on a loopback port: a certificate
from the configured test CA is accepted, an untrusted one refused, retried
and reported.
"""

from __future__ import annotations

import datetime
import random
from pathlib import Path
from typing import Any

import pytest_twisted
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from twisted.internet.ssl import PrivateCertificate
from twisted.web.server import Site

from gateway.upstream.forwarder import Forwarder, ForwarderSettings
from gateway.upstream.http import http_client

from .test_forwarder import A, Sink, _store
from .test_forwarder_http import _reactor, _until


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _ca_and_server() -> tuple[bytes, bytes]:
    """A test CA's PEM, and a PEM key + certificate for localhost that it signed."""
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder().subject_name(_name("test CA")).issuer_name(_name("test CA"))
        .public_key(ca_key.public_key()).serial_number(1)
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    server = (
        x509.CertificateBuilder().subject_name(_name("localhost")).issuer_name(ca.subject)
        .public_key(key.public_key()).serial_number(2)
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    return (
        ca.public_bytes(serialization.Encoding.PEM),
        _pem(key) + server.public_bytes(serialization.Encoding.PEM),
    )


async def _forward(tmp_path: Path, trust: bool) -> tuple[Forwarder, Any, Sink]:
    ca_pem, server_pem = _ca_and_server()
    ca_file = tmp_path / "ca.pem"
    ca_file.write_bytes(ca_pem)
    sink = Sink()
    options = PrivateCertificate.loadPEM(server_pem).options()
    port = _reactor().listenSSL(0, Site(sink), options, interface="127.0.0.1")
    url = f"https://localhost:{port.getHost().port}/events"
    client, pool = http_client(_reactor(), str(ca_file) if trust else "")
    forwarder = Forwarder(
        _store((A, 1)), client, _reactor(),
        ForwarderSettings(url=url, flush_interval=0.0, retry_initial=0.01, retry_max=0.05),
        random.random, pool,
    )
    forwarder.startService()
    return forwarder, port, sink


@pytest_twisted.ensureDeferred
async def test_certificate_from_the_configured_ca_is_accepted(tmp_path: Path) -> None:
    """With ca_certificates naming the test CA, events reach the HTTPS upstream."""
    forwarder, port, sink = await _forward(tmp_path, trust=True)
    try:
        await _until(lambda: forwarder.status.delivered == 1)
    finally:
        await forwarder.stopService()
        await port.stopListening()
    assert len(sink.requests) == 1 and forwarder.status.connected


@pytest_twisted.ensureDeferred
async def test_untrusted_certificate_is_refused_retried_and_reported(tmp_path: Path) -> None:
    """Against the system CAs the test certificate is refused; the event stays, the error shows."""
    forwarder, port, sink = await _forward(tmp_path, trust=False)
    try:
        await _until(lambda: forwarder.status.retried >= 2)
    finally:
        await forwarder.stopService()
        await port.stopListening()
    assert sink.requests == []
    assert not forwarder.status.connected and forwarder.status.delivered == 0
    report = forwarder.report()
    assert "SSL" in report["last_error"] or "certificate" in report["last_error"].lower()
