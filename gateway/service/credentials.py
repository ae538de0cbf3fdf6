# -*- test-case-name: tests.service.test_credentials -*-
"""
The in-memory credential cache: devices, profiles and credentials loaded at
start and kept in step by L{gateway.service.registry.DeviceRegistry}, so
authentication never waits on disk.

Timing safety:

 - access tokens are found by the SHA-256 of the presented token in a dict;
   the raw secret is never compared (or even stored);
 - PSK identities, certificate hashes and usernames are not secrets; they
   are dict keys;
 - a basic password is always checked with the scrypt verification: against
   the stored hash, or against a dummy hash when the username is unknown,
   so unknown-user and wrong-password cost the same.  The verification runs
   through C{run_blocking} (a thread pool in production) to keep the reactor
   free.  After a success, a keyed HMAC of (hash, password) is remembered
   per username so that a device sending the same password on every request
   is answered from memory; any other password goes the slow way again.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from typing import Any, Callable, Optional, Sequence, TypeVar

import attrs
from twisted.internet.defer import Deferred, maybeDeferred, succeed
from twisted.python.failure import Failure
from zope.interface import implementer

from gateway.domain.model import (
    Credential,
    CredentialKind,
    Device,
    Profile,
    token_digest,
)
from gateway.service.interfaces import ICredentialCache
from gateway.service.passwords import PasswordHasher
from gateway.store.interfaces import IStore

__all__ = ["SESSION_KINDS", "CredentialCache", "RunBlocking", "run_synchronously"]

T = TypeVar("T")

#: The credentials a DTLS session authenticates (a device holding one is not
#: authenticated by a token).
SESSION_KINDS = frozenset({CredentialKind.PSK, CredentialKind.X509})

#: Runs a blocking callable somewhere and fires with its result.
RunBlocking = Callable[[Callable[[], Any]], "Deferred[Any]"]


def run_synchronously(fn: Callable[[], T]) -> "Deferred[T]":
    """A L{RunBlocking} for tests: runs C{fn} at once."""
    return maybeDeferred(fn)


def certificate_sha256(der: bytes) -> str:
    """The identity of an X.509 certificate: SHA-256 hex of its DER."""
    return hashlib.sha256(der).hexdigest()


@implementer(ICredentialCache)
@attrs.define
class CredentialCache:
    """
    Build with L{CredentialCache.load}.  The C{put_*}/C{remove_*} methods are
    for the registry only.
    """

    _hasher: PasswordHasher = attrs.field(factory=PasswordHasher)
    _run_blocking: RunBlocking = run_synchronously
    _devices: dict[str, Device] = attrs.field(factory=dict)
    #: Device ids by (application, name).
    _names: dict[tuple[str, str], str] = attrs.field(factory=dict)
    _profiles: dict[str, Profile] = attrs.field(factory=dict)
    _by_device: dict[tuple[str, CredentialKind], Credential] = attrs.field(
        factory=dict
    )
    _index: dict[tuple[CredentialKind, str], Credential] = attrs.field(
        factory=dict
    )
    _verified: dict[str, bytes] = attrs.field(factory=dict)
    #: The scrypt checks running, by memo, and who waits for each.
    _verifying: dict[bytes, list["Deferred[bool]"]] = attrs.field(factory=dict)
    #: How many PSK or certificate credentials each device holding one has.
    _session_keys: dict[str, int] = attrs.field(factory=dict)
    _memo_key: bytes = attrs.field(factory=lambda: os.urandom(32))
    _dummy_hash: str = ""

    def __attrs_post_init__(self) -> None:
        if not self._dummy_hash:
            self._dummy_hash = self._hasher.dummy_hash()

    @classmethod
    def load(
        cls,
        store: IStore,
        hasher: Optional[PasswordHasher] = None,
        run_blocking: RunBlocking = run_synchronously,
    ) -> "Deferred[CredentialCache]":
        """Fill a new cache from C{store}."""
        cache = cls(hasher or PasswordHasher(), run_blocking)

        async def fill() -> "CredentialCache":
            await cache.reload(store)
            return cache

        return Deferred.fromCoroutine(fill())

    async def reload(self, store: IStore) -> None:
        """Hold exactly what C{store} has now."""
        profiles = await store.list_profiles()
        devices = await store.list_devices()
        self.replace_all(profiles, devices, await store.load_all_credentials())

    # -- keeping in step (registry and coherence only) ---------------------

    def put_device(self, device: Device) -> None:
        old = self._devices.get(device.id)
        if old is not None:
            self._names.pop((old.application, old.name), None)
        self._devices[device.id] = device
        self._names[(device.application, device.name)] = device.id

    def remove_device(self, device_id: str) -> None:
        old = self._devices.pop(device_id, None)
        if old is not None:
            self._names.pop((old.application, old.name), None)
        for kind in CredentialKind:
            self.remove_credential(device_id, kind)

    def put_profile(self, profile: Profile) -> None:
        self._profiles[profile.name] = profile

    def remove_profile(self, name: str) -> None:
        self._profiles.pop(name, None)

    def put_credential(self, credential: Credential) -> None:
        self.remove_credential(credential.device_id, credential.kind)
        self._by_device[(credential.device_id, credential.kind)] = credential
        self._index[(credential.kind, credential.lookup)] = credential
        if credential.kind in SESSION_KINDS:
            device_id = credential.device_id
            self._session_keys[device_id] = self._session_keys.get(device_id, 0) + 1

    def remove_credential(self, device_id: str, kind: CredentialKind) -> None:
        old = self._by_device.pop((device_id, kind), None)
        if old is not None:
            self._index.pop((kind, old.lookup), None)
            if kind in SESSION_KINDS:
                left = self._session_keys.pop(device_id) - 1
                if left:
                    self._session_keys[device_id] = left
            if kind is CredentialKind.BASIC:
                self._verified.pop(old.lookup, None)

    def replace_device(
        self, device_id: str, device: Optional[Device], credentials: Sequence[Credential]
    ) -> None:
        """Hold what the store now has of one device (C{None}: deleted)."""
        self.remove_device(device_id)
        if device is not None:
            self.put_device(device)
            for credential in credentials:
                self.put_credential(credential)

    def replace_all(
        self,
        profiles: Sequence[Profile],
        devices: Sequence[Device],
        credentials: Sequence[Credential],
    ) -> None:
        """Hold exactly what the store has now (changes may have been missed)."""
        for table in (self._devices, self._names, self._profiles, self._by_device,
                      self._index, self._verified, self._session_keys):
            table.clear()
        for p in profiles:
            self.put_profile(p)
        for d in devices:
            self.put_device(d)
        for c in credentials:
            self.put_credential(c)

    def credential(
        self, kind: CredentialKind, lookup: str
    ) -> Optional[Credential]:
        """The cached credential with this lookup key (for conflict checks)."""
        return self._index.get((kind, lookup))

    # -- ICredentialCache --------------------------------------------------

    def device(self, device_id: str) -> Optional[Device]:
        return self._devices.get(device_id)

    def device_named(self, application: str, name: str) -> Optional[Device]:
        device_id = self._names.get((application, name))
        return None if device_id is None else self._devices.get(device_id)

    def profile(self, name: str) -> Optional[Profile]:
        return self._profiles.get(name)

    def _enabled(self, credential: Optional[Credential]) -> Optional[Device]:
        if credential is None:
            return None
        device = self._devices.get(credential.device_id)
        if device is None or not device.enabled:
            return None
        return device

    def authenticate_token(self, token: str) -> Optional[Device]:
        return self._enabled(
            self._index.get((CredentialKind.ACCESS_TOKEN, token_digest(token)))
        )

    def psk_for_identity(self, identity: str) -> Optional[tuple[Device, bytes]]:
        credential = self._index.get((CredentialKind.PSK, identity))
        device = self._enabled(credential)
        if device is None or credential is None:
            return None
        return device, credential.secret

    def authenticate_certificate(self, der: bytes) -> Optional[Device]:
        return self.authenticate_certificate_sha256(certificate_sha256(der))

    def authenticate_certificate_sha256(self, sha256_hex: str) -> Optional[Device]:
        return self._enabled(
            self._index.get((CredentialKind.X509, sha256_hex.lower()))
        )

    def holds(self, device_id: str, kind: CredentialKind) -> bool:
        return (device_id, kind) in self._by_device

    def holds_session_key(self, device_id: str) -> bool:
        """Whether the device has a PSK or a certificate (a dict lookup: every uplink asks)."""
        return device_id in self._session_keys

    def _memo(self, encoded: str, password: str) -> bytes:
        return hmac.new(
            self._memo_key,
            encoded.encode("utf-8") + b"\0" + password.encode("utf-8"),
            hashlib.sha256,
        ).digest()

    def _check_password(
        self, credential: Optional[Credential], password: str
    ) -> "Deferred[Optional[Device]]":
        encoded = self._dummy_hash
        if credential is not None:
            encoded = credential.secret.decode("ascii", "replace")
        memo = self._memo(encoded, password)
        if credential is not None:
            known = self._verified.get(credential.lookup)
            if known is not None and hmac.compare_digest(known, memo):
                return succeed(self._enabled(credential))

        def verified(ok: bool) -> Optional[Device]:
            if credential is None or not ok:
                return None
            # only remember it if the credential was not changed meanwhile
            if self._by_device.get((credential.device_id, credential.kind)) == credential:
                self._verified[credential.lookup] = memo
            return self._enabled(credential)

        return self._verify(memo, password, encoded).addCallback(verified)

    def _verify(self, memo: bytes, password: str, encoded: str) -> "Deferred[bool]":
        """
        One scrypt check per (hash, password) at a time: the requests that
        arrive with it meanwhile (a device's first burst) wait for its
        outcome instead of each taking a thread and 16 MiB of their own.
        """
        d: Deferred[bool] = Deferred()
        waiting = self._verifying.get(memo)
        if waiting is not None:
            waiting.append(d)
            return d
        waiting = self._verifying[memo] = [d]

        def settle(outcome: Any) -> None:
            del self._verifying[memo]
            for each in waiting:
                if isinstance(outcome, Failure):
                    each.errback(outcome)
                else:
                    each.callback(outcome)

        self._run_blocking(lambda: self._hasher.verify(password, encoded)).addBoth(settle)
        return d

    def authenticate_basic(
        self, username: str, password: str
    ) -> "Deferred[Optional[Device]]":
        return self._check_password(
            self._index.get((CredentialKind.BASIC, username)), password
        )

    def verify_device_password(
        self, device_id: str, password: str
    ) -> "Deferred[Optional[Device]]":
        return self._check_password(
            self._by_device.get((device_id, CredentialKind.BASIC)), password
        )

    # -- hashing for the registry ------------------------------------------

    def hash_password(self, password: str) -> "Deferred[str]":
        """Hash a new password off the reactor thread."""
        return self._run_blocking(lambda: self._hasher.hash(password))
