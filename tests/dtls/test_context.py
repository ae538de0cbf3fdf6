"""Server credentials, the strict and CCM8 contexts, and the strength rules."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from OpenSSL import SSL

from gateway.dtls import certs
from gateway.dtls.context import CredentialsError, ServerCredentials
from gateway.dtls.records import parse_client_hello

from .support import ADDRESS, PSK_ID, PSK_KEY, Harness, MemoryClient, test_ca

FIXTURES = Path(__file__).parent / "fixtures"


def _files(tmp_path: Path, password: str = "") -> tuple[str, str]:
    ca, _ = test_ca()
    server = certs.make_server(ca)
    cert, key = tmp_path / "server.pem", tmp_path / "server.key"
    cert.write_bytes(certs.cert_pem(server.cert, ca.cert))
    key.write_bytes(certs.key_pem(server.key, password))
    return str(cert), str(key)


def test_good_files_load(tmp_path: Path) -> None:
    """A PEM chain with its key (encrypted, with the right password) loads, chain in order."""
    cert, key = _files(tmp_path, "pw")
    loaded = ServerCredentials.load(cert, key, "pw")
    assert len(loaded.chain) == 2 and loaded.ecdsa


@pytest.mark.parametrize(
    "case, setting",
    [
        ("missing certificate", "certificate"),
        ("not PEM", "certificate"),
        ("missing key", "private_key"),
        ("wrong password", "private_key_password"),
        ("no password", "private_key_password"),
        ("needless password", "private_key_password"),
        ("other key", "private_key"),
        ("weak key", "private_key"),
        ("bad CA file", "ca_certificates"),
    ],
)
def test_bad_files_name_the_setting(tmp_path: Path, case: str, setting: str) -> None:
    """Each unusable credential is refused with an error naming the setting at fault."""
    cert, key = _files(tmp_path, "pw" if "password" in case and case != "needless password"
                       else "")
    password, ca_file = "", ""
    if case == "missing certificate":
        cert = str(tmp_path / "nope.pem")
    elif case == "not PEM":
        Path(cert).write_text("hello")
    elif case == "missing key":
        key = str(tmp_path / "nope.key")
    elif case == "wrong password":
        password = "wrong"
    elif case == "needless password":
        password = "pw"
    elif case == "other key":
        Path(key).write_bytes(certs.key_pem(certs.make_ca().key))
    elif case == "weak key":
        weak = rsa.generate_private_key(65537, 1024)
        Path(key).write_bytes(certs.key_pem(weak))  # type: ignore[arg-type]
    elif case == "bad CA file":
        ca_file = str(tmp_path / "ca.pem")
        Path(ca_file).write_text("not a certificate")
    with pytest.raises(CredentialsError) as caught:
        ServerCredentials.load(cert, key, password, ca_file)
    assert caught.value.setting == setting
    assert str(caught.value).startswith(setting + ": ")


def test_ccm8_context_only_for_ccm8_only_offers() -> None:
    """The @SECLEVEL=0 context serves a client only when it offers nothing but CCM8."""
    contexts = Harness().transport.contexts
    ccm8_only = parse_client_hello(
        MemoryClient(psk=(PSK_ID, PSK_KEY),
                     ciphers="PSK-AES128-CCM8:@SECLEVEL=0").start()[0])
    mixed = parse_client_hello(
        MemoryClient(psk=(PSK_ID, PSK_KEY),
                     ciphers="PSK-AES128-CCM8:PSK-AES128-GCM-SHA256:@SECLEVEL=0").start()[0])
    assert contexts.for_hello(ccm8_only) is contexts.ccm8
    assert contexts.for_hello(mixed) is contexts.strict
    assert contexts.for_hello(None) is contexts.strict


def test_ccm8_only_psk_client_negotiates_ccm8() -> None:
    """A client offering only PSK-AES128-CCM8 gets it (PSK served through the raw binding)."""
    tb = Harness()
    client = tb.connect(tb.psk_client(ciphers="PSK-AES128-CCM8:@SECLEVEL=0"))
    assert client.established and client.cipher == "PSK-AES128-CCM8"


def test_mixed_offer_gets_a_strict_suite() -> None:
    """A client offering CCM8 beside stronger suites is served one of those."""
    tb = Harness()
    client = tb.connect(tb.psk_client(ciphers="PSK-AES128-CCM8:PSK-AES128-GCM-SHA256:@SECLEVEL=0"))
    assert client.cipher == "PSK-AES128-GCM-SHA256"


def _self_signed_rsa(bits: int) -> tuple[bytes, bytes, str]:
    key = rsa.generate_private_key(65537, bits)
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "weak")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(1)
        .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return certs.cert_pem(cert), certs.key_pem(key), cert.fingerprint(hashes.SHA256()).hex()  # type: ignore[arg-type]


@pytest.mark.parametrize("ciphers", ["ECDHE-ECDSA-AES128-CCM8:@SECLEVEL=0",
                                     "ECDHE-ECDSA-AES128-GCM-SHA256:@SECLEVEL=0"])
def test_weak_client_key_refused_in_both_contexts(ciphers: str) -> None:
    """A registered client certificate with a 1024-bit RSA key is refused, CCM8 or not."""
    tb = Harness()
    cert, key, sha256 = _self_signed_rsa(1024)
    tb.credentials.certificates.add(sha256)
    client = tb.connect(MemoryClient(certificate=(cert, key), ciphers=ciphers))
    assert not client.established
    assert tb.transport.session(ADDRESS) is None
    assert tb.transport.counters.handshakes["x509"]["failed"] == 1


def test_sha1_signed_client_certificate_refused() -> None:
    """A CA-issued client certificate signed with SHA-1 is refused even when registered."""
    tb = Harness()
    pem = (FIXTURES / "sha1-device.pem").read_bytes()
    sha256 = x509.load_pem_x509_certificate(pem).fingerprint(hashes.SHA256()).hex()
    tb.credentials.certificates.add(sha256)
    client = tb.connect(MemoryClient(
        certificate=(pem, (FIXTURES / "sha1-device.key").read_bytes()),
        ciphers="ECDHE-ECDSA-AES128-CCM8:@SECLEVEL=0"))
    assert not client.established and tb.transport.session(ADDRESS) is None
    assert tb.transport.counters.handshakes["x509"]["failed"] == 1


def test_registered_self_signed_certificate_is_the_identity() -> None:
    """A self-signed client certificate registered by fingerprint is accepted, CN ignored."""
    tb = Harness()
    device = certs.make_device("device-001")
    tb.credentials.certificates.add(device.sha256)
    client = tb.connect(MemoryClient(
        certificate=(certs.cert_pem(device.cert), certs.key_pem(device.key)), ca=tb.ca_pem()))
    assert client.established
    session = tb.transport.session(ADDRESS)
    assert session is not None and session.mode == "x509"
    assert str(session.identity) == "x509:" + device.sha256
    impostor = certs.make_device("device-001")  # same CN, other key
    other = tb.connect(MemoryClient(
        certificate=(certs.cert_pem(impostor.cert), certs.key_pem(impostor.key))), ("::1", 1))
    assert not other.established


def test_ca_signed_certificate_accepted_with_a_ca_file(tmp_path: Path) -> None:
    """With client CAs configured, a certificate they sign passes the handshake unregistered."""
    ca, server = test_ca()
    ca_file = tmp_path / "clients.pem"
    ca_file.write_bytes(certs.cert_pem(ca.cert))
    tb = Harness()
    from gateway.dtls.transport import DTLSTransport

    tb.transport = DTLSTransport(
        tb.engine, ServerCredentials(server.chain, server.key, str(ca_file)), tb.clock,
        credentials=tb.credentials)
    tb.transport.makeConnection(tb.wire)  # type: ignore[arg-type]
    device = certs.make_device("by-ca", ca)
    client = tb.connect(MemoryClient(
        certificate=(certs.cert_pem(device.cert), certs.key_pem(device.key))))
    assert client.established
    rogue = certs.make_device("rogue", certs.make_ca("rogue"))
    other = tb.connect(MemoryClient(
        certificate=(certs.cert_pem(rogue.cert), certs.key_pem(rogue.key))), ("::1", 1))
    assert not other.established


def test_private_pyopenssl_names_still_exist() -> None:
    """The private pyOpenSSL names the PSK callback and the record path rely on are there."""
    ctx = SSL.Context(SSL.DTLS_SERVER_METHOD)
    assert hasattr(ctx, "_context")
    assert hasattr(SSL.Connection, "_reverse_mapping")
    conn = SSL.Connection(ctx, None)
    for name in ("_ssl", "_into_ssl", "_from_ssl", "_raise_ssl_error"):
        assert hasattr(conn, name), name
