"""The test CA and the certificates it makes."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from cryptography import x509

from gateway.dtls import certs
from gateway.dtls.context import ServerCredentials


def test_test_ca_files_are_private_and_usable(tmp_path: Path) -> None:
    """The test CA's directory is 0700 and its keys 0600 whatever the umask; the files load."""
    old = os.umask(0)
    try:
        found, made = certs.ensure_test_ca(tmp_path / "tls")
    finally:
        os.umask(old)
    assert made
    assert stat.S_IMODE(found.directory.stat().st_mode) == 0o700
    assert stat.S_IMODE(found.private_key.stat().st_mode) == 0o600
    assert stat.S_IMODE(found.ca_key.stat().st_mode) == 0o600
    loaded = ServerCredentials.load(str(found.certificate), str(found.private_key))
    ca = x509.load_pem_x509_certificate(found.ca.read_bytes())
    loaded.chain[0].verify_directly_issued_by(ca)
    names = loaded.chain[0].extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert "localhost" in names.value.get_values_for_type(x509.DNSName)
    again, made_again = certs.ensure_test_ca(tmp_path / "tls")
    assert not made_again and again.certificate.read_bytes() == found.certificate.read_bytes()


def test_device_certificates() -> None:
    """A device certificate is self-signed without a CA, signed by the CA with one."""
    ca = certs.make_ca()
    own = certs.make_device("d1")
    signed = certs.make_device("d2", ca)
    own.cert.verify_directly_issued_by(own.cert)
    signed.cert.verify_directly_issued_by(ca.cert)
    assert len(own.sha256) == 64 and own.sha256 != signed.sha256
