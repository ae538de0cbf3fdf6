"""The DTLS listener's server credentials and its view of the credential cache."""

from __future__ import annotations

from pathlib import Path

import pytest
from zope.interface.verify import verifyObject

from gateway.application.dtls import CacheCredentials, server_credentials
from gateway.application.startup import StartupError
from gateway.config import DtlsConfig
from gateway.dtls import certs
from gateway.dtls.credentials import IDTLSCredentials, MemoryCredentials
from gateway.service.build import Services
from tests.service.conftest import result


def test_test_ca_is_made_once(tmp_path: Path) -> None:
    """Without configured files the test CA is made on the first call and reused after."""
    first = server_credentials(DtlsConfig(), str(tmp_path))
    again = server_credentials(DtlsConfig(), str(tmp_path))
    assert first.chain[0] == again.chain[0]
    assert (tmp_path / "tls" / "ca.pem").is_file()


@pytest.mark.parametrize(
    "config, start",
    [
        (DtlsConfig(certificate="/nonexistent/s.pem"),
         "dtls.private_key (COAP_DTLS_PEM_KEY): set both"),
        (DtlsConfig(certificate="/nonexistent/s.pem", private_key="/nonexistent/s.key"),
         "dtls.certificate (COAP_DTLS_PEM_CERT): cannot read /nonexistent/s.pem"),
    ],
)
def test_unusable_files_are_one_line(config: DtlsConfig, start: str, tmp_path: Path) -> None:
    """A half-configured or unreadable certificate is a start-up error naming the setting."""
    with pytest.raises(StartupError) as caught:
        server_credentials(config, str(tmp_path))
    assert str(caught.value).startswith(start)


def test_mismatched_key_names_the_key(tmp_path: Path) -> None:
    """A key that is not the certificate's stops start-up naming dtls.private_key."""
    ca = certs.make_ca()
    (tmp_path / "s.pem").write_bytes(certs.cert_pem(certs.make_server(ca).cert))
    (tmp_path / "s.key").write_bytes(certs.key_pem(ca.key))
    config = DtlsConfig(certificate=str(tmp_path / "s.pem"), private_key=str(tmp_path / "s.key"))
    with pytest.raises(StartupError, match=r"^dtls\.private_key \(COAP_DTLS_PEM_KEY\): .*match"):
        server_credentials(config, str(tmp_path))


def test_cache_credentials_answer_for_enabled_devices(services: Services) -> None:
    """PSK keys and registered certificates are known while their device is enabled."""
    device = result(services.registry.create_device("d", generate_token=False)).device
    result(services.registry.set_psk(device.id, "ident", b"key"))
    issued = certs.make_device("d")
    result(services.registry.set_certificate(device.id, certs.cert_pem(issued.cert).decode()))
    credentials = CacheCredentials(services.credentials)
    assert verifyObject(IDTLSCredentials, credentials)
    assert verifyObject(IDTLSCredentials, MemoryCredentials())
    assert credentials.psk_key("ident") == b"key" and credentials.psk_key("other") is None
    assert credentials.certificate_known(issued.sha256.upper())
    result(services.registry.update_device(device.id, enabled=False))
    assert credentials.psk_key("ident") is None
    assert not credentials.certificate_known(issued.sha256)
