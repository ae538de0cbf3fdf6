"""
The in-memory credential cache, including the structure of its timing safety.
"""

from __future__ import annotations

from typing import Any, Callable

from twisted.internet.defer import Deferred
from zope.interface.verify import verifyObject

from gateway.service.build import Services, build_services
from gateway.service.credentials import CredentialCache
from gateway.service.interfaces import ICredentialCache
from gateway.service.passwords import PasswordHasher
from gateway.store.memory import MemoryStore

from .conftest import FAST_HASHER, result


class SpyHasher(PasswordHasher):
    """A hasher that records what each verification compared against."""

    def __init__(self) -> None:
        super().__init__(n=2**4)
        object.__setattr__(self, "verified", [])

    def verify(self, password: str, encoded: str) -> bool:
        self.verified.append(encoded)  # type: ignore[attr-defined]
        return super().verify(password, encoded)


def test_provides_interface(services: Services) -> None:
    """The cache provides ICredentialCache."""
    assert verifyObject(ICredentialCache, services.credentials)


def test_token_lookup_is_by_digest(services: Services) -> None:
    """The cache indexes tokens by digest only: the raw token appears nowhere in it."""
    created = result(services.registry.create_device("a"))
    token = created.access_token
    assert token is not None
    assert token not in repr(services.credentials)
    assert services.credentials.authenticate_token(token) == created.device
    assert services.credentials.authenticate_token(token + "x") is None
    assert services.credentials.authenticate_token("") is None


def test_unknown_user_verifies_against_dummy_hash(clock: Any) -> None:
    """An unknown username costs one hash verification, against the dummy hash."""
    hasher = SpyHasher()
    services = result(build_services(MemoryStore(), clock, hasher))
    dev = result(services.registry.create_device("a")).device
    result(services.registry.set_basic(dev.id, "user", "pw"))
    hasher.verified.clear()  # type: ignore[attr-defined]
    assert result(services.credentials.authenticate_basic("nobody", "pw")) is None
    assert result(services.credentials.authenticate_basic("user", "wrong")) is None
    dummy, stored = hasher.verified  # type: ignore[attr-defined]
    assert dummy == services.credentials._dummy_hash
    assert stored != dummy and stored.startswith("scrypt$")
    # the dummy has the same parameters as real hashes
    assert dummy.split("$")[:4] == stored.split("$")[:4]


def test_device_password_unknown_device_verifies_dummy(clock: Any) -> None:
    """A device without a password also costs one verification against the dummy."""
    hasher = SpyHasher()
    services = result(build_services(MemoryStore(), clock, hasher))
    dev = result(services.registry.create_device("a")).device
    hasher.verified.clear()  # type: ignore[attr-defined]
    assert result(services.credentials.verify_device_password(dev.id, "pw")) is None
    assert hasher.verified == [services.credentials._dummy_hash]  # type: ignore[attr-defined]


def test_correct_password_remembered(clock: Any) -> None:
    """After a success the same password skips the hash; another one is hashed again."""
    hasher = SpyHasher()
    services = result(build_services(MemoryStore(), clock, hasher))
    dev = result(services.registry.create_device("a")).device
    result(services.registry.set_basic(dev.id, "user", "pw"))
    hasher.verified.clear()  # type: ignore[attr-defined]
    assert result(services.credentials.authenticate_basic("user", "pw")) == dev
    assert result(services.credentials.authenticate_basic("user", "pw")) == dev
    assert result(services.credentials.verify_device_password(dev.id, "pw")) == dev
    assert len(hasher.verified) == 1  # type: ignore[attr-defined]
    assert result(services.credentials.authenticate_basic("user", "nope")) is None
    assert len(hasher.verified) == 2  # type: ignore[attr-defined]


def test_password_change_forgets_remembered(services: Services) -> None:
    """A changed password invalidates the remembered old one."""
    dev = result(services.registry.create_device("a")).device
    result(services.registry.set_basic(dev.id, "user", "old"))
    assert result(services.credentials.authenticate_basic("user", "old")) == dev
    result(services.registry.set_basic(dev.id, "user", "new"))
    assert result(services.credentials.authenticate_basic("user", "old")) is None
    assert result(services.credentials.authenticate_basic("user", "new")) == dev


def _deferring(queued: list[Callable[[], Any]]) -> Callable[[Callable[[], Any]], "Deferred[Any]"]:
    """A run_blocking that keeps each call in C{queued} until the test runs it."""

    def later(fn: Callable[[], Any]) -> "Deferred[Any]":
        d: Deferred[Any] = Deferred()
        queued.append(lambda: d.callback(fn()))
        return d

    return later


def test_hashing_runs_through_run_blocking(clock: Any) -> None:
    """Verification is handed to run_blocking, so the caller waits on a Deferred."""
    queued: list[Callable[[], Any]] = []
    later = _deferring(queued)
    store = MemoryStore()
    cache = result(CredentialCache.load(store, FAST_HASHER, later))
    d = cache.authenticate_basic("nobody", "pw")
    assert queued and not d.called
    queued.pop()()
    assert result(d) is None


def test_concurrent_checks_of_one_password_share_one_hash(clock: Any) -> None:
    """Checks of the same password arriving while one runs wait for it; another password doesn't."""
    queued: list[Callable[[], Any]] = []
    later = _deferring(queued)
    store = MemoryStore()
    setup = result(build_services(store, clock, FAST_HASHER))
    dev = result(setup.registry.create_device("a")).device
    result(setup.registry.set_basic(dev.id, "user", "pw"))
    cache = result(CredentialCache.load(store, FAST_HASHER, later))
    burst = [cache.authenticate_basic("user", "pw") for _ in range(5)]
    wrong = cache.authenticate_basic("user", "nope")
    assert len(queued) == 2
    for run in queued:
        run()
    assert [result(d) for d in burst] == [dev] * 5 and result(wrong) is None
    assert result(cache.authenticate_basic("user", "pw")) == dev  # remembered: no new hash
    assert len(queued) == 2


def test_disabled_device_fails_every_method(services: Services) -> None:
    """A disabled device authenticates by no credential."""
    created = result(services.registry.create_device("a"))
    dev = created.device
    result(services.registry.set_psk(dev.id, "ident", b"k"))
    result(services.registry.set_basic(dev.id, "user", "pw"))
    result(services.registry.update_device(dev.id, enabled=False))
    assert services.credentials.authenticate_token(created.access_token or "") is None
    assert services.credentials.psk_for_identity("ident") is None
    assert result(services.credentials.authenticate_basic("user", "pw")) is None


def test_loaded_from_store(clock: Any) -> None:
    """A new cache over the same store knows every device and credential."""
    store = MemoryStore()
    first = result(build_services(store, clock, FAST_HASHER))
    created = result(first.registry.create_device("a"))
    result(first.registry.set_psk(created.device.id, "ident", b"k"))
    second = result(build_services(store, clock, FAST_HASHER))
    assert second.credentials.authenticate_token(created.access_token or "") == created.device
    assert second.credentials.psk_for_identity("ident") == (created.device, b"k")
