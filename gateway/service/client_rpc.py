# -*- test-case-name: tests.service.test_client_rpc -*-
"""
Client-side RPCs: a device asks the gateway (ThingsBoard's C{POST
/api/v1/{token}/rpc} with C{{"method", "params"}}) and gets the answer.

Built-in methods are answered here: C{getCurrentTime} gives
C{{"currentTime": ms}} from the clock (ThingsBoard leaves it to a rule
chain).  Any other method is forwarded to the application (C{[rpc]
upstream_url}) and must be answered within C{[rpc] timeout}; no answer in
time, an error, or no application configured is L{NoAnswer} (the device
gets 5.04).
"""

from __future__ import annotations

from typing import Callable, Optional

import attrs
from twisted.internet.defer import Deferred, TimeoutError
from twisted.internet.interfaces import IReactorTime

from gateway.domain.errors import NoAnswer
from gateway.domain.model import Device, JSONValue
from gateway.service.attributes import now_ms

__all__ = ["ClientRpc", "ForwardRpc"]

#: Sends a device's RPC to the application; fires with its answer.
ForwardRpc = Callable[[Device, str, JSONValue], "Deferred[JSONValue]"]


@attrs.define
class ClientRpc:
    _clock: IReactorTime
    _forward: Optional[ForwardRpc] = None
    #: Seconds the application has to answer.
    _timeout: float = 10.0

    def call(self, device: Device, method: str, params: JSONValue) -> "Deferred[JSONValue]":
        """The answer to C{method}; L{NoAnswer} if there is none in time."""

        async def run() -> JSONValue:
            if method == "getCurrentTime":
                return {"currentTime": now_ms(self._clock)}
            if self._forward is None:
                raise NoAnswer(f"no application answers {method!r} ([rpc] upstream_url is not set)")
            d = self._forward(device, method, params)
            d.addTimeout(self._timeout, self._clock)
            try:
                return await d
            except TimeoutError:
                raise NoAnswer(f"the application did not answer {method!r} within"
                               f" {self._timeout:g} s") from None

        return Deferred.fromCoroutine(run())
