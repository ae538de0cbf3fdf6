"""
The device registry over the in-memory store.
"""

from __future__ import annotations

import datetime
import hashlib
import ssl

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from twisted.internet.task import Clock
from zope.interface.verify import verifyObject

from gateway.domain.errors import Conflict, InvalidArgument, NotFound
from gateway.domain.model import (
    Credential,
    CredentialKind,
    Device,
    Profile,
    ProvisionStrategy,
    token_digest,
)
from gateway.service.build import Services
from gateway.service.interfaces import IDeviceRegistry

from .conftest import RecordingStore, failure, result


def _self_signed() -> str:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "device")])
    now = datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


CERT_PEM = _self_signed()


def test_provides_interface(services: Services) -> None:
    """The registry provides IDeviceRegistry."""
    assert verifyObject(IDeviceRegistry, services.registry)


def test_default_profile_exists(services: Services) -> None:
    """A fresh service layer has the default profile, which cannot be deleted."""
    assert [p.name for p in result(services.registry.list_profiles())] == ["default"]
    failure(services.registry.delete_profile("default"), Conflict)


def test_create_generates_token_once(services: Services, clock: Clock) -> None:
    """A new device gets a random URL-safe token, returned once, stored only as a digest."""
    created = result(services.registry.create_device("s1"))
    token = created.access_token
    assert token and len(token) >= 20
    assert all(c.isalnum() or c in "-_" for c in token)
    assert created.device.created == clock.seconds()
    infos = result(services.registry.get_credentials(created.device.id))
    assert [(i.kind, i.lookup) for i in infos] == [
        (CredentialKind.ACCESS_TOKEN, token_digest(token))
    ]
    assert services.credentials.authenticate_token(token) == created.device


def test_create_with_given_token_or_none(services: Services) -> None:
    """A given token is used as is; without token generation there is none."""
    a = result(services.registry.create_device("a", access_token="A1_TEST_TOKEN"))
    assert a.access_token == "A1_TEST_TOKEN"
    b = result(services.registry.create_device("b", generate_token=False))
    assert b.access_token is None
    assert result(services.registry.get_credentials(b.device.id)) == []


def test_duplicate_name_and_token_conflict(services: Services) -> None:
    """A taken name (per application) or token is a Conflict and leaves nothing behind."""
    result(services.registry.create_device("a", access_token="tok"))
    failure(services.registry.create_device("a"), Conflict)
    failure(services.registry.create_device("b", access_token="tok"), Conflict)
    result(services.registry.create_device("a", application="other"))
    assert sorted(d.name for d in result(services.registry.list_devices())) == ["a", "a"]


def test_name_and_token_clash_reported_together(services: Services) -> None:
    """A device whose name and token are both taken hears of both in one Conflict."""
    result(services.registry.create_device("a", access_token="tok"))
    error = failure(services.registry.create_device("a", access_token="tok"), Conflict)
    assert error.value.message == (
        "device name 'a' is taken in 'default'; this access token is used by another device"
    )


def test_invalid_arguments(services: Services) -> None:
    """Empty names and unknown profiles are invalid arguments."""
    failure(services.registry.create_device(""), InvalidArgument)
    failure(services.registry.create_device("x", profile="nope"), InvalidArgument)


def test_update_and_disable(services: Services) -> None:
    """A disabled device no longer authenticates; renaming keeps its id."""
    created = result(services.registry.create_device("a"))
    token = created.access_token
    assert token is not None
    dev = result(services.registry.update_device(created.device.id, name="b", enabled=False))
    assert dev.name == "b" and not dev.enabled and dev.id == created.device.id
    assert services.credentials.authenticate_token(token) is None
    assert result(services.registry.find_device("b")) == dev
    failure(services.registry.find_device("a"), NotFound)
    failure(services.registry.update_device("zz", name="c"), NotFound)


def test_delete_device_drops_credentials(services: Services) -> None:
    """Deleting a device removes it and its credentials from the cache."""
    created = result(services.registry.create_device("a"))
    result(services.registry.set_psk(created.device.id, "ident", b"key"))
    result(services.registry.delete_device(created.device.id))
    assert services.credentials.authenticate_token(created.access_token or "") is None
    assert services.credentials.psk_for_identity("ident") is None
    failure(services.registry.get_device(created.device.id), NotFound)
    failure(services.registry.delete_device(created.device.id), NotFound)


def test_replace_token(services: Services) -> None:
    """Setting a new token retires the old one."""
    created = result(services.registry.create_device("a"))
    new = result(services.registry.set_access_token(created.device.id))
    assert new != created.access_token
    assert services.credentials.authenticate_token(created.access_token or "") is None
    assert services.credentials.authenticate_token(new) == created.device


def test_psk_certificate_basic(services: Services) -> None:
    """A device may hold a token, a PSK, a certificate and a password at once."""
    dev = result(services.registry.create_device("a")).device
    result(services.registry.set_psk(dev.id, "ident", b"\x01\x02"))
    digest = result(services.registry.set_certificate(dev.id, CERT_PEM))
    assert digest == hashlib.sha256(ssl.PEM_cert_to_DER_cert(CERT_PEM)).hexdigest()
    result(services.registry.set_basic(dev.id, "user", "pw"))
    assert services.credentials.psk_for_identity("ident") == (dev, b"\x01\x02")
    assert services.credentials.authenticate_certificate(
        ssl.PEM_cert_to_DER_cert(CERT_PEM)
    ) == dev
    assert services.credentials.authenticate_certificate_sha256(digest) == dev
    assert result(services.credentials.authenticate_basic("user", "pw")) == dev
    kinds = {i.kind for i in result(services.registry.get_credentials(dev.id))}
    assert kinds == set(CredentialKind)
    other = result(services.registry.create_device("b")).device
    failure(services.registry.set_psk(other.id, "ident", b"k"), Conflict)
    failure(services.registry.set_basic(other.id, "user", "x"), Conflict)
    failure(services.registry.set_certificate(other.id, "not pem"), InvalidArgument)
    failure(services.registry.set_certificate(other.id, CERT_PEM), Conflict)
    failure(services.registry.set_psk(other.id, "id2", b""), InvalidArgument)


def test_delete_credential(services: Services) -> None:
    """Deleting a credential takes effect in the cache; deleting twice is NotFound."""
    dev = result(services.registry.create_device("a")).device
    result(services.registry.set_psk(dev.id, "ident", b"k"))
    result(services.registry.delete_credential(dev.id, CredentialKind.PSK))
    assert services.credentials.psk_for_identity("ident") is None
    failure(services.registry.delete_credential(dev.id, CredentialKind.PSK), NotFound)


def test_profiles(services: Services) -> None:
    """Profiles are created once, updated, validated and deleted when unused."""
    p = Profile("nb", provisioning=ProvisionStrategy.ALLOW_CREATE_NEW,
                provision_key="k", provision_secret="s")
    result(services.registry.create_profile(p))
    failure(services.registry.create_profile(p), Conflict)
    failure(services.registry.update_profile(Profile("zz")), NotFound)
    failure(services.registry.create_profile(
        Profile("bad", provisioning=ProvisionStrategy.ALLOW_CREATE_NEW)), InvalidArgument)
    failure(services.registry.create_profile(Profile("bad", psm_activity_timer=-1)),
            InvalidArgument)
    dev = result(services.registry.create_device("a", profile="nb")).device
    failure(services.registry.delete_profile("nb"), Conflict)
    result(services.registry.update_device(dev.id, profile="default"))
    result(services.registry.delete_profile("nb"))
    failure(services.registry.get_profile("nb"), NotFound)
    assert services.credentials.profile("nb") is None


def test_device_and_token_are_one_unit(recorded: Services, recording: RecordingStore) -> None:
    """A device and its token are written in one unit of work."""
    recording.units.clear()
    created = result(recorded.registry.create_device("a"))
    assert recording.kinds() == [["CreateDevice", "PutCredential"]]
    digest = token_digest(created.access_token or "")
    assert result(recording.get_credentials(created.device.id)) == [
        Credential(created.device.id, CredentialKind.ACCESS_TOKEN, digest)
    ]


def test_token_clash_in_store_leaves_no_device(
    recorded: Services, recording: RecordingStore
) -> None:
    """A token taken in the store fails the creation in its one unit: no device is left to undo."""
    # Another writer (a second gateway node) holds the token; this cache has not heard of it.
    result(recording.create_device(Device("other", "other")))
    taken = Credential("other", CredentialKind.ACCESS_TOKEN, token_digest("tok"))
    result(recording.put_credential(taken))
    recording.units.clear()
    failure(recorded.registry.create_device("a", access_token="tok"), Conflict)
    assert recording.kinds() == [["CreateDevice", "PutCredential"]]
    assert [d.id for d in result(recording.list_devices())] == ["other"]
    failure(recorded.registry.find_device("a"), NotFound)
    assert [d.name for d in result(recorded.registry.list_devices())] == ["other"]
    assert recorded.credentials.authenticate_token("tok") is None
