# -*- test-case-name: tests.dtls.test_context -*-
"""
The strength rules for keys and certificate signatures.

The CCM8 suites CoAP mandates need OpenSSL's C{@SECLEVEL=0}, which would
also let weak keys and signatures through; their context refuses them here
instead (in the verify callback, and for the server's own key at start), so
CCM8 does not lower anything else.
"""

from __future__ import annotations

from typing import Optional

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa

__all__ = ["key_problem", "signature_problem", "MIN_RSA_BITS", "MIN_EC_BITS"]

MIN_RSA_BITS = 2048
MIN_EC_BITS = 256
_WEAK_HASHES = frozenset({"md5", "sha1"})


def key_problem(key: object) -> Optional[str]:
    """Why a public or private key is too weak, or C{None} if it is strong enough."""
    if isinstance(key, (rsa.RSAPublicKey, rsa.RSAPrivateKey)):
        if key.key_size < MIN_RSA_BITS:
            return f"RSA key of {key.key_size} bits (at least {MIN_RSA_BITS} needed)"
        return None
    if isinstance(key, (ec.EllipticCurvePublicKey, ec.EllipticCurvePrivateKey)):
        if key.curve.key_size < MIN_EC_BITS:
            return f"EC key on {key.curve.name} (at least {MIN_EC_BITS} bits needed)"
        return None
    if isinstance(
        key,
        (
            ed25519.Ed25519PublicKey,
            ed25519.Ed25519PrivateKey,
            ed448.Ed448PublicKey,
            ed448.Ed448PrivateKey,
        ),
    ):
        return None
    if isinstance(key, (dsa.DSAPublicKey, dsa.DSAPrivateKey)):
        return "DSA keys are refused"
    return f"unsupported key type {type(key).__name__}"


def signature_problem(cert: x509.Certificate) -> Optional[str]:
    """
    Why a certificate's signature is too weak, or C{None}.  A self-issued
    certificate's own signature proves nothing either way (it is trusted
    by its fingerprint or as an anchor), so it is not judged.
    """
    if cert.issuer == cert.subject:
        return None
    algorithm = cert.signature_hash_algorithm
    if algorithm is not None and algorithm.name in _WEAK_HASHES:
        return f"signed with {algorithm.name.upper()}"
    return None
