"""
Client-side RPCs: getCurrentTime answered from the clock, other methods
forwarded within the timeout, else NoAnswer.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import Deferred, succeed
from twisted.internet.task import Clock

from gateway.domain.errors import NoAnswer, NotFound
from gateway.domain.model import Device, JSONValue
from gateway.service.client_rpc import ClientRpc
from tests.service.conftest import failure, result

DEVICE = Device("d1", "sensor")


def test_get_current_time_is_answered_from_the_clock(clock: Clock) -> None:
    """getCurrentTime answers {"currentTime": ms} without asking anybody."""
    rpc = ClientRpc(clock)
    clock.advance(0.25)
    assert result(rpc.call(DEVICE, "getCurrentTime", {})) == {"currentTime": 1_700_000_000_250}


def test_other_methods_are_forwarded(clock: Clock) -> None:
    """Another method goes to the forwarder with the device and params; its answer returns."""
    asked: list[tuple[Device, str, JSONValue]] = []

    def forward(device: Device, method: str, params: JSONValue) -> "Deferred[Any]":
        asked.append((device, method, params))
        return succeed({"echo": params})

    assert result(ClientRpc(clock, forward).call(DEVICE, "ping", [1])) == {"echo": [1]}
    assert asked == [(DEVICE, "ping", [1])]


def test_no_answer_in_time_is_no_answer(clock: Clock) -> None:
    """A forwarded call unanswered within the timeout fails NoAnswer (and is cancelled)."""
    pending: list["Deferred[Any]"] = []

    def forward(device: Device, method: str, params: JSONValue) -> "Deferred[Any]":
        pending.append(Deferred())
        return pending[-1]

    d = ClientRpc(clock, forward, timeout=3).call(DEVICE, "slow", None)
    clock.advance(2.9)
    assert not d.called
    clock.advance(0.1)
    assert "within 3 s" in failure(d, NoAnswer).value.message
    assert pending[0].called  # cancelled


def test_without_a_forwarder_nobody_answers(clock: Clock) -> None:
    """With no upstream configured, a method the gateway does not know is NoAnswer."""
    failure(ClientRpc(clock).call(DEVICE, "x", None), NoAnswer)


def test_facade_refuses_unknown_device(services: Any) -> None:
    """The device services answer a client RPC of a device that is gone with NotFound."""
    failure(services.devices.client_rpc("nope", "getCurrentTime", None), NotFound)
