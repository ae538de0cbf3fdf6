# -*- test-case-name: tests.store.test_packages -*-
"""
The OTA package operations and reads of both SQL backends, written once:
each backend hands over a L{Run} that executes one statement (with C{?}
placeholders) in its transaction and returns the rows.  The tables are
made by each backend's own migration (L{SQLITE_TABLES}, L{POSTGRES_TABLES}).
Lists are sorted here, by code point, as the memory store sorts them.
"""

from __future__ import annotations

from typing import Any, Callable, Optional, Sequence

from gateway.domain.errors import Conflict, NotFound
from gateway.domain.ota import (
    AssignmentTarget,
    ChecksumAlgorithm,
    OtaAssignment,
    OtaKind,
    OtaPackage,
)
from gateway.store.unit import AssignPackage, DeletePackage, PutPackage, UnassignPackage
from gateway.store.values import check_text

__all__ = [
    "Run",
    "SQLITE_TABLES",
    "POSTGRES_TABLES",
    "apply_package_operation",
    "get_package",
    "list_packages",
    "get_assignment",
    "list_assignments",
]

#: Executes one statement with C{?} placeholders; the rows it returned.
Run = Callable[[str, Sequence[Any]], list[tuple[Any, ...]]]

PackageOperation = PutPackage | DeletePackage | AssignPackage | UnassignPackage


def _tables(integer: str) -> str:
    # Assignments reference their package (no deleting an assigned one) and
    # go with their device or profile.
    return f"""
    CREATE TABLE ota_packages (
        kind TEXT NOT NULL,
        title TEXT NOT NULL,
        version TEXT NOT NULL,
        checksum TEXT NOT NULL,
        checksum_algorithm TEXT NOT NULL,
        size {integer} NOT NULL,
        content_type TEXT NOT NULL,
        content_sha256 TEXT NOT NULL,
        created {integer} NOT NULL,
        PRIMARY KEY (kind, title, version)
    );
    CREATE TABLE ota_device_assignments (
        kind TEXT NOT NULL,
        target TEXT NOT NULL REFERENCES devices(id) ON DELETE CASCADE,
        title TEXT NOT NULL,
        version TEXT NOT NULL,
        PRIMARY KEY (kind, target),
        FOREIGN KEY (kind, title, version) REFERENCES ota_packages (kind, title, version)
    );
    CREATE TABLE ota_profile_assignments (
        kind TEXT NOT NULL,
        target TEXT NOT NULL REFERENCES profiles(name) ON DELETE CASCADE,
        title TEXT NOT NULL,
        version TEXT NOT NULL,
        PRIMARY KEY (kind, target),
        FOREIGN KEY (kind, title, version) REFERENCES ota_packages (kind, title, version)
    )
    """


SQLITE_TABLES = _tables("INTEGER")
POSTGRES_TABLES = _tables("BIGINT")

_PACKAGE_COLUMNS = (
    "kind, title, version, checksum, checksum_algorithm, size, content_type,"
    " content_sha256, created"
)
_TABLES = {
    AssignmentTarget.DEVICE: "ota_device_assignments",
    AssignmentTarget.PROFILE: "ota_profile_assignments",
}
_TARGETS = {
    AssignmentTarget.DEVICE: ("devices", "id"),
    AssignmentTarget.PROFILE: ("profiles", "name"),
}


def _package(row: Sequence[Any]) -> OtaPackage:
    kind, title, version, checksum, algorithm, size, content_type, sha256, created = row
    return OtaPackage(
        OtaKind(kind), title, version, checksum, ChecksumAlgorithm(algorithm), int(size),
        content_type, sha256, int(created),
    )


def _name(kind: OtaKind, title: str, version: str) -> str:
    return f"{kind.value} {title!r} {version!r}"


def apply_package_operation(run: Run, op: PackageOperation) -> Any:
    """Run one package operation in the backend's transaction; its result."""
    match op:
        case PutPackage():
            p = op.package
            if run(
                "SELECT 1 FROM ota_packages WHERE kind=? AND title=? AND version=?",
                (p.kind.value, p.title, p.version),
            ):
                raise Conflict(f"{_name(p.kind, p.title, p.version)} exists")
            run(
                f"INSERT INTO ota_packages ({_PACKAGE_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?)",
                (
                    p.kind.value, p.title, p.version, p.checksum, p.checksum_algorithm.value,
                    p.size, p.content_type, p.content_sha256, p.created,
                ),
            )
            return None
        case DeletePackage():
            key = (op.kind.value, op.title, op.version)
            found = get_package(run, op.kind, op.title, op.version)
            if found is None:
                raise NotFound(f"no {_name(op.kind, op.title, op.version)}")
            for table in _TABLES.values():
                if run(f"SELECT 1 FROM {table} WHERE kind=? AND title=? AND version=?", key):
                    raise Conflict(f"{_name(op.kind, op.title, op.version)} is assigned")
            run("DELETE FROM ota_packages WHERE kind=? AND title=? AND version=?", key)
            return found
        case AssignPackage():
            a = op.assignment
            if get_package(run, a.kind, a.title, a.version) is None:
                raise NotFound(f"no {_name(a.kind, a.title, a.version)}")
            targets, column = _TARGETS[a.target_type]
            if not run(f"SELECT 1 FROM {targets} WHERE {column}=?", (a.target,)):
                raise NotFound(f"no {a.target_type.value} {a.target!r}")
            table = _TABLES[a.target_type]
            run(f"DELETE FROM {table} WHERE kind=? AND target=?", (a.kind.value, a.target))
            run(
                f"INSERT INTO {table} (kind, target, title, version) VALUES (?,?,?,?)",
                (a.kind.value, a.target, a.title, a.version),
            )
            return None
        case UnassignPackage():
            found_assignment = get_assignment(run, op.kind, op.target_type, op.target)
            run(
                f"DELETE FROM {_TABLES[op.target_type]} WHERE kind=? AND target=?",
                (op.kind.value, op.target),
            )
            return found_assignment


def get_package(run: Run, kind: OtaKind, title: str, version: str) -> Optional[OtaPackage]:
    rows = run(
        f"SELECT {_PACKAGE_COLUMNS} FROM ota_packages WHERE kind=? AND title=? AND version=?",
        (kind.value, check_text("title", title), check_text("version", version)),
    )
    return _package(rows[0]) if rows else None


def list_packages(run: Run, kind: Optional[OtaKind] = None) -> list[OtaPackage]:
    sql = f"SELECT {_PACKAGE_COLUMNS} FROM ota_packages"
    rows = run(sql, ()) if kind is None else run(sql + " WHERE kind=?", (kind.value,))
    return sorted(
        (_package(r) for r in rows), key=lambda p: (p.kind.value, p.title, p.version)
    )


def _assignments(
    run: Run, target_type: AssignmentTarget, where: str, args: Sequence[Any]
) -> list[OtaAssignment]:
    rows = run(f"SELECT kind, target, title, version FROM {_TABLES[target_type]}{where}", args)
    return [
        OtaAssignment(OtaKind(kind), target_type, target, title, version)
        for kind, target, title, version in rows
    ]


def get_assignment(
    run: Run, kind: OtaKind, target_type: AssignmentTarget, target: str
) -> Optional[OtaAssignment]:
    found = _assignments(
        run, target_type, " WHERE kind=? AND target=?",
        (kind.value, check_text("target", target)),
    )
    return found[0] if found else None


def list_assignments(run: Run, kind: Optional[OtaKind] = None) -> list[OtaAssignment]:
    where, args = ("", ()) if kind is None else (" WHERE kind=?", (kind.value,))
    found = [a for t in AssignmentTarget for a in _assignments(run, t, where, args)]
    return sorted(found, key=lambda a: (a.kind.value, a.target_type.value, a.target))
