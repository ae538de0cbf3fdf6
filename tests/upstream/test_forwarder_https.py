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
from twisted.internet.ssl import Certificate, PrivateCertificate
from twisted.web.server import Site

from gateway.upstream.forwarder import Forwarder, ForwarderSettings
from gateway.upstream.http import TLSPolicy, http_client

from .test_forwarder import A, Sink, _store
from .test_forwarder_http import _reactor, _until


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _issue(
    subject: str, ca: x509.Certificate | None, ca_key: ec.EllipticCurvePrivateKey | None,
    server: bool = False,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A certificate for C{subject}, signed by C{ca} (self-signed, a CA, without one)."""
    now = datetime.datetime.now(datetime.timezone.utc)
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (
        x509.CertificateBuilder().subject_name(_name(subject))
        .issuer_name(ca.subject if ca is not None else _name(subject))
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=1))
    )
    if ca is None:
        builder = builder.add_extension(
            x509.BasicConstraints(ca=True, path_length=None), critical=True
        )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False
        )
    return builder.sign(ca_key if ca_key is not None else key, hashes.SHA256()), key


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


async def _forward(
    tmp_path: Path, trust: bool, client_cert: bool = False, require_client: bool = False
) -> tuple[Forwarder, Any, Sink]:
    ca, ca_key = _issue("test CA", None, None)
    server, server_key = _issue("localhost", ca, ca_key, server=True)
    ca_file = tmp_path / "ca.pem"
    ca_file.write_bytes(_cert_pem(ca))
    sink = Sink()
    identity = PrivateCertificate.loadPEM(_pem(server_key) + _cert_pem(server))
    authorities = [Certificate.loadPEM(_cert_pem(ca))] if require_client else []
    port = _reactor().listenSSL(
        0, Site(sink), identity.options(*authorities), interface="127.0.0.1"
    )
    url = f"https://localhost:{port.getHost().port}/events"
    cert_file = key_file = ""
    if client_cert:
        cert, key = _issue("gateway", ca, ca_key)
        (tmp_path / "client.pem").write_bytes(_cert_pem(cert))
        (tmp_path / "client.key").write_bytes(_pem(key))
        cert_file, key_file = str(tmp_path / "client.pem"), str(tmp_path / "client.key")
    tls = TLSPolicy(str(ca_file) if trust else "", cert_file, key_file)
    client, pool = http_client(_reactor(), tls)
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


@pytest_twisted.ensureDeferred
async def test_client_certificate_for_mutual_tls(tmp_path: Path) -> None:
    """An upstream that demands a client certificate gets the configured one."""
    forwarder, port, sink = await _forward(
        tmp_path, trust=True, client_cert=True, require_client=True
    )
    try:
        await _until(lambda: forwarder.status.delivered == 1)
    finally:
        await forwarder.stopService()
        await port.stopListening()
    assert len(sink.requests) == 1


@pytest_twisted.ensureDeferred
async def test_no_client_certificate_is_refused_by_a_mutual_tls_upstream(tmp_path: Path) -> None:
    """Without a client certificate such an upstream refuses; the event stays and is retried."""
    forwarder, port, sink = await _forward(tmp_path, trust=True, require_client=True)
    try:
        await _until(lambda: forwarder.status.retried >= 2)
    finally:
        await forwarder.stopService()
        await port.stopListening()
    assert sink.requests == [] and forwarder.status.delivered == 0
