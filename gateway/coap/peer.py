"""
Peers: who a datagram came from, and how to answer them.

The engine never sees raw addresses: every piece of per-peer state is keyed
by C{peer.key}, so a DTLS session (whose identity is the PSK identity or the
certificate's SHA-256) can stand where a UDP address does.
"""

from __future__ import annotations

from typing import Any, Callable, Hashable

import attrs
from zope.interface import Attribute, Interface, implementer

from .params import TransmissionParameters


class IPeer(Interface):
    """The far end of a CoAP conversation."""

    key = Attribute("A hashable value naming this peer in the engine's tables.")
    address = Attribute("The (host, port) the peer's datagrams come from.")
    identity = Attribute(
        "The L{PeerIdentity} a DTLS session authenticated, or None (plain UDP,"
        " or a DTLS session whose client showed only the server's certificate)."
    )
    params = Attribute(
        "The L{TransmissionParameters} for this peer: its timers, NSTART and"
        " dedup lifetimes.  Transports start every peer on the engine's"
        " defaults; whoever knows the device (its profile) may replace them."
    )

    def send(data: bytes) -> None:
        """Send one datagram to the peer."""


@attrs.frozen
class PeerIdentity:
    """
    Who a DTLS session's client proved to be.

    @ivar kind: C{"psk"} (C{value} is the PSK identity) or C{"x509"}
        (C{value} is the SHA-256 hex of the client certificate's DER).
    """

    kind: str = attrs.field(validator=attrs.validators.in_(("psk", "x509")))
    value: str

    def __str__(self) -> str:
        return f"{self.kind}:{self.value}"


#: Sends one datagram to an address; errors are the sender's to handle.
SendTo = Callable[[bytes, Any], object]


def normalise_host(host: str) -> str:
    """Map an IPv4-mapped IPv6 address (dual-stack socket) to plain IPv4."""
    if host.startswith("::ffff:") and "." in host:
        return host[7:]
    return host


@implementer(IPeer)
@attrs.define(eq=False, slots=True)
class UDPPeer:
    """A peer reached over plain UDP."""

    _sendto: SendTo
    address: tuple[str, int]
    params: TransmissionParameters = attrs.field(factory=TransmissionParameters)
    identity: None = None

    @property
    def key(self) -> Hashable:
        return self.address

    @property
    def host(self) -> str:
        return normalise_host(self.address[0])

    def send(self, data: bytes) -> None:
        self._sendto(data, self.address)

    def __str__(self) -> str:
        host, port = self.host, self.address[1]
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
