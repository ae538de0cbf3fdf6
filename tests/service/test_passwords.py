"""
Password hashing.
"""

from __future__ import annotations

from gateway.service.passwords import PasswordHasher

H = PasswordHasher(n=2**4)


def test_hash_verifies() -> None:
    """A hash verifies its password and no other."""
    encoded = H.hash("secret")
    assert H.verify("secret", encoded)
    assert not H.verify("Secret", encoded)


def test_salted() -> None:
    """Two hashes of one password differ (random salt) and hold no plain text."""
    a, b = H.hash("secret"), H.hash("secret")
    assert a != b
    assert "secret" not in a


def test_parameters_travel_with_hash() -> None:
    """A hash made with other parameters still verifies."""
    encoded = PasswordHasher(n=2**5).hash("pw")
    assert H.verify("pw", encoded)


def test_malformed_hash_is_a_mismatch() -> None:
    """A malformed stored hash is a mismatch, not an error."""
    assert not H.verify("pw", "garbage")
    assert not H.verify("pw", "scrypt$16$8$1$!!$!!")
