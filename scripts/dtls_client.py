#!/usr/bin/env python3
"""
A DTLS 1.2 client over pyOpenSSL memory BIOs, with no I/O of its own: feed
it datagrams, send what it returns.  The unit tests drive the gateway's DTLS
layer with it in memory; ``bench.py`` and ``dtls_flood.py`` put it on a
loopback socket (``handshake`` below).

    client = MemoryClient(psk=("identity", b"key"))
    out = client.start()          # the ClientHello
    out = client.receive(dgram)   # the next flight, or []
    client.established, client.received, client.send(b"...")
"""

from __future__ import annotations

import select
import socket
import time
from typing import Any, Optional

from cryptography import x509
from cryptography.hazmat.bindings.openssl.binding import Binding
from cryptography.hazmat.primitives import serialization
from OpenSSL import SSL, crypto

__all__ = ["MemoryClient", "handshake", "PSK_CIPHERS", "CERT_CIPHERS", "CCM8_CIPHERS"]

_ffi, _lib = Binding.ffi, Binding.lib

PSK_CIPHERS = "PSK-AES128-CCM8:PSK-AES128-GCM-SHA256:PSK-AES128-CCM"
CERT_CIPHERS = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES128-CCM8"
#: What a tinydtls-style device offers: the CoAP-mandated suites only.
CCM8_CIPHERS = "PSK-AES128-CCM8:ECDHE-ECDSA-AES128-CCM8:@SECLEVEL=0"

_PSK_CLIENT = (
    "unsigned int (*)(SSL *, char *, char *, unsigned int, unsigned char *, unsigned int)"
)


class MemoryClient:
    """
    @param psk: (identity, key) to offer PSK suites only.
    @param certificate: (cert PEM, key PEM) for mutual X.509.
    @param ca: PEM the server certificate must chain to (unchecked if None).
    """

    def __init__(
        self,
        psk: Optional[tuple[str, bytes]] = None,
        certificate: Optional[tuple[bytes, bytes]] = None,
        ca: Optional[bytes] = None,
        ciphers: Optional[str] = None,
        mtu: int = 1152,
    ) -> None:
        ctx = SSL.Context(SSL.DTLS_CLIENT_METHOD)
        ctx.set_options(SSL.OP_NO_QUERY_MTU | SSL.OP_NO_TICKET)
        ctx.set_cipher_list((ciphers or (PSK_CIPHERS if psk else CERT_CIPHERS)).encode())
        if psk is not None:
            identity, key = psk

            def callback(ssl: Any, hint: Any, out_id: Any, id_size: int, out_key: Any,
                         key_size: int) -> int:
                raw = identity.encode()
                _ffi.memmove(out_id, raw + b"\0", len(raw) + 1)
                _ffi.memmove(out_key, key, len(key))
                return len(key)

            self._psk = _ffi.callback(_PSK_CLIENT, callback)
            _lib.SSL_CTX_set_psk_client_callback(ctx._context, self._psk)
        if certificate is not None:
            ctx.use_certificate(x509.load_pem_x509_certificate(certificate[0]))
            ctx.use_privatekey(serialization.load_pem_private_key(certificate[1], None))  # type: ignore[arg-type]
        if ca is not None:
            store = ctx.get_cert_store()
            assert store is not None
            for cert in x509.load_pem_x509_certificates(ca):
                store.add_cert(crypto.X509.from_cryptography(cert))
            ctx.set_verify(SSL.VERIFY_PEER, lambda *args: bool(args[-1]))
        self.conn = SSL.Connection(ctx, None)
        self.conn.set_connect_state()
        self.conn.set_ciphertext_mtu(mtu)
        self.established = False
        self.failed: Optional[Exception] = None
        self.closed = False
        self.received: list[bytes] = []

    def _out(self) -> list[bytes]:
        try:
            data = self.conn.bio_read(65536)
        except SSL.WantReadError:
            return []
        return [data]

    def _step(self) -> None:
        try:
            self.conn.do_handshake()
        except SSL.WantReadError:
            return
        except SSL.Error as e:
            self.failed = e
            return
        self.established = True

    def start(self) -> list[bytes]:
        """The first ClientHello."""
        self._step()
        return self._out()

    def receive(self, datagram: bytes) -> list[bytes]:
        """One datagram from the server; returns what to send back."""
        self.conn.bio_write(datagram)
        if not self.established:
            self._step()
        if self.established:
            while True:
                try:
                    self.received.append(self.conn.recv(65536))
                except SSL.WantReadError:
                    break
                except SSL.ZeroReturnError:
                    self.closed = True
                    break
                except SSL.Error as e:
                    self.failed = e
                    break
        return self._out()

    def retransmit(self) -> list[bytes]:
        """The last flight again (what the client's timer would send)."""
        self.conn.DTLSv1_handle_timeout()
        return self._out()

    def send(self, data: bytes) -> list[bytes]:
        self.conn.send(data)
        return self._out()

    def close(self) -> list[bytes]:
        try:
            self.conn.shutdown()
        except SSL.Error:
            pass
        return self._out()

    @property
    def cipher(self) -> Optional[str]:
        return self.conn.get_cipher_name()


def handshake(client: MemoryClient, sock: socket.socket, timeout: float = 5.0) -> bool:
    """Run C{client}'s handshake over a connected UDP socket; whether it finished."""
    for data in client.start():
        sock.send(data)
    deadline = time.monotonic() + timeout
    while not client.established and client.failed is None:
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        ready, _, _ = select.select([sock], [], [], min(left, 1.0))
        if not ready:
            for data in client.retransmit():
                sock.send(data)
            continue
        for data in client.receive(sock.recv(65536)):
            sock.send(data)
    return client.established
