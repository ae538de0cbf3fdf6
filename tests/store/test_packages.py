"""
The IPackageStore contract (OTA packages and assignments), run against the
memory, SQLite and PostgreSQL backends.
"""

from __future__ import annotations

import attrs
import pytest
import pytest_twisted
from zope.interface.verify import verifyObject

from gateway.domain.errors import Conflict, InvalidArgument, NotFound
from gateway.domain.model import Device, Profile
from gateway.domain.ota import (
    AssignmentTarget,
    ChecksumAlgorithm,
    OtaAssignment,
    OtaKind,
    OtaPackage,
)
from gateway.store.interfaces import IPackageStore, IStore
from gateway.store.unit import (
    AssignPackage,
    DeleteDevice,
    DeletePackage,
    DeleteProfile,
    PutPackage,
    UnassignPackage,
    UnitOfWork,
)

FW, SW = OtaKind.FIRMWARE, OtaKind.SOFTWARE
DEVICE, PROFILE = AssignmentTarget.DEVICE, AssignmentTarget.PROFILE


def package(title: str = "fw", version: str = "1.0", kind: OtaKind = FW) -> OtaPackage:
    return OtaPackage(
        kind, title, version, "ab" * 32, ChecksumAlgorithm.SHA256, 1024,
        "application/octet-stream", "cd" * 32, 1_700_000_000_000,
    )


def assignment(
    target: str = "d1", title: str = "fw", version: str = "1.0",
    target_type: AssignmentTarget = DEVICE, kind: OtaKind = FW,
) -> OtaAssignment:
    return OtaAssignment(kind, target_type, target, title, version)


async def commit(store: IStore, *ops: object) -> list[object]:
    return await store.commit(UnitOfWork(ops))  # type: ignore[arg-type]


def test_provides_interface(store: IStore) -> None:
    """Each backend provides IPackageStore completely."""
    assert verifyObject(IPackageStore, store)


@pytest_twisted.ensureDeferred
async def test_packages_round_trip_and_list_in_order(store: IStore) -> None:
    """Packages read back as stored and list by kind, title and version."""
    await commit(store, PutPackage(package("b", "2")), PutPackage(package("a", "1", SW)),
                 PutPackage(package("b", "10")))
    packages = IPackageStore(store)
    assert await packages.get_package(FW, "b", "2") == package("b", "2")
    assert await packages.get_package(FW, "a", "1") is None
    assert [(p.kind, p.title, p.version) for p in await packages.list_packages()] == [
        (FW, "b", "10"), (FW, "b", "2"), (SW, "a", "1"),
    ]
    assert [p.title for p in await packages.list_packages(SW)] == ["a"]


@pytest_twisted.ensureDeferred
async def test_same_package_twice_conflicts(store: IStore) -> None:
    """A second package of the same kind, title and version is a Conflict."""
    await commit(store, PutPackage(package()))
    with pytest.raises(Conflict):
        await commit(store, PutPackage(attrs.evolve(package(), size=5)))
    assert (await IPackageStore(store).get_package(FW, "fw", "1.0")).size == 1024


@pytest_twisted.ensureDeferred
async def test_assignments_replace_and_read_back(store: IStore) -> None:
    """An assignment replaces the target's earlier one of its kind and reads back."""
    await store.create_device(Device("d1", "one"))
    await commit(store, PutPackage(package("fw", "1")), PutPackage(package("fw", "2")))
    await commit(store, AssignPackage(assignment(version="1")))
    await commit(store, AssignPackage(assignment(version="2")),
                 AssignPackage(assignment("default", version="1", target_type=PROFILE)))
    packages = IPackageStore(store)
    assert await packages.get_assignment(FW, DEVICE, "d1") == assignment(version="2")
    assert await packages.get_assignment(SW, DEVICE, "d1") is None
    assert await packages.list_assignments() == [
        assignment(version="2"), assignment("default", version="1", target_type=PROFILE),
    ]
    assert await packages.list_assignments(SW) == []


@pytest_twisted.ensureDeferred
async def test_assigning_needs_package_and_target(store: IStore) -> None:
    """Assigning a missing package, or to a missing device or profile, is NotFound."""
    await store.create_device(Device("d1", "one"))
    await commit(store, PutPackage(package()))
    for op in (
        AssignPackage(assignment(title="nope")),
        AssignPackage(assignment("ghost")),
        AssignPackage(assignment("ghost", target_type=PROFILE)),
    ):
        with pytest.raises(NotFound):
            await commit(store, op)
    assert await IPackageStore(store).list_assignments() == []


@pytest_twisted.ensureDeferred
async def test_assigned_package_cannot_be_deleted(store: IStore) -> None:
    """Deleting an assigned package is a Conflict; unassigned, it goes and is returned."""
    await store.create_device(Device("d1", "one"))
    await commit(store, PutPackage(package()), AssignPackage(assignment()))
    with pytest.raises(Conflict):
        await commit(store, DeletePackage(FW, "fw", "1.0"))
    (gone,) = await commit(store, UnassignPackage(FW, DEVICE, "d1"))
    assert gone == assignment()
    assert await commit(store, UnassignPackage(FW, DEVICE, "d1")) == [None]
    assert await commit(store, DeletePackage(FW, "fw", "1.0")) == [package()]
    assert await IPackageStore(store).get_package(FW, "fw", "1.0") is None
    with pytest.raises(NotFound):
        await commit(store, DeletePackage(FW, "fw", "1.0"))


@pytest_twisted.ensureDeferred
async def test_assignments_go_with_device_and_profile(store: IStore) -> None:
    """Deleting a device or a profile deletes its assignments."""
    await store.put_profile(Profile("p"))
    await store.create_device(Device("d1", "one", profile="p"))
    await commit(store, PutPackage(package()), AssignPackage(assignment()),
                 AssignPackage(assignment("p", target_type=PROFILE)))
    await commit(store, DeleteDevice("d1"))
    packages = IPackageStore(store)
    assert await packages.list_assignments() == [assignment("p", target_type=PROFILE)]
    await commit(store, DeleteProfile("p"))
    assert await packages.list_assignments() == []
    assert await commit(store, DeletePackage(FW, "fw", "1.0")) == [package()]


@pytest_twisted.ensureDeferred
async def test_failed_unit_leaves_no_package(store: IStore) -> None:
    """A unit that fails after putting a package leaves neither package nor assignment."""
    await commit(store, PutPackage(package("old")))
    with pytest.raises(NotFound):
        await commit(store, PutPackage(package()), AssignPackage(assignment("ghost")))
    assert [p.title for p in await IPackageStore(store).list_packages()] == ["old"]


def test_bad_package_refused_when_built() -> None:
    """Text that is not valid Unicode and sizes beyond 64 bits are refused as built."""
    with pytest.raises(InvalidArgument):
        PutPackage(package("\udc80"))
    with pytest.raises(InvalidArgument):
        PutPackage(attrs.evolve(package(), size=2**64))
    with pytest.raises(InvalidArgument):
        AssignPackage(attrs.evolve(assignment(), kind="firmware"))  # type: ignore[arg-type]
