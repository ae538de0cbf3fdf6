# -*- test-case-name: tests.dtls.test_context -*-
"""
PSK for pyOpenSSL contexts, through cryptography's raw OpenSSL binding:
pyOpenSSL has no PSK API (pyca/pyopenssl#732 was never merged), but
cryptography's C{Binding.lib} keeps C{SSL_CTX_set_psk_server_callback} and
C{SSL_CTX_use_psk_identity_hint}.  cryptography links its own OpenSSL, so
only these names can be used on pyOpenSSL's objects, never the system libssl.

This relies on two private pyOpenSSL names, C{Context._context} and
C{Connection._reverse_mapping}; C{tests.dtls.test_context} exercises both, so
an upgrade that drops them fails there first.

The callback is synchronous: the key must come from memory.  The binding
cannot read the identity back after the handshake, so the callback stores it
on the connection's app data (the session) as C{psk_identity}.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

from cryptography.hazmat.bindings.openssl.binding import Binding
from OpenSSL import SSL
from twisted.logger import Logger

__all__ = ["install_server_callback", "set_sigalgs", "PskLookup"]

log = Logger()

_ffi = Binding.ffi
_lib = Binding.lib

#: The key of an identity, or C{None} to refuse it.
PskLookup = Callable[[str], Optional[bytes]]

_SIGNATURE = "unsigned int (*)(SSL *, char *, unsigned char *, unsigned int)"


def _failed(exception: Any, value: Any, traceback: Any) -> None:
    log.error("PSK callback failed: {error!r}", error=value)


def install_server_callback(ctx: SSL.Context, lookup: PskLookup, hint: str = "") -> None:
    """Serve PSK suites on C{ctx}, with keys from C{lookup}."""

    def callback(ssl: Any, identity: Any, out: Any, size: int) -> int:
        conn = SSL.Connection._reverse_mapping.get(ssl)
        session = conn.get_app_data() if conn is not None else None
        if session is None:
            return 0
        try:
            name = _ffi.string(identity).decode("utf-8")
        except UnicodeDecodeError:
            return 0
        key = lookup(name)
        session.psk_looked_up(name, key is not None)
        if key is None or not 0 < len(key) <= size:
            return 0
        _ffi.memmove(out, key, len(key))
        return len(key)

    handle = _ffi.callback(_SIGNATURE, callback, error=0, onerror=_failed)
    _lib.SSL_CTX_set_psk_server_callback(ctx._context, handle)
    if hint:
        _lib.SSL_CTX_use_psk_identity_hint(ctx._context, hint.encode("utf-8"))
    # OpenSSL keeps only the C pointer: the Python callback must live as long.
    ctx._gateway_psk_callback = handle  # type: ignore[attr-defined]


def set_sigalgs(ctx: SSL.Context, sigalgs: str) -> None:
    """Limit the handshake's signature algorithms (C{SSL_CTX_set1_sigalgs_list})."""
    if _lib.SSL_CTX_set1_sigalgs_list(ctx._context, sigalgs.encode()) != 1:
        raise ValueError(f"OpenSSL refused the signature algorithms {sigalgs!r}")
