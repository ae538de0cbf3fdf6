# -*- test-case-name: tests.dtls.test_credentials -*-
"""
What the DTLS layer asks of the device registry during a handshake, which
cannot wait: OpenSSL's PSK and verify callbacks are synchronous, so the
answers come from memory (the service layer's credential cache, wired in by
the application; L{MemoryCredentials} here for tests and until then).
"""

from __future__ import annotations

from typing import Optional

import attrs
from zope.interface import Interface, implementer

__all__ = ["IDTLSCredentials", "MemoryCredentials"]


class IDTLSCredentials(Interface):
    def psk_key(identity: str) -> Optional[bytes]:
        """The key of an enabled device's PSK identity, or C{None}."""

    def certificate_known(sha256_hex: str) -> bool:
        """Whether a client certificate (SHA-256 hex of its DER) is registered to a device."""


@implementer(IDTLSCredentials)
@attrs.define
class MemoryCredentials:
    """PSK keys by identity and registered certificate hashes, in dicts."""

    psk: dict[str, bytes] = attrs.field(factory=dict)
    certificates: set[str] = attrs.field(factory=set)

    def psk_key(self, identity: str) -> Optional[bytes]:
        return self.psk.get(identity)

    def certificate_known(self, sha256_hex: str) -> bool:
        return sha256_hex.lower() in self.certificates
