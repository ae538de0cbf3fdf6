# -*- test-case-name: tests.dtls.test_certs -*-
"""
Test certificates: a private CA, a server certificate it signs, and device
certificates (signed by it, or self-signed as in ThingsBoard's guide), all
ECDSA P-256.  Used by C{scripts/certs.py}, by the tests, and by the gateway
itself on a first start without a configured certificate
(L{ensure_test_ca}).
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from pathlib import Path
from typing import Optional, Sequence

import attrs
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = [
    "Issued",
    "make_ca",
    "make_server",
    "make_device",
    "cert_pem",
    "key_pem",
    "write_pem",
    "TestCA",
    "ensure_test_ca",
]

#: Default names of a server certificate: loopback and this host, so the
#: test CA works out of the box for local clients.
DEFAULT_HOSTS = ("localhost", "127.0.0.1", "::1")


@attrs.frozen
class Issued:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @property
    def sha256(self) -> str:
        """The SHA-256 hex of the certificate's DER: the device identity."""
        return self.cert.fingerprint(hashes.SHA256()).hex()


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _builder(subject: str, issuer: x509.Name, key: ec.EllipticCurvePrivateKey, days: int
             ) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.timezone.utc)
    return (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
    )


def make_ca(common_name: str = "coap-gateway test CA", days: int = 3650) -> Issued:
    """A self-signed CA."""
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        _builder(common_name, _name(common_name), key, days)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    return Issued(cert, key)


def _alt_names(hosts: Sequence[str]) -> x509.SubjectAlternativeName:
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return x509.SubjectAlternativeName(names)


def make_server(ca: Issued, hosts: Sequence[str] = DEFAULT_HOSTS, days: int = 825) -> Issued:
    """A server certificate for C{hosts}, signed by C{ca}."""
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        _builder(hosts[0] if hosts else "coap-gateway", ca.cert.subject, key, days)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_alt_names(hosts), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca.key, hashes.SHA256())
    )
    return Issued(cert, key)


def make_device(common_name: str, ca: Optional[Issued] = None, days: int = 365) -> Issued:
    """A device certificate, signed by C{ca} or (without one) self-signed."""
    key = ec.generate_private_key(ec.SECP256R1())
    issuer = ca.cert.subject if ca is not None else _name(common_name)
    cert = (
        _builder(common_name, issuer, key, days)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .sign(ca.key if ca is not None else key, hashes.SHA256())
    )
    return Issued(cert, key)


def cert_pem(*certs: x509.Certificate) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)


def key_pem(key: ec.EllipticCurvePrivateKey, password: str = "") -> bytes:
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password.encode())
        if password
        else serialization.NoEncryption()
    )
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )


def write_pem(path: Path, data: bytes, private: bool = False) -> None:
    """Write a PEM file: 0600 if C{private} (a key), else 0644, whatever the umask."""
    mode = 0o600 if private else 0o644
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        os.fchmod(f.fileno(), mode)
        f.write(data)


@attrs.frozen
class TestCA:
    """The files of the gateway's own test CA, in one directory."""

    __test__ = False  # not a test class, despite the name

    directory: Path

    @property
    def ca(self) -> Path:
        return self.directory / "ca.pem"

    @property
    def ca_key(self) -> Path:
        return self.directory / "ca.key"

    @property
    def certificate(self) -> Path:
        return self.directory / "server.pem"

    @property
    def private_key(self) -> Path:
        return self.directory / "server.key"


def ensure_test_ca(directory: Path, hosts: Sequence[str] = DEFAULT_HOSTS) -> tuple[TestCA, bool]:
    """
    The test CA and server certificate in C{directory}, made (the directory
    0700, keys 0600, whatever the umask) if
    the server certificate or key is missing; the second value says whether
    they were made now.
    """
    found = TestCA(directory)
    if found.certificate.exists() and found.private_key.exists():
        return found, False
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)  # private keys: whatever the umask
    ca = make_ca()
    server = make_server(ca, hosts)
    write_pem(found.ca, cert_pem(ca.cert))
    write_pem(found.ca_key, key_pem(ca.key), private=True)
    write_pem(found.certificate, cert_pem(server.cert, ca.cert))
    write_pem(found.private_key, key_pem(server.key), private=True)
    return found, True
