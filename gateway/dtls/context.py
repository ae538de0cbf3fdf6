# -*- test-case-name: tests.dtls.test_context -*-
"""
The server's credentials and the two OpenSSL contexts every session is made
from.

 - L{ServerCredentials.load}: the PEM certificate chain, private key (and
   its password) and client CAs, checked before anything listens; every
   problem is a L{CredentialsError} naming the setting at fault.
 - L{Contexts}: a I{strict} context with the GCM, ChaCha20 and CCM suites at
   OpenSSL's default security level, and a I{ccm8} context with only the
   CoAP-mandated C{PSK-AES128-CCM8} and C{ECDHE-ECDSA-AES128-CCM8}, which
   need C{@SECLEVEL=0}.  L{Contexts.for_hello} gives a client the ccm8
   context only when it offers nothing the strict one serves, so the level
   is never lowered for the others; the ccm8 context refuses weak keys and
   signatures itself (L{gateway.dtls.keys}).

Both contexts: DTLS 1.2 only, PSK suites first with server preference (a
PSK client offers only PSK suites, a certificate client none, so the offer
picks the mode), the client certificate optional, C{OP_NO_QUERY_MTU} with
an explicit MTU per session, C{MODE_RELEASE_BUFFERS}, cookies from
L{gateway.dtls.cookies}, PSK keys through L{gateway.dtls.psk}.  pyOpenSSL
refuses changes to a context once used, so each is configured whole here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import attrs
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from OpenSSL import SSL, crypto

from . import psk
from .cookies import CookieSecrets
from .credentials import IDTLSCredentials
from .keys import key_problem, signature_problem
from .records import ClientHello

__all__ = ["CredentialsError", "ServerCredentials", "Contexts", "STRICT_SUITES", "CCM8_SUITES"]

DTLS_1_2 = 0xFEFD

#: The strict context's suites (OpenSSL names) and their IANA numbers, PSK first.
STRICT_SUITES: dict[str, int] = {
    "PSK-AES128-CCM": 0xC0A4,
    "PSK-AES128-GCM-SHA256": 0x00A8,
    "PSK-AES256-GCM-SHA384": 0x00A9,
    "PSK-CHACHA20-POLY1305": 0xCCAB,
    "ECDHE-PSK-CHACHA20-POLY1305": 0xCCAC,
    "ECDHE-ECDSA-AES128-GCM-SHA256": 0xC02B,
    "ECDHE-ECDSA-AES256-GCM-SHA384": 0xC02C,
    "ECDHE-ECDSA-CHACHA20-POLY1305": 0xCCA9,
    "ECDHE-ECDSA-AES128-CCM": 0xC0AC,
    "ECDHE-RSA-AES128-GCM-SHA256": 0xC02F,
    "ECDHE-RSA-AES256-GCM-SHA384": 0xC030,
    "ECDHE-RSA-CHACHA20-POLY1305": 0xCCA8,
}
#: RFC 7252 §9.1.3.1 (PSK) and §9.1.3.2-3 (certificates): the mandatory suites.
CCM8_SUITES: dict[str, int] = {
    "PSK-AES128-CCM8": 0xC0A8,
    "ECDHE-ECDSA-AES128-CCM8": 0xC0AE,
}
#: Signatures accepted in the handshake (no SHA-1 or MD5), for both contexts.
SIGALGS = (
    "ECDSA+SHA256:ECDSA+SHA384:ECDSA+SHA512:ed25519:ed448:"
    "rsa_pss_rsae_sha256:rsa_pss_rsae_sha384:rsa_pss_rsae_sha512:"
    "RSA+SHA256:RSA+SHA384:RSA+SHA512"
)



def _all(*flags: Optional[int]) -> int:
    # pyOpenSSL types some flags optional (absent from old OpenSSLs); the
    # bundled OpenSSL has them all.
    out = 0
    for flag in flags:
        assert flag is not None
        out |= flag
    return out


_OPTIONS = _all(
    SSL.OP_NO_QUERY_MTU,  # the MTU is set per session: a memory BIO has none to query
    SSL.OP_CIPHER_SERVER_PREFERENCE,
    SSL.OP_NO_TICKET,
    SSL.OP_NO_RENEGOTIATION,
    SSL.OP_COOKIE_EXCHANGE,
)

_STRICT_IDS = frozenset(STRICT_SUITES.values())
_CCM8_IDS = frozenset(CCM8_SUITES.values())

#: Verifies one certificate of a client's chain (pyOpenSSL's callback).
VerifyCallback = Callable[[SSL.Connection, crypto.X509, int, int, int], bool]


class CredentialsError(Exception):
    """
    The server's credentials cannot be used.

    @ivar setting: the setting at fault: C{certificate}, C{private_key},
        C{private_key_password} or C{ca_certificates}.
    """

    def __init__(self, setting: str, message: str) -> None:
        super().__init__(f"{setting}: {message}")
        self.setting = setting
        self.message = message


def _read(setting: str, path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as e:
        raise CredentialsError(setting, f"cannot read {path}: {e.strerror}") from None


def _public_der(key: Any) -> bytes:
    return bytes(
        key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )


@attrs.frozen
class ServerCredentials:
    """
    @ivar chain: the server certificate first, then its chain.
    @ivar ca_file: PEM file of CAs client certificates may chain to, or empty.
    """

    chain: tuple[x509.Certificate, ...]
    key: Any
    ca_file: str = ""

    @classmethod
    def load(
        cls, certificate: str, private_key: str, password: str = "", ca_certificates: str = ""
    ) -> "ServerCredentials":
        """Read and check the PEM files; L{CredentialsError} names what is wrong."""
        try:
            chain = tuple(x509.load_pem_x509_certificates(_read("certificate", certificate)))
        except ValueError:
            raise CredentialsError("certificate", f"no PEM certificate in {certificate}") from None
        raw = _read("private_key", private_key)
        try:
            key = serialization.load_pem_private_key(raw, password.encode() or None)
        except TypeError as e:
            if password:
                raise CredentialsError(
                    "private_key_password", f"{private_key} is not encrypted: leave it empty"
                ) from None
            raise CredentialsError(
                "private_key_password", f"{private_key} is encrypted: {e}"
            ) from None
        except ValueError:
            if password and b"ENCRYPTED" in raw:
                raise CredentialsError(
                    "private_key_password", f"cannot decrypt {private_key}: wrong password"
                ) from None
            raise CredentialsError("private_key", f"no usable PEM key in {private_key}") from None
        problem = key_problem(key)
        if problem is not None:
            raise CredentialsError("private_key", f"{private_key}: {problem}")
        if _public_der(key.public_key()) != _public_der(chain[0].public_key()):
            raise CredentialsError(
                "private_key", f"{private_key} does not match the certificate in {certificate}"
            )
        if ca_certificates:
            try:
                x509.load_pem_x509_certificates(_read("ca_certificates", ca_certificates))
            except ValueError:
                raise CredentialsError(
                    "ca_certificates", f"no PEM certificate in {ca_certificates}"
                ) from None
        return cls(chain, key, ca_certificates)

    @property
    def ecdsa(self) -> bool:
        """Whether the server key can sign for the ECDHE-ECDSA suites."""
        return isinstance(self.chain[0].public_key(), ec.EllipticCurvePublicKey)


def _verifier(credentials: Callable[[], IDTLSCredentials]) -> VerifyCallback:
    """
    The verify callback: a client certificate registered to a device (by
    the SHA-256 of its DER, never its CN) is accepted whatever its chain, so
    self-signed device certificates work; otherwise its chain must verify
    against the configured CAs.  Weak keys and signatures are refused at
    every depth.  The decision is taken at depth 0, the leaf.
    """

    def verify(conn: SSL.Connection, cert: crypto.X509, errno: int, depth: int, ok: int) -> bool:
        session = conn.get_app_data()
        parsed = cert.to_cryptography()
        problem = key_problem(parsed.public_key()) or signature_problem(parsed)
        if problem is not None:
            session.refused(f"client certificate at depth {depth}: {problem}")
            return False
        if depth > 0:
            session.chain_ok = session.chain_ok and bool(ok)
            return True
        sha256 = parsed.fingerprint(hashes.SHA256()).hex()
        session.client_certificate = sha256
        if credentials().certificate_known(sha256):
            return True
        if ok and session.chain_ok:
            return True
        session.refused(f"client certificate {sha256[:16]}... not registered nor CA-signed")
        return False

    return verify


class Contexts:
    """
    The strict and ccm8 contexts, configured alike.

    @param credentials: the current source of PSK keys and registered
        certificates (read at each handshake, so it may be replaced).
    @param psk_hint: the PSK identity hint sent to clients ("" = none).
    """

    def __init__(
        self,
        server: ServerCredentials,
        cookies: CookieSecrets,
        credentials: Callable[[], IDTLSCredentials],
        psk_hint: str = "",
    ) -> None:
        self.server = server
        verify = _verifier(credentials)
        self.strict = self._context(
            server, cookies, credentials, verify, psk_hint, list(STRICT_SUITES)
        )
        ccm8 = [name for name in CCM8_SUITES if server.ecdsa or "ECDSA" not in name]
        self.ccm8 = self._context(
            server, cookies, credentials, verify, psk_hint, [*ccm8, "@SECLEVEL=0"]
        )

    def for_hello(self, hello: Optional[ClientHello]) -> SSL.Context:
        """The context for a client's offer: ccm8 only if it offers no strict suite."""
        if hello is None or hello.suites is None:
            return self.strict
        offered = frozenset(hello.suites)
        if offered & _CCM8_IDS and not offered & _STRICT_IDS:
            return self.ccm8
        return self.strict

    @staticmethod
    def _context(
        server: ServerCredentials,
        cookies: CookieSecrets,
        credentials: Callable[[], IDTLSCredentials],
        verify: VerifyCallback,
        psk_hint: str,
        suites: Sequence[str],
    ) -> SSL.Context:
        ctx = SSL.Context(SSL.DTLS_SERVER_METHOD)
        ctx.set_min_proto_version(DTLS_1_2)
        ctx.set_max_proto_version(DTLS_1_2)
        ctx.set_options(_OPTIONS)
        ctx.set_mode(SSL.MODE_RELEASE_BUFFERS)
        ctx.set_cipher_list(":".join(suites).encode())
        psk.set_sigalgs(ctx, SIGALGS)
        ctx.use_certificate(server.chain[0])
        for extra in server.chain[1:]:
            ctx.add_extra_chain_cert(extra)
        ctx.use_privatekey(server.key)
        ctx.check_privatekey()
        if server.ca_file:
            ctx.load_verify_locations(server.ca_file)
        ctx.set_verify(SSL.VERIFY_PEER | SSL.VERIFY_CLIENT_ONCE, verify)
        ctx.set_cookie_generate_callback(lambda conn: cookies.make(conn.get_app_data().address))
        ctx.set_cookie_verify_callback(
            lambda conn, cookie: cookies.check(conn.get_app_data().address, cookie)
        )
        psk.install_server_callback(ctx, lambda identity: credentials().psk_key(identity), psk_hint)
        return ctx
