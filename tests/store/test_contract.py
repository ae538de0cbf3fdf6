"""
The IStore contract, run against the in-memory and the SQLite backends.
"""

from __future__ import annotations

import pytest
import pytest_twisted
from zope.interface.verify import verifyObject

from gateway.domain.errors import Conflict, InvalidArgument, NotFound
from gateway.domain.model import (
    Attribute,
    AttributeScope,
    Claim,
    Credential,
    CredentialKind,
    Device,
    PayloadFormat,
    PowerMode,
    Profile,
    ProvisionStrategy,
    TelemetryPoint,
)
from gateway.store.interfaces import IStore

SHARED = AttributeScope.SHARED
CLIENT = AttributeScope.CLIENT


def dev(id: str = "d1", name: str = "sensor-1", **kw: object) -> Device:
    return Device(id=id, name=name, created=1700000000.5, **kw)  # type: ignore[arg-type]


def test_provides_interface(store: IStore) -> None:
    """Each backend provides IStore completely."""
    assert verifyObject(IStore, store)


@pytest_twisted.ensureDeferred
async def test_device_round_trip(store: IStore) -> None:
    """A created device can be read back by id and by application and name."""
    d = dev(application="app", enabled=False)
    assert await store.create_device(d) == d
    assert await store.get_device("d1") == d
    assert await store.find_device("app", "sensor-1") == d
    assert await store.find_device("default", "sensor-1") is None
    assert await store.get_device("nope") is None


@pytest_twisted.ensureDeferred
async def test_device_name_unique_per_application(store: IStore) -> None:
    """The same name may be used in two applications but not twice in one."""
    await store.create_device(dev("d1", "x", application="a"))
    await store.create_device(dev("d2", "x", application="b"))
    with pytest.raises(Conflict):
        await store.create_device(dev("d3", "x", application="a"))
    with pytest.raises(Conflict):
        await store.create_device(dev("d1", "other"))
    assert [d.id for d in await store.list_devices("a")] == ["d1"]
    assert len(await store.list_devices()) == 2


@pytest_twisted.ensureDeferred
async def test_device_needs_existing_profile(store: IStore) -> None:
    """A device whose profile does not exist is refused as invalid."""
    with pytest.raises(InvalidArgument):
        await store.create_device(dev(profile="missing"))


@pytest_twisted.ensureDeferred
async def test_update_device(store: IStore) -> None:
    """Updating replaces the stored fields; a missing device is NotFound."""
    await store.create_device(dev())
    await store.create_device(dev("d2", "taken"))
    changed = dev(name="renamed", enabled=False)
    assert await store.update_device(changed) == changed
    assert await store.get_device("d1") == changed
    with pytest.raises(Conflict):
        await store.update_device(dev(name="taken"))
    with pytest.raises(NotFound):
        await store.update_device(dev("zz"))


@pytest_twisted.ensureDeferred
async def test_delete_device_cascades(store: IStore) -> None:
    """Deleting a device removes its credentials, attributes, telemetry, claim."""
    await store.create_device(dev())
    await store.put_credential(Credential("d1", CredentialKind.ACCESS_TOKEN, "h"))
    await store.set_attributes("d1", SHARED, {"a": 1}, 10)
    await store.append_telemetry("d1", [(10, {"t": 1})])
    await store.put_claim(Claim("d1", "s", 100, 10))
    await store.delete_device("d1")
    assert await store.get_device("d1") is None
    assert await store.load_all_credentials() == []
    assert await store.get_attributes("d1", SHARED) == []
    assert await store.get_latest_telemetry("d1") == []
    assert await store.get_claim("d1") is None
    with pytest.raises(NotFound):
        await store.delete_device("d1")


@pytest_twisted.ensureDeferred
async def test_credentials(store: IStore) -> None:
    """A device holds one credential per kind; lookups are unique per kind."""
    await store.create_device(dev())
    await store.create_device(dev("d2", "two"))
    tok = Credential("d1", CredentialKind.ACCESS_TOKEN, "digest")
    psk = Credential("d1", CredentialKind.PSK, "id-1", b"\x00key")
    await store.put_credential(tok)
    await store.put_credential(psk)
    assert await store.get_credentials("d1") == [tok, psk]
    assert await store.find_credential(CredentialKind.PSK, "id-1") == psk
    assert await store.find_credential(CredentialKind.PSK, "digest") is None
    with pytest.raises(Conflict):
        await store.put_credential(
            Credential("d2", CredentialKind.PSK, "id-1", b"k")
        )
    # the same lookup under another kind is fine
    await store.put_credential(Credential("d2", CredentialKind.BASIC, "id-1", b"h"))
    replaced = Credential("d1", CredentialKind.PSK, "id-2", b"k2")
    await store.put_credential(replaced)
    assert await store.find_credential(CredentialKind.PSK, "id-1") is None
    assert set(await store.load_all_credentials()) == {
        tok,
        replaced,
        Credential("d2", CredentialKind.BASIC, "id-1", b"h"),
    }
    assert await store.delete_credential("d1", CredentialKind.PSK) is True
    assert await store.delete_credential("d1", CredentialKind.PSK) is False
    with pytest.raises(NotFound):
        await store.put_credential(Credential("zz", CredentialKind.PSK, "q", b""))


@pytest_twisted.ensureDeferred
async def test_profiles(store: IStore) -> None:
    """Profiles round-trip every field, and provision keys are unique."""
    p = Profile(
        "nbiot",
        payload_format=PayloadFormat.PROTOBUF,
        telemetry_proto='syntax = "proto3"; message T { double t = 1; }',
        attributes_proto="a",
        rpc_request_proto="b",
        rpc_response_proto="c",
        power_mode=PowerMode.EDRX,
        psm_activity_timer=10000,
        edrx_cycle=81000,
        paging_transmission_window=10000,
        provisioning=ProvisionStrategy.ALLOW_CREATE_NEW,
        provision_key="key",
        provision_secret="secret",
    )
    await store.put_profile(p)
    assert await store.get_profile("nbiot") == p
    assert await store.find_profile_by_provision_key("key") == p
    assert [x.name for x in await store.list_profiles()] == ["default", "nbiot"]
    with pytest.raises(Conflict):
        await store.put_profile(Profile("other", provision_key="key"))
    await store.create_device(dev(profile="nbiot"))
    # replacing a profile in use keeps its devices
    await store.put_profile(Profile("nbiot"))
    assert (await store.get_device("d1")) is not None
    with pytest.raises(Conflict):
        await store.delete_profile("nbiot")
    await store.delete_device("d1")
    await store.delete_profile("nbiot")
    assert await store.get_profile("nbiot") is None
    with pytest.raises(NotFound):
        await store.delete_profile("nbiot")


@pytest_twisted.ensureDeferred
async def test_attributes(store: IStore) -> None:
    """Attributes are kept per scope with any JSON value, as given."""
    await store.create_device(dev())
    big = 2**80
    nested = {"a": [1, {"b": None}], "c": 1.5}
    await store.set_attributes("d1", SHARED, {"big": big, "nested": nested}, 5)
    await store.set_attributes("d1", CLIENT, {"big": "client"}, 6)
    assert await store.get_attributes("d1", SHARED) == [
        Attribute(SHARED, "big", big, 5),
        Attribute(SHARED, "nested", nested, 5),
    ]
    assert await store.get_attributes("d1", CLIENT, ["big", "missing"]) == [
        Attribute(CLIENT, "big", "client", 6)
    ]
    assert await store.get_attributes("d1", SHARED, []) == []
    await store.set_attributes("d1", SHARED, {"big": False}, 7)
    assert await store.get_attributes("d1", SHARED, ["big"]) == [
        Attribute(SHARED, "big", False, 7)
    ]
    assert await store.delete_attributes("d1", SHARED, ["big", "nope"]) == ["big"]
    assert [a.key for a in await store.get_attributes("d1", SHARED)] == ["nested"]
    with pytest.raises(NotFound):
        await store.set_attributes("zz", SHARED, {"a": 1}, 1)


@pytest_twisted.ensureDeferred
async def test_attribute_values_are_copied(store: IStore) -> None:
    """Mutating a dict after handing it to the store does not change what is stored."""
    await store.create_device(dev())
    value = {"x": [1]}
    d = store.set_attributes("d1", SHARED, {"k": value}, 1)
    value["x"].append(2)
    await d
    assert (await store.get_attributes("d1", SHARED))[0].value == {"x": [1]}


@pytest_twisted.ensureDeferred
async def test_non_json_value_refused(store: IStore) -> None:
    """A value that is not JSON is refused as invalid."""
    await store.create_device(dev())
    with pytest.raises((InvalidArgument, TypeError)):
        await store.set_attributes("d1", SHARED, {"k": object()}, 1)


@pytest_twisted.ensureDeferred
async def test_telemetry_keeps_latest(store: IStore) -> None:
    """Per key the newest timestamp wins; an older record never overwrites."""
    await store.create_device(dev())
    await store.append_telemetry(
        "d1", [(20, {"t": 2, "h": 50}), (10, {"t": 1, "p": {"x": 1}})]
    )
    await store.append_telemetry("d1", [(15, {"t": 9}), (20, {"h": 51})])
    assert await store.get_latest_telemetry("d1") == [
        TelemetryPoint("h", 51, 20),
        TelemetryPoint("p", {"x": 1}, 10),
        TelemetryPoint("t", 2, 20),
    ]
    assert await store.get_latest_telemetry("d1", ["t", "zz"]) == [
        TelemetryPoint("t", 2, 20)
    ]
    with pytest.raises(NotFound):
        await store.append_telemetry("zz", [(1, {"a": 1})])


@pytest_twisted.ensureDeferred
async def test_claims(store: IStore) -> None:
    """A claim is recorded, replaced and deleted per device."""
    await store.create_device(dev())
    await store.put_claim(Claim("d1", "s1", 100, 1))
    await store.put_claim(Claim("d1", "s2", 200, 2))
    assert await store.get_claim("d1") == Claim("d1", "s2", 200, 2)
    assert await store.delete_claim("d1") is True
    assert await store.delete_claim("d1") is False
    with pytest.raises(NotFound):
        await store.put_claim(Claim("zz", "s", 1, 1))
