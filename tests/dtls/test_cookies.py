"""Stateless cookies on a rotating secret."""

from __future__ import annotations

from twisted.internet.task import Clock

from gateway.dtls.cookies import CookieSecrets

ADDRESS = ("192.0.2.1", 5000)


def test_cookie_is_bound_to_the_address() -> None:
    """A cookie is accepted from the address it was made for only, and only whole."""
    cookies = CookieSecrets(Clock())
    cookie = cookies.make(ADDRESS)
    assert cookies.check(ADDRESS, cookie)
    assert not cookies.check(("192.0.2.1", 5001), cookie)
    assert not cookies.check(("192.0.2.2", 5000), cookie)
    assert not cookies.check(ADDRESS, cookie[:-1])
    assert not cookies.check(ADDRESS, b"")


def test_cookie_survives_one_rotation_not_two() -> None:
    """A cookie is still good after one rotation of the secret and refused after two."""
    clock = Clock()
    cookies = CookieSecrets(clock, rotation=60.0)
    cookie = cookies.make(ADDRESS)
    clock.advance(60)
    assert cookies.check(ADDRESS, cookie)
    assert cookies.make(ADDRESS) != cookie
    clock.advance(60)
    assert not cookies.check(ADDRESS, cookie)


def test_long_silence_invalidates_old_cookies() -> None:
    """After more than one period without use, an old secret is not kept as the previous one."""
    clock = Clock()
    cookies = CookieSecrets(clock, rotation=60.0)
    cookie = cookies.make(ADDRESS)
    clock.advance(300)
    assert not cookies.check(ADDRESS, cookie)
