#!/usr/bin/env python3
"""
Make a test CA, a server certificate and device certificates (ECDSA P-256).

    .venv/bin/python scripts/certs.py var/pki                       # ca.pem/.key, server.pem/.key
    .venv/bin/python scripts/certs.py var/pki --host gw.example --key-password s3cret
    .venv/bin/python scripts/certs.py var/pki --device sensor-1 --self-signed sensor-2

An existing CA in the directory is reused.  Each device gets ``<name>.pem`` and
``<name>.key``; its SHA-256 (the identity the gateway matches) is printed.
Register one with ``gatewayctl device create NAME --x509 DIR/NAME.pem``, and
serve the server certificate with ``[dtls] certificate``/``private_key``
(or COAP_DTLS_PEM_CERT / COAP_DTLS_PEM_KEY / COAP_DTLS_PEM_KEY_PASSWORD).
Keys are written 0600.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from gateway.dtls import certs


def _write(path: Path, data: bytes, private: bool = False) -> None:
    certs.write_pem(path, data, private)
    print(path)


def _ca(directory: Path) -> certs.Issued:
    cert, key = directory / "ca.pem", directory / "ca.key"
    if cert.exists() and key.exists():
        loaded = serialization.load_pem_private_key(key.read_bytes(), None)
        return certs.Issued(x509.load_pem_x509_certificate(cert.read_bytes()), loaded)  # type: ignore[arg-type]
    ca = certs.make_ca()
    _write(cert, certs.cert_pem(ca.cert))
    _write(key, certs.key_pem(ca.key), private=True)
    return ca


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("directory", type=Path)
    p.add_argument("--host", action="append", default=[],
                   help="name or IP of the server certificate (repeatable; default: loopback)")
    p.add_argument("--key-password", default="", help="encrypt the server key with this")
    p.add_argument("--no-server", action="store_true", help="make no server certificate")
    p.add_argument("--device", action="append", default=[], metavar="NAME",
                   help="a device certificate signed by the CA (repeatable)")
    p.add_argument("--self-signed", action="append", default=[], metavar="NAME",
                   help="a self-signed device certificate, as in ThingsBoard's guide")
    args = p.parse_args(argv)
    args.directory.mkdir(parents=True, exist_ok=True)
    ca = _ca(args.directory)
    if not args.no_server:
        server = certs.make_server(ca, args.host or certs.DEFAULT_HOSTS)
        _write(args.directory / "server.pem", certs.cert_pem(server.cert, ca.cert))
        _write(args.directory / "server.key", certs.key_pem(server.key, args.key_password),
               private=True)
    for name, signer in [*((n, ca) for n in args.device), *((n, None) for n in args.self_signed)]:
        device = certs.make_device(name, signer)
        _write(args.directory / f"{name}.pem", certs.cert_pem(device.cert))
        _write(args.directory / f"{name}.key", certs.key_pem(device.key), private=True)
        print(f"{name} sha256 {device.sha256}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
