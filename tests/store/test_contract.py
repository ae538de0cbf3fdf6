"""
The IStore contract, run against the in-memory and the SQLite backends.
"""

from __future__ import annotations

from typing import Any, Callable

import pytest
import pytest_twisted
from twisted.internet.defer import Deferred
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
from gateway.store.unit import (
    AppendTelemetry,
    CreateDevice,
    DeleteAttributes,
    DeleteClaim,
    DeleteCredential,
    DeleteDevice,
    DeleteProfile,
    PutClaim,
    PutCredential,
    PutProfile,
    SetAttributes,
    UnitOfWork,
    UpdateDevice,
)

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
async def test_device_gateways_round_trip(store: IStore) -> None:
    """The gateways a device lists are stored, updated and read back in order."""
    await store.create_device(dev(gateways=("gw-b", "gw-a")))
    assert (await store.get_device("d1")).gateways == ("gw-b", "gw-a")  # type: ignore[union-attr]
    await store.update_device(dev(gateways=()))
    assert (await store.get_device("d1")).gateways == ()  # type: ignore[union-attr]


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
async def test_telemetry_of_a_missing_device_is_not_found(store: IStore) -> None:
    """Telemetry for a device that is not there (or no longer) is NotFound, records or none."""
    with pytest.raises(NotFound):
        await store.append_telemetry("nope", [(10, {"t": 1})])
    with pytest.raises(NotFound):
        await store.append_telemetry("nope", [])
    await store.create_device(dev())
    await store.append_telemetry("d1", [(10, {"t": 1})])
    await store.delete_device("d1")
    with pytest.raises(NotFound):
        await store.append_telemetry("d1", [(11, {"t": 2})])


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
        strict_json=True,
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


NAN = float("nan")
INF = float("inf")

#: Input no backend can store, each refused the same way by every backend.
BAD_INPUT: dict[str, Callable[[IStore], "Deferred[Any]"]] = {
    "NaN value": lambda s: s.set_attributes("d1", SHARED, {"k": NAN}, 1),
    "Infinity value": lambda s: s.set_attributes("d1", SHARED, {"k": INF}, 1),
    "nested -Infinity": lambda s: s.set_attributes("d1", SHARED, {"k": [1, {"x": -INF}]}, 1),
    "NaN telemetry": lambda s: s.append_telemetry("d1", [(1, {"t": NAN})]),
    "object value": lambda s: s.set_attributes("d1", SHARED, {"k": object()}, 1),
    "set value": lambda s: s.append_telemetry("d1", [(1, {"t": {1, 2}})]),
    "bytes value": lambda s: s.set_attributes("d1", SHARED, {"k": b"x"}, 1),
    "tuple as object key": lambda s: s.set_attributes("d1", SHARED, {"k": {(1, 2): 3}}, 1),
    "lone surrogate key": lambda s: s.set_attributes("d1", SHARED, {"\ud800": 1}, 1),
    "lone surrogate telemetry key": lambda s: s.append_telemetry("d1", [(1, {"\udfff": 1})]),
    "ts beyond 64 bits": lambda s: s.append_telemetry("d1", [(2**63, {"t": 1})]),
    "fractional ts": lambda s: s.set_attributes("d1", SHARED, {"k": 1}, 1.5),  # type: ignore[arg-type]
    "claim expiry beyond 64 bits": lambda s: s.put_claim(Claim("d1", "s", 2**64, 1)),
    "timer beyond 64 bits": lambda s: s.put_profile(Profile("p", edrx_cycle=-(2**63) - 1)),
    "NaN creation time": lambda s: s.create_device(Device("d2", "two", created=NAN)),
    "lone surrogate name": lambda s: s.create_device(Device("d2", "\udcff")),
    "text secret": lambda s: s.put_credential(
        Credential("d1", CredentialKind.PSK, "id", "key")  # type: ignore[arg-type]
    ),
    "lone surrogate lookup": lambda s: s.find_credential(CredentialKind.PSK, "\ud800"),
    "lone surrogate read key": lambda s: s.get_attributes("d1", SHARED, ["\ud800"]),
    "lone surrogate device id": lambda s: s.get_latest_telemetry("\ud800"),
}


@pytest.mark.parametrize("call", BAD_INPUT.values(), ids=list(BAD_INPUT))
@pytest_twisted.ensureDeferred
async def test_bad_input_refused_alike(
    store: IStore, call: Callable[[IStore], "Deferred[Any]"]
) -> None:
    """Input a database cannot hold is InvalidArgument on every backend, and nothing is stored."""
    await store.create_device(dev())
    with pytest.raises(InvalidArgument):
        await call(store)
    assert [d.id for d in await store.list_devices()] == ["d1"]
    assert [p.name for p in await store.list_profiles()] == ["default"]
    assert await store.get_attributes("d1", SHARED) == []
    assert await store.get_latest_telemetry("d1") == []
    assert await store.load_all_credentials() == []
    assert await store.get_claim("d1") is None


@pytest_twisted.ensureDeferred
async def test_values_read_back_as_json(store: IStore) -> None:
    """Values come back as their JSON text reads: tuples as lists, object keys as strings."""
    await store.create_device(dev())
    value = {"t": (1, 2), "m": {1: "x"}, "f": 1.0, "u": "\u00e9\U0001f600"}
    await store.append_telemetry("d1", [(1, {"v": value})])
    [point] = await store.get_latest_telemetry("d1")
    assert point.value == {"t": [1, 2], "m": {"1": "x"}, "f": 1.0, "u": "\u00e9\U0001f600"}
    assert isinstance(point.value["f"], float)


@pytest_twisted.ensureDeferred
async def test_created_reads_back_as_float(store: IStore) -> None:
    """A device's creation time is float seconds, even when given as an int."""
    await store.create_device(Device("d1", "one", created=5))
    stored = await store.get_device("d1")
    assert stored is not None and stored.created == 5.0 and isinstance(stored.created, float)


# -- units of work -------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_unit_results_in_order(store: IStore) -> None:
    """A unit fires with each operation's result in order, later ones seeing earlier writes."""
    d = dev()
    results = await store.commit(
        UnitOfWork.of(
            CreateDevice(d),
            PutCredential(Credential("d1", CredentialKind.ACCESS_TOKEN, "h")),
            SetAttributes("d1", SHARED, {"a": 1, "b": 2}, 5),
            DeleteAttributes("d1", SHARED, ["a", "zz"]),
            AppendTelemetry("d1", [(5, {"t": 1})]),
            PutClaim(Claim("d1", "s", 100, 5)),
            DeleteClaim("d1"),
            DeleteCredential("d1", CredentialKind.PSK),
            PutProfile(Profile("p")),
            UpdateDevice(dev(profile="p")),
            DeleteProfile("default"),
        )
    )
    assert results == [d, None, None, ["a"], None, None, True, False, None, dev(profile="p"), None]
    assert await store.get_device("d1") == dev(profile="p")
    assert await store.get_attributes("d1", SHARED) == [Attribute(SHARED, "b", 2, 5)]
    assert await store.get_latest_telemetry("d1") == [TelemetryPoint("t", 1, 5)]
    assert await store.get_claim("d1") is None
    assert [p.name for p in await store.list_profiles()] == ["p"]
    assert await store.commit(UnitOfWork.of(DeleteDevice("d1"))) == [None]
    assert await store.commit(UnitOfWork()) == []


@pytest_twisted.ensureDeferred
async def test_unit_second_operation_fails(store: IStore) -> None:
    """A unit whose second operation fails errbacks with its error, storing nothing of the first."""
    unit = UnitOfWork.of(
        CreateDevice(dev()),
        PutCredential(Credential("zz", CredentialKind.ACCESS_TOKEN, "h")),
    )
    with pytest.raises(NotFound):
        await store.commit(unit)
    assert await store.get_device("d1") is None
    assert await store.list_devices() == []
    assert await store.load_all_credentials() == []


@pytest_twisted.ensureDeferred
async def test_failed_unit_undoes_updates_and_deletes(store: IStore) -> None:
    """A failing unit leaves what it replaced or deleted exactly as it was."""
    await store.create_device(dev())
    token = Credential("d1", CredentialKind.ACCESS_TOKEN, "h")
    await store.put_credential(token)
    await store.set_attributes("d1", SHARED, {"a": 1}, 10)
    await store.append_telemetry("d1", [(10, {"t": 1})])
    await store.put_claim(Claim("d1", "s", 100, 10))
    unit = UnitOfWork.of(
        UpdateDevice(dev(name="renamed")),
        SetAttributes("d1", SHARED, {"a": 2, "b": 3}, 20),
        AppendTelemetry("d1", [(20, {"t": 2, "h": 1})]),
        DeleteAttributes("d1", SHARED, ["a"]),
        DeleteCredential("d1", CredentialKind.ACCESS_TOKEN),
        PutProfile(Profile("new")),
        DeleteDevice("d1"),
        CreateDevice(dev("d2", "two")),
        SetAttributes("d2", CLIENT, {"c": 1}, 20),
        PutClaim(Claim("zz", "s", 1, 1)),
    )
    with pytest.raises(NotFound):
        await store.commit(unit)
    assert await store.list_devices() == [dev()]
    assert await store.load_all_credentials() == [token]
    assert await store.get_attributes("d1", SHARED) == [Attribute(SHARED, "a", 1, 10)]
    assert await store.get_attributes("d2", CLIENT) == []
    assert await store.get_latest_telemetry("d1") == [TelemetryPoint("t", 1, 10)]
    assert await store.get_claim("d1") == Claim("d1", "s", 100, 10)
    assert await store.get_profile("new") is None


@pytest_twisted.ensureDeferred
async def test_first_failing_operation_reports(store: IStore) -> None:
    """A unit errbacks with the error of the first operation that fails, not a later one."""
    unknown_profile = CreateDevice(dev(profile="missing"))
    no_device = PutClaim(Claim("zz", "s", 1, 1))
    with pytest.raises(InvalidArgument):
        await store.commit(UnitOfWork.of(unknown_profile, no_device))
    with pytest.raises(NotFound):
        await store.commit(UnitOfWork.of(no_device, unknown_profile))


@pytest_twisted.ensureDeferred
async def test_failed_unit_spares_the_others(store: IStore) -> None:
    """Units committed together succeed or fail each on its own."""
    first = store.commit(UnitOfWork.of(CreateDevice(dev())))
    clash = store.commit(UnitOfWork.of(CreateDevice(dev("d2", "two")), CreateDevice(dev("d3"))))
    last = store.commit(UnitOfWork.of(SetAttributes("d1", SHARED, {"a": 1}, 1)))
    await first
    with pytest.raises(Conflict):
        await clash
    await last
    assert [d.id for d in await store.list_devices()] == ["d1"]
    assert await store.get_attributes("d1", SHARED) == [Attribute(SHARED, "a", 1, 1)]


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
