"""gatewayctl events and gatewayctl upstream, against an in-memory API."""

from __future__ import annotations

import pytest
from twisted.internet.task import Clock

from gateway.service.build import memory_services
from tests.service.conftest import FAST_HASHER, result
from tests.test_cli import Ctl


@pytest.fixture(name="ctl")
def _ctl() -> Ctl:
    clock = Clock()
    clock.advance(1_700_000_000)
    return Ctl(result(memory_services(clock, FAST_HASHER)))


def _uplinks(ctl: Ctl) -> tuple[str, str]:
    a = ctl.json("device", "create", "a")["id"]
    b = ctl.json("device", "create", "b")["id"]
    for device, ts in ((a, 1), (b, 2), (a, 3)):
        result(ctl.services.telemetry.record(device, [(ts, {"t": ts})]))
    return a, b


def test_events_by_device_name_and_paged(ctl: Ctl) -> None:
    """events lists held events, of one device (by name) and after a position."""
    a, _ = _uplinks(ctl)
    every = ctl.json("events")
    assert [e["event"]["data"][0]["ts"] for e in every] == [1, 2, 3]
    mine = ctl.json("events", "--device", "a")
    assert [e["event"]["deviceid"] for e in mine] == [a, a]
    later = ctl.json("events", "--after", str(every[0]["position"]), "--limit", "1")
    assert [e["event"]["data"][0]["ts"] for e in later] == [2]
    assert ctl.json("events", "--type", "io.coap-gateway.claim.v1") == []


def test_upstream_status(ctl: Ctl) -> None:
    """upstream status prints the outbox depth and whether anything forwards."""
    _uplinks(ctl)
    status = ctl.json("upstream", "status")
    assert (status["depth"], status["forwarding"]) == (3, False)


def test_dead_letters_replay_and_discard(ctl: Ctl) -> None:
    """upstream dead-letters lists them; replay and discard take ids or act on all."""
    _uplinks(ctl)
    outbox = ctl.services.outbox
    held = result(outbox.peek(10))
    for e in held:
        result(outbox.dead_letter(e.position, 400, "refused", 1))
    dead = ctl.json("upstream", "dead-letters")
    assert [(d["position"], d["status"]) for d in dead] == [(e.position, 400) for e in held]
    assert ctl.json("upstream", "replay", str(held[1].position)) == {"replayed": 1}
    assert ctl.requests[-1][1].endswith(f"/replay?ids={held[1].position}")
    assert ctl.json("upstream", "discard") == {"discarded": 2}
    assert ctl.json("upstream", "replay") == {"replayed": 0}


def test_dtls_status(ctl: Ctl) -> None:
    """dtls status prints the listener's report (here: DTLS not served), and as a table."""
    assert ctl.json("dtls", "status") == {"enabled": False}
    code, out, _ = ctl.run("dtls", "status", "--table")
    assert code == 0 and out.split() == ["key", "value", "enabled", "false"]
    assert ("GET", "http://127.0.0.1:8080/api/v1/dtls") in ctl.requests
