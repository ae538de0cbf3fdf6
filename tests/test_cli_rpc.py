"""gatewayctl rpc and device reachability/power options, against an in-memory API."""

from __future__ import annotations

from typing import Any

import pytest
from twisted.internet.defer import Deferred, succeed
from twisted.internet.task import Clock

from gateway.domain.model import Rpc
from gateway.service.build import memory_services
from gateway.service.interfaces import Delivery
from tests.service.conftest import FAST_HASHER, result
from tests.test_cli import Ctl


@pytest.fixture(name="ctl")
def _ctl() -> Ctl:
    clock = Clock()
    clock.advance(1_700_000_000)
    ctl = Ctl(result(memory_services(clock, FAST_HASHER)))
    ctl.clock = clock  # type: ignore[attr-defined]
    return ctl


def _answering(ctl: Ctl, device_id: str) -> list[Rpc]:
    """The device listens and answers each two-way RPC with {"echo": params} at once."""
    seen: list[Rpc] = []

    def deliver(rpc: Rpc) -> "Deferred[Delivery]":
        seen.append(rpc)
        if not rpc.oneway:
            ctl.services.devices.reply_rpc(device_id, rpc.id, {"echo": rpc.params})
        return succeed("ack")

    ctl.services.devices.subscribe_rpc(device_id, deliver)
    ctl.clock.advance(0)  # type: ignore[attr-defined]
    return seen


def test_send_prints_the_device_reply(ctl: Ctl) -> None:
    """rpc send DEVICE METHOD --params JSON prints what the device answered."""
    device = ctl.json("device", "create", "lamp")["id"]
    seen = _answering(ctl, device)
    assert ctl.json("rpc", "send", "lamp", "setLed", "--params", '{"on":true}') == {
        "echo": {"on": True}
    }
    assert [(r.method, r.params) for r in seen] == [("setLed", {"on": True})]


def test_send_oneway_no_wait_list_show_cancel(ctl: Ctl) -> None:
    """--no-wait prints the queued RPC; list, show and cancel follow it."""
    ctl.json("device", "create", "lamp")
    queued = ctl.json("rpc", "send", "lamp", "blink", "--oneway", "--no-wait", "--timeout", "5000")
    assert (queued["state"], queued["oneway"], queued["timeout"]) == ("QUEUED", True, 5000)
    assert [r["id"] for r in ctl.json("rpc", "list", "lamp", "--state", "QUEUED")] == [queued["id"]]
    assert ctl.json("rpc", "show", "lamp", str(queued["id"]))["method"] == "blink"
    assert ctl.json("rpc", "cancel", "lamp", str(queued["id"]))["state"] == "FAILED"
    code, _, err = ctl.run("rpc", "cancel", "lamp", str(queued["id"]))
    assert code == 1 and "HTTP 409" in err


def test_bad_params_are_one_error_line(ctl: Ctl) -> None:
    """--params that is not JSON is refused before anything is sent."""
    ctl.json("device", "create", "lamp")
    code, _, err = ctl.run("rpc", "send", "lamp", "m", "--params", "{nope")
    assert code == 1 and err.startswith("gatewayctl: error: --params is not JSON")


def test_device_power_options_and_reachability(ctl: Ctl) -> None:
    """device create/update set the power mode and timers; device reachability shows it."""
    created: Any = ctl.json("device", "create", "s", "--power-mode", "psm",
                            "--psm-activity-timer", "3000")
    assert (created["power_mode"], created["psm_activity_timer"]) == ("psm", 3000)
    assert ctl.json("device", "reachability", "s")["state"] == "asleep"
    updated = ctl.json("device", "update", "s", "--power-mode", "profile",
                       "--psm-activity-timer", "0")
    assert (updated["power_mode"], updated["psm_activity_timer"]) == (None, None)
    assert ctl.json("device", "reachability", "s")["state"] == "awake"
