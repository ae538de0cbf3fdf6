"""
The device-services facade the dialects get: authentication in every form,
a device's own data, and activity reports, over the real services.
"""

from __future__ import annotations

import hashlib
import ssl
from pathlib import Path

import pytest_twisted
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock
from zope.interface.verify import verifyObject

from gateway.domain.errors import InvalidArgument
from gateway.domain.model import AttributeScope, CredentialKind, Rpc
from gateway.service.build import Services, open_services
from gateway.service.interfaces import ActivityEvent, DeviceSeen, DeviceUnreachable, IDeviceServices

from .conftest import FAST_HASHER, failure, result
from .test_registry import CERT_PEM


def test_memory_services_provide_the_facade(services: Services) -> None:
    """The memory-backed service layer's facade provides IDeviceServices."""
    assert verifyObject(IDeviceServices, services.devices)


@pytest_twisted.ensureDeferred
async def test_sqlite_services_provide_the_facade(tmp_path: Path) -> None:
    """The SQLite-backed service layer's facade provides IDeviceServices too."""
    from twisted.internet import reactor

    s = await open_services(reactor, "sqlite", str(tmp_path / "gateway.db"), FAST_HASHER)
    try:
        assert verifyObject(IDeviceServices, s.devices)
    finally:
        await s.close()


def test_token_and_enabled_device(services: Services) -> None:
    """A token authenticates its device until the device is disabled."""
    created = result(services.registry.create_device("d", access_token="TOK"))
    device = created.device
    assert services.devices.authenticate_token("TOK") == device
    assert services.devices.enabled_device(device.id) == device
    result(services.registry.update_device(device.id, enabled=False))
    assert services.devices.authenticate_token("TOK") is None
    assert services.devices.enabled_device(device.id) is None
    assert services.devices.enabled_device("no-such-id") is None


def test_dtls_identity_is_certificate_hash_or_psk_identity(services: Services) -> None:
    """A DTLS identity matches a certificate's SHA-256 hex or else a PSK identity."""
    by_cert = result(services.registry.create_device("c", generate_token=False)).device
    by_psk = result(services.registry.create_device("p", generate_token=False)).device
    result(services.registry.set_certificate(by_cert.id, CERT_PEM))
    result(services.registry.set_psk(by_psk.id, "psk-ident", b"k" * 16))
    sha256 = hashlib.sha256(ssl.PEM_cert_to_DER_cert(CERT_PEM)).hexdigest()
    assert services.devices.authenticate_identity(CredentialKind.X509, sha256) == by_cert
    assert services.devices.authenticate_identity(CredentialKind.PSK, "psk-ident") == by_psk
    assert services.devices.authenticate_identity(CredentialKind.PSK, "stranger") is None


def test_identity_kinds_do_not_mix(services: Services) -> None:
    """A PSK identity spelled like a certificate hash is not that certificate's device."""
    by_cert = result(services.registry.create_device("c", generate_token=False)).device
    by_psk = result(services.registry.create_device("p", generate_token=False)).device
    sha256 = result(services.registry.set_certificate(by_cert.id, CERT_PEM))
    result(services.registry.set_psk(by_psk.id, sha256, b"k" * 16))
    assert services.devices.authenticate_identity(CredentialKind.PSK, sha256) == by_psk
    assert services.devices.authenticate_identity(CredentialKind.X509, sha256) == by_cert


def test_token_of_a_session_device_is_refused(services: Services) -> None:
    """A device holding a PSK or a certificate is not authenticated by its access token."""
    for kind in (CredentialKind.PSK, CredentialKind.X509):
        name = f"d-{kind.value}"
        created = result(services.registry.create_device(name, access_token=kind.value))
        if kind is CredentialKind.PSK:
            result(services.registry.set_psk(created.device.id, "ident", b"k"))
        else:
            result(services.registry.set_certificate(created.device.id, CERT_PEM))
        assert services.devices.authenticate_token(kind.value) is None
        result(services.registry.delete_credential(created.device.id, kind))
        assert services.devices.authenticate_token(kind.value) == created.device


def test_password_forms(services: Services) -> None:
    """Username and password, or the device id and password, authenticate through Deferreds."""
    device = result(services.registry.create_device("b", generate_token=False)).device
    result(services.registry.set_basic(device.id, "user", "pw"))
    assert result(services.devices.authenticate_basic("user", "pw")) == device
    assert result(services.devices.authenticate_basic("user", "bad")) is None
    assert result(services.devices.authenticate_password(device.id, "pw")) == device
    assert result(services.devices.authenticate_password(device.id, "bad")) is None


def test_attributes_the_device_may_touch(services: Services) -> None:
    """A device writes client attributes, reads client and shared ones, never server ones."""
    device_id = result(services.registry.create_device("a")).device.id
    result(services.devices.set_client_attributes(device_id, {"fw": "1"}))
    found = result(services.devices.get_attributes(device_id, AttributeScope.CLIENT))
    assert {a.key: a.value for a in found} == {"fw": "1"}
    heard: list[object] = []
    services.devices.subscribe_attributes(device_id, heard.append)
    result(services.attributes.set_attributes(device_id, AttributeScope.SHARED, {"led": 1}))
    assert heard == [{"led": 1}]
    assert result(services.devices.get_attributes(device_id, AttributeScope.SHARED))
    result(services.attributes.set_attributes(device_id, AttributeScope.SERVER, {"s": 1}))
    failure(services.devices.get_attributes(device_id, AttributeScope.SERVER), InvalidArgument)


def test_reports_reach_activity_subscribers(services: Services) -> None:
    """Seen and unreachable reports are published on the service layer's activity hub."""
    heard: list[ActivityEvent] = []
    services.activity.subscribe(heard.append)
    services.devices.report_seen("d1", "ack")
    services.devices.report_unreachable("d1", "timeout")
    now = 1_700_000_000
    assert heard == [DeviceSeen("d1", now, "ack"), DeviceUnreachable("d1", now, "timeout")]


def test_queued_rpcs_count_those_not_yet_sent(services: Services, clock: Clock) -> None:
    """queued_rpcs counts a device's RPCs waiting in the queue, not those handed to it."""
    device = result(services.registry.create_device("queued")).device
    devices = services.devices
    assert devices.queued_rpcs(device.id) == 0
    result(services.rpc.enqueue(device.id, "a", None, oneway=True))
    result(services.rpc.enqueue(device.id, "b", None, oneway=True))
    assert devices.queued_rpcs(device.id) == 2
    sent: list[Rpc] = []
    devices.subscribe_rpc(device.id, lambda rpc: (sent.append(rpc), Deferred())[1])
    clock.advance(0)
    assert [rpc.method for rpc in sent] == ["a"]
    assert devices.queued_rpcs(device.id) == 1
