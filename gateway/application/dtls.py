# -*- test-case-name: tests.application.test_dtls -*-
"""
The DTLS listener's parts that need the rest of the gateway:

 - L{server_credentials}: the configured PEM files, or the test CA made
   under C{<data_dir>/tls/} on first start (its path logged), checked before
   anything listens; a problem is a L{StartupError} naming the setting;
 - L{CacheCredentials}: PSK keys and registered certificates, answered by
   the service layer's in-memory credential cache.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import attrs
from twisted.logger import Logger
from zope.interface import implementer

from gateway.config import TB_ALIASES, DtlsConfig
from gateway.dtls.certs import ensure_test_ca
from gateway.dtls.context import CredentialsError, ServerCredentials
from gateway.dtls.credentials import IDTLSCredentials
from gateway.service.interfaces import ICredentialCache

from .startup import StartupError

__all__ = ["server_credentials", "CacheCredentials"]

log = Logger(namespace="gateway.tap")

_VARIABLES = {key: variable for variable, (section, key) in TB_ALIASES.items() if section == "dtls"}


def _setting(key: str) -> str:
    variable = _VARIABLES.get(key)
    return f"dtls.{key} ({variable})" if variable else f"dtls.{key}"


def server_credentials(config: DtlsConfig, data_dir: str) -> ServerCredentials:
    """The server's certificate and key for C{config}; L{StartupError} if unusable."""
    if config.test_ca:
        directory = Path(data_dir).absolute() / "tls"
        try:
            found, made = ensure_test_ca(directory)
        except OSError as e:
            raise StartupError(
                f"dtls.certificate: cannot make the test CA in {directory}: {e.strerror}"
            ) from None
        log.info(
            "DTLS uses the test CA {ca} ({what}); clients check the server with"
            " coap-client-openssl -R {ca}",
            ca=str(found.ca), what="made now" if made else "made on an earlier start",
        )
        certificate, private_key = str(found.certificate), str(found.private_key)
    elif not config.certificate or not config.private_key:
        missing = "certificate" if not config.certificate else "private_key"
        raise StartupError(
            f"{_setting(missing)}: set both certificate and private_key, or neither"
            " (for the test CA)"
        )
    else:
        certificate, private_key = config.certificate, config.private_key
    try:
        return ServerCredentials.load(
            certificate, private_key, config.private_key_password, config.ca_certificates
        )
    except CredentialsError as e:
        raise StartupError(f"{_setting(e.setting)}: {e.message}") from None


@implementer(IDTLSCredentials)
@attrs.frozen
class CacheCredentials:
    """L{IDTLSCredentials} over the credential cache: enabled devices only."""

    _cache: ICredentialCache

    def psk_key(self, identity: str) -> Optional[bytes]:
        found = self._cache.psk_for_identity(identity)
        return found[1] if found is not None else None

    def certificate_known(self, sha256_hex: str) -> bool:
        return self._cache.authenticate_certificate_sha256(sha256_hex.lower()) is not None
