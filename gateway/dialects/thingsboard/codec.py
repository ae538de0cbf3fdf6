# -*- test-case-name: tests.dialects.test_thingsboard_proto -*-
"""
A device's payload format, as one object the resources talk to: L{Codec}.

L{JsonCodec} is ThingsBoard's JSON (the rules of
L{gateway.dialects.thingsboard.payload}, responses echoing the request's
Content-Format); L{gateway.dialects.thingsboard.proto.ProtoCodec} is the
protobuf format of a profile's schemas.  The resources never ask which.
"""

from __future__ import annotations

from typing import Any, Mapping, Protocol

import attrs

from gateway.coap import numbers as n
from gateway.dialects import jsonio
from gateway.domain.model import Attribute, JSONValue, Rpc, TelemetryRecord

from . import payload as rules_
from .payload import JSONRules
from .responses import json_response

__all__ = ["Codec", "JsonCodec", "AttributeRead"]

#: A GET attributes answer: the attributes found, by scope name ("client", "shared").
AttributeRead = Mapping[str, list[Attribute]]


class Codec(Protocol):
    """How one device's payloads read and its answers and downlinks are written."""

    def telemetry(self, payload: bytes) -> list[TelemetryRecord]: ...

    def attributes(self, payload: bytes) -> dict[str, JSONValue]: ...

    def claim(self, payload: bytes) -> tuple[str, int]: ...

    def client_rpc(self, payload: bytes) -> tuple[str, JSONValue]: ...

    def rpc_reply(self, payload: bytes) -> dict[str, JSONValue]: ...

    def attribute_read(self, found: AttributeRead) -> bytes: ...

    def attribute_change(self, change: Mapping[str, JSONValue]) -> bytes:
        """A shared-attribute state or change: C{{"k": v, ...}} and/or C{{"deleted": [..]}}."""
        ...

    def rpc(self, rpc: Rpc) -> bytes: ...

    def client_rpc_answer(self, reply: JSONValue) -> bytes: ...

    def response(self, request: Any, payload: bytes, code: int = n.CONTENT) -> Any:
        """A response to C{request} carrying C{payload}, with the format's Content-Format."""
        ...

    def created(self) -> Any:
        """2.01 with an empty body: an accepted uplink."""
        ...

    def no_answer(self, request: Any, error: str) -> Any:
        """5.04: nobody answered the device's client-side RPC."""
        ...


@attrs.frozen
class JsonCodec:
    """ThingsBoard's JSON, strict or as lenient as Gson."""

    rules: JSONRules
    lenient: bool

    def telemetry(self, payload: bytes) -> list[TelemetryRecord]:
        return rules_.telemetry_records(payload, self.rules, self.lenient)

    def attributes(self, payload: bytes) -> dict[str, JSONValue]:
        return rules_.attribute_values(payload, self.rules, self.lenient)

    def claim(self, payload: bytes) -> tuple[str, int]:
        return rules_.claim_request(payload, self.lenient)

    def client_rpc(self, payload: bytes) -> tuple[str, JSONValue]:
        return rules_.client_rpc_request(payload, self.lenient)

    def rpc_reply(self, payload: bytes) -> dict[str, JSONValue]:
        return rules_.rpc_reply(payload, self.lenient)

    def attribute_read(self, found: AttributeRead) -> bytes:
        return jsonio.dumps(
            {scope: {a.key: a.value for a in attributes} for scope, attributes in found.items()}
        )

    def attribute_change(self, change: Mapping[str, JSONValue]) -> bytes:
        return jsonio.dumps(dict(change))

    def rpc(self, rpc: Rpc) -> bytes:
        return jsonio.dumps({"id": rpc.id, "method": rpc.method, "params": rpc.params})

    def client_rpc_answer(self, reply: JSONValue) -> bytes:
        return jsonio.dumps(reply)

    def response(self, request: Any, payload: bytes, code: int = n.CONTENT) -> Any:
        response = json_response(request, None, code)
        response.payload = payload
        return response

    def created(self) -> Any:
        return jsonio.created()

    def no_answer(self, request: Any, error: str) -> Any:
        return jsonio.json_response({"error": error}, n.GATEWAY_TIMEOUT)
