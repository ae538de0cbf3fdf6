# -*- test-case-name: tests.dialects.efento.test_downlink -*-
"""
A configuration pending for a sensor, sent in the answer to its uplink.

An Efento sensor is reachable only in the answer to its own message, so a
configuration for it is a server-side RPC queued for the device with method
C{config} and, as params, the C{ProtoConfig} in its JSON form
(L{gateway.dialects.efento.config.encode_config}).  When the device has RPCs
queued, the answer waits (at most C{seconds}) for the queue to hand over the
first: a C{config} one goes out as the 2.01's payload (the RPC is then
delivered); any other method, or params that do not fit the schema, cannot
be sent to the sensor and is refused (the queue marks it FAILED) and the
answer goes empty.
"""

from __future__ import annotations

from typing import Callable

from twisted.internet.defer import Deferred, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from gateway.domain.model import Rpc
from gateway.service.interfaces import DeliverRpc, Delivery, Unsubscribe

from .config import BadConfig

__all__ = ["CONFIG_METHOD", "PendingConfig"]

log = Logger()

#: The RPC method whose params are a configuration for the sensor.
CONFIG_METHOD = "config"


class PendingConfig:
    """
    Waits up to C{seconds} for the device's next queued RPC (subscribing
    with L{IDeviceServices.subscribe_rpc}): C{answer} fires with the encoded
    configuration, or C{b""} when none came.
    """

    def __init__(
        self,
        subscribe_rpc: Callable[[str, DeliverRpc], Unsubscribe],
        clock: IReactorTime,
        device_id: str,
        seconds: float,
        encode: Callable[[object], bytes],
    ) -> None:
        self.answer: Deferred[bytes] = Deferred()
        self._encode = encode
        self._timer = clock.callLater(seconds, self._finish, b"")
        self._unsubscribe = subscribe_rpc(device_id, self._deliver)

    def _deliver(self, rpc: Rpc) -> "Deferred[Delivery]":
        if self.answer.called:
            return succeed("gone")
        if rpc.method != CONFIG_METHOD:
            return self._refuse(rpc, f"an Efento sensor takes only method {CONFIG_METHOD!r}")
        try:
            payload = self._encode(rpc.params)
        except BadConfig as e:
            return self._refuse(rpc, f"not a ProtoConfig: {e}")
        self._finish(payload)
        # In the answer to the device's own request: nothing more to wait for.
        return succeed("non")

    def _refuse(self, rpc: Rpc, why: str) -> "Deferred[Delivery]":
        log.warn("RPC {rpc_id} cannot be sent to an Efento sensor: {why}", rpc_id=rpc.id, why=why)
        self._finish(b"")
        return succeed("reset")

    def _finish(self, payload: bytes) -> None:
        if self._timer.active():
            self._timer.cancel()
        self._unsubscribe()
        self.answer.callback(payload)
