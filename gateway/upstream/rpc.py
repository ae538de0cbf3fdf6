# -*- test-case-name: tests.upstream.test_rpc -*-
"""
Forwarding client-side RPCs to the application over HTTP (C{[rpc]
upstream_url}): one POST per call with
C{{"device": {"id", "name", "application"}, "method", "params"}} as JSON; a
2xx answer's JSON body is the reply the device gets.  Anything else is
L{NoAnswer} naming what went wrong.  The caller bounds the time
(L{gateway.service.client_rpc.ClientRpc} cancels the request).
"""

from __future__ import annotations

import json

import attrs
from treq.client import HTTPClient
from twisted.internet.defer import CancelledError, Deferred

from gateway.domain.errors import NoAnswer
from gateway.domain.model import Device, JSONValue

__all__ = ["RpcForwarder"]

_HEADERS: dict[bytes | str, bytes | str] = {
    b"Content-Type": b"application/json",
    b"Accept": b"application/json",
}


@attrs.define
class RpcForwarder:
    """A L{gateway.service.client_rpc.ForwardRpc} posting to C{url}."""

    _client: HTTPClient
    _url: str

    def __call__(self, device: Device, method: str, params: JSONValue) -> "Deferred[JSONValue]":
        body = json.dumps(
            {
                "device": {"id": device.id, "name": device.name, "application": device.application},
                "method": method,
                "params": params,
            },
            separators=(",", ":"),
        ).encode("utf-8")

        async def run() -> JSONValue:
            try:
                response = await self._client.post(self._url, data=body, headers=_HEADERS)
                content = await response.content()
            except CancelledError:
                raise
            except Exception as e:
                raise NoAnswer(f"the application could not be reached: {e}") from None
            if not 200 <= response.code < 300:
                raise NoAnswer(f"the application answered HTTP {response.code}")
            try:
                return json.loads(content)
            except ValueError:
                raise NoAnswer("the application's answer is not JSON") from None

        return Deferred.fromCoroutine(run())
