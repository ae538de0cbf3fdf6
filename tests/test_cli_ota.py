"""gatewayctl ota, against an in-memory API."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from twisted.internet.task import Clock

from gateway.service.build import memory_services
from tests.service.conftest import FAST_HASHER, result
from tests.test_cli import Ctl

BODY = b"firmware image" * 500


@pytest.fixture(name="ctl")
def _ctl() -> Ctl:
    clock = Clock()
    clock.advance(1_700_000_000)
    return Ctl(result(memory_services(clock, FAST_HASHER)))


def _file(tmp_path: Path) -> str:
    path = tmp_path / "fw.bin"
    path.write_bytes(BODY)
    return str(path)


def test_upload_assign_status_unassign_delete(ctl: Ctl, tmp_path: Path) -> None:
    """A package goes up, to a device and back off, with its status shown in between."""
    ctl.json("device", "create", "lamp")
    package = ctl.json("ota", "upload", _file(tmp_path), "--title", "fw", "--version", "1.0")
    assert (package["size"], package["checksum"]) == (len(BODY), hashlib.sha256(BODY).hexdigest())
    assert [p["version"] for p in ctl.json("ota", "list")] == ["1.0"]
    assigned = ctl.json("ota", "assign", "lamp", "--title", "fw", "--version", "1.0")
    assert assigned["target_type"] == "device"
    status = ctl.json("ota", "status", "lamp")
    assert status["firmware"]["package"]["title"] == "fw"
    assert ctl.json("ota", "assignments") == [assigned]
    code, _, err = ctl.run("ota", "delete", "--title", "fw", "--version", "1.0")
    assert (code, err.count("\n")) == (1, 1) and "assigned" in err and "Traceback" not in err
    assert ctl.json("ota", "unassign", "lamp") == {"unassigned": "firmware"}
    deleted = ctl.json("ota", "delete", "--title", "fw", "--version", "1.0")
    assert deleted["deleted"]["title"] == "fw"
    assert ctl.json("ota", "list") == []


def test_profile_assignment_and_software(ctl: Ctl, tmp_path: Path) -> None:
    """--profile assigns to a profile; --type software keeps software apart."""
    ctl.json("ota", "upload", _file(tmp_path), "--title", "app", "--version", "2",
             "--type", "software", "--algorithm", "CRC32")
    assigned = ctl.json("ota", "assign", "--profile", "default", "--type", "software",
                        "--title", "app", "--version", "2")
    assert (assigned["target_type"], assigned["type"]) == ("profile", "software")
    assert ctl.json("ota", "list", "--type", "firmware") == []
    assert ctl.json("ota", "unassign", "--profile", "default", "--type", "software")


def test_errors_are_one_line(ctl: Ctl, tmp_path: Path) -> None:
    """A missing file, a wrong checksum or both targets at once are one error line, exit 1."""
    for argv in (
        ("ota", "upload", str(tmp_path / "missing"), "--title", "a", "--version", "1"),
        ("ota", "upload", _file(tmp_path), "--title", "a", "--version", "1", "--checksum", "0"),
        ("ota", "assign", "lamp", "--profile", "p", "--title", "a", "--version", "1"),
        ("ota", "status", "ghost"),
    ):
        code, out, err = ctl.run(*argv)
        assert (code, out) == (1, ""), argv
        assert err.startswith("gatewayctl: error: ") and err.count("\n") == 1, err
