# -*- test-case-name: tests.service.test_passwords -*-
"""
Password hashing for basic (username/password) credentials: scrypt with a
random 16-byte salt, encoded as C{scrypt$n$r$p$salt_b64$hash_b64}.  The
parameters travel with each hash, so raising them later keeps old hashes
valid.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

import attrs

__all__ = ["PasswordHasher"]


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


@attrs.frozen
class PasswordHasher:
    """
    @ivar n: scrypt CPU/memory cost (2**14 by default: about 16 MiB and tens
        of milliseconds; tests pass a small value).
    """

    n: int = 2**14
    r: int = 8
    p: int = 1
    dklen: int = 32

    def _derive(self, password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
        return hashlib.scrypt(
            password.encode("utf-8"),
            salt=salt,
            n=n,
            r=r,
            p=p,
            maxmem=256 * n * r + 1024 * 1024,
            dklen=self.dklen,
        )

    def hash(self, password: str) -> str:
        """A new salted hash of C{password}."""
        salt = os.urandom(16)
        key = self._derive(password, salt, self.n, self.r, self.p)
        return f"scrypt${self.n}${self.r}${self.p}${_b64(salt)}${_b64(key)}"

    def verify(self, password: str, encoded: str) -> bool:
        """
        Whether C{password} matches C{encoded}.  A malformed C{encoded} is a
        mismatch, after the same amount of work as a real check.
        """
        try:
            scheme, n, r, p, salt, key = encoded.split("$")
            if scheme != "scrypt":
                raise ValueError(scheme)
            expected = base64.b64decode(key, validate=True)
            derived = self._derive(
                password, base64.b64decode(salt, validate=True), int(n), int(r), int(p)
            )
        except (ValueError, TypeError):
            self._derive(password, b"\0" * 16, self.n, self.r, self.p)
            return False
        return hmac.compare_digest(derived, expected)

    def dummy_hash(self) -> str:
        """
        A hash of a random password, to verify against when a username is
        unknown so that path costs the same as a wrong password.
        """
        return self.hash(_b64(os.urandom(24)))
