# -*- test-case-name: tests.dialects.test_thingsboard_proto -*-
"""
ThingsBoard's protobuf payloads (reference section 3): the codec of a
protobuf profile's devices, and protobuf provisioning.

 - Telemetry and attribute uplinks decode with the profile schema's last
   top-level message, are printed as JSON with the fields that have no
   presence (ThingsBoard's C{includingDefaultValueFields}) and then follow
   the JSON rules.  A payload that does not decode is a 4.00.
 - RPC replies decode with the C{RpcResponseMsg} schema; server-side RPCs
   encode with the C{RpcRequestMsg} one, from C{{"method","requestId",
   "params"}} (params as JSON text), fields the schema lacks ignored.
 - The fixed messages (C{etc/proto/transport*.proto}): attribute reads
   answer C{GetAttributeResponseMsg}, shared-attribute states and changes
   C{AttributeUpdateNotificationMsg}, client-side RPCs are
   C{transportapi.RpcRequest} answered C{ToServerRpcResponseMsg}, claims
   C{transportapi.ClaimDevice}; provisioning requests that are not a JSON
   object are C{ProvisionDeviceRequestMsg}, answered
   C{ProvisionDeviceResponseMsg}.
 - Every response carries Content-Format 42 (application/octet-stream).
"""

from __future__ import annotations

import json
from typing import Any, Mapping

import attrs
from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from txthings import coap as tx

from gateway.coap import numbers as n
from gateway.dialects import jsonio
from gateway.dialects.jsonio import PayloadError
from gateway.domain.model import JSONValue, Rpc, TelemetryRecord
from gateway.protobuf.schema import ProtoFiles
from gateway.service.interfaces import (
    ProfileSchemas,
    ProvisionRequest,
    ProvisionResult,
    ProvisionStatus,
)

from . import payload as rules_
from .codec import AttributeRead
from .payload import JSONRules

__all__ = ["ProtoCodec", "is_json_object", "provision_request", "provision_answer"]

log = Logger()

_INT64 = range(-(2**63), 2**63)


def _decode(message_class: type[Message], payload: bytes) -> Message:
    try:
        return message_class.FromString(payload)
    except DecodeError:
        raise PayloadError(
            f"payload is not a protobuf {message_class.DESCRIPTOR.full_name}"
        ) from None


def _as_json(message: Message) -> dict[str, Any]:
    return json_format.MessageToDict(
        message, always_print_fields_with_no_presence=True, preserving_proto_field_name=True
    )


def _key_value(fixed: ProtoFiles, key: str, value: JSONValue) -> Any:
    """A KeyValueProto: the type ThingsBoard gives the value, JSON for objects and lists."""
    kv: Any = fixed.message("transport.KeyValueProto")(key=key)
    if isinstance(value, bool):
        kv.type, kv.bool_v = 0, value  # BOOLEAN_V
    elif isinstance(value, int) and value in _INT64:
        kv.type, kv.long_v = 1, value  # LONG_V
    elif isinstance(value, float):
        kv.type, kv.double_v = 2, value  # DOUBLE_V
    elif isinstance(value, (str, int)):
        kv.type, kv.string_v = 3, str(value)  # STRING_V, also integers wider than a long
    else:
        kv.type, kv.json_v = 4, jsonio.dumps(value).decode("utf-8")  # JSON_V
    return kv


@attrs.frozen
class ProtoCodec:
    """The protobuf payloads of one device's profile."""

    schemas: ProfileSchemas
    #: The fixed messages (L{gateway.protobuf.shipped.transport_messages}).
    fixed: ProtoFiles
    rules: JSONRules
    clock: IReactorTime

    def _fixed(self, name: str) -> type[Message]:
        return self.fixed.message(name)

    def telemetry(self, payload: bytes) -> list[TelemetryRecord]:
        return rules_.telemetry_of(_as_json(_decode(self.schemas.telemetry, payload)), self.rules)

    def attributes(self, payload: bytes) -> dict[str, JSONValue]:
        data = _as_json(_decode(self.schemas.attributes, payload))
        return rules_.attributes_of(data, self.rules)

    def claim(self, payload: bytes) -> tuple[str, int]:
        claim: Any = _decode(self._fixed("transportapi.ClaimDevice"), payload)
        return rules_.claim_of({"secretKey": claim.secretKey, "durationMs": claim.durationMs})

    def client_rpc(self, payload: bytes) -> tuple[str, JSONValue]:
        request: Any = _decode(self._fixed("transportapi.RpcRequest"), payload)
        params: JSONValue = request.params or None
        if request.params:
            try:
                params = json.loads(request.params)
            except ValueError:
                pass  # not JSON text: the string itself
        return rules_.client_rpc_of({"method": request.method, "params": params})

    def rpc_reply(self, payload: bytes) -> dict[str, JSONValue]:
        return _as_json(_decode(self.schemas.rpc_response, payload))

    def _ts_kv(self, key: str, value: JSONValue, ts: int) -> Message:
        return self._fixed("transport.TsKvProto")(ts=ts, kv=_key_value(self.fixed, key, value))

    def attribute_read(self, found: AttributeRead) -> bytes:
        fields = {"client": "clientAttributeList", "shared": "sharedAttributeList"}
        answer = self._fixed("transport.GetAttributeResponseMsg")()
        for scope, attributes in found.items():
            getattr(answer, fields[scope]).extend(
                self._ts_kv(a.key, a.value, a.last_update_ts) for a in attributes
            )
        return answer.SerializeToString()

    def attribute_change(self, change: Mapping[str, JSONValue]) -> bytes:
        now = int(self.clock.seconds() * 1000)
        notification: Any = self._fixed("transport.AttributeUpdateNotificationMsg")()
        for key, value in change.items():
            if key == "deleted" and isinstance(value, list):
                notification.sharedDeleted.extend(str(k) for k in value)
            else:
                notification.sharedUpdated.append(self._ts_kv(key, value, now))
        return bytes(notification.SerializeToString())

    def rpc(self, rpc: Rpc) -> bytes:
        request = self.schemas.rpc_request()
        fields = {
            "method": rpc.method,
            "requestId": rpc.id,
            "params": jsonio.dumps(rpc.params).decode("utf-8"),
        }
        for name, value in fields.items():
            try:
                json_format.ParseDict({name: value}, request, ignore_unknown_fields=True)
            except json_format.ParseError as e:
                # A schema whose field cannot hold the value (requestId as a
                # string, say): the RPC goes without it rather than not at all.
                log.warn("RPC {rpc_id}: {field} left out: {why}", rpc_id=rpc.id, field=name, why=e)
        return bytes(request.SerializeToString())

    def client_rpc_answer(self, reply: JSONValue) -> bytes:
        payload = jsonio.dumps(reply).decode("utf-8")
        return bytes(
            self._fixed("transport.ToServerRpcResponseMsg")(payload=payload).SerializeToString()
        )

    def response(self, request: Any, payload: bytes, code: int = n.CONTENT) -> Any:
        return octet_stream(payload, code)

    def created(self) -> Any:
        return octet_stream(b"", n.CREATED)

    def no_answer(self, request: Any, error: str) -> Any:
        answer = self._fixed("transport.ToServerRpcResponseMsg")(error=error)
        return octet_stream(answer.SerializeToString(), n.GATEWAY_TIMEOUT)


def octet_stream(payload: bytes, code: int) -> Any:
    """A protobuf response: Content-Format 42."""
    response = tx.Message(code=code, payload=payload)
    response.opt.content_format = n.OCTET_STREAM
    return response


# -- provisioning (before any device or profile) ------------------------------


def is_json_object(payload: bytes) -> bool:
    """Whether a provisioning request is JSON (an object), not protobuf."""
    try:
        return isinstance(jsonio.parse_json(payload, lenient=True), dict)
    except PayloadError:
        return False


def provision_request(fixed: ProtoFiles, payload: bytes) -> ProvisionRequest:
    """A C{ProvisionDeviceRequestMsg} as the JSON request's fields."""
    message: Any = _decode(fixed.message("transport.ProvisionDeviceRequestMsg"), payload)
    keys = message.provisionDeviceCredentialsMsg
    data = message.credentialsDataProto
    basic = data.validateBasicMqttCredRequestMsg
    fields = {
        "deviceName": message.deviceName,
        "credentialsType": _enum_name(message, "credentialsType"),
        "provisionDeviceKey": keys.provisionDeviceKey,
        "provisionDeviceSecret": keys.provisionDeviceSecret,
        "token": data.validateDeviceTokenRequestMsg.token,
        "hash": data.validateDeviceX509CertRequestMsg.hash,
        "clientId": basic.clientId,
        "username": basic.userName,
        "password": basic.password,
    }
    # proto3 has no "absent": an empty string is an unset field.
    return rules_.provision_of({k: v for k, v in fields.items() if v != ""})


def provision_answer(fixed: ProtoFiles, result: ProvisionResult) -> Any:
    """C{ProvisionDeviceResponseMsg}: 2.01 on success, else 4.00."""
    answer: Any = fixed.message("transport.ProvisionDeviceResponseMsg")()
    answer.status = _enum_number(answer, "status", result.status)
    if result.credentials_type is not None:
        answer.credentialsType = _enum_number(answer, "credentialsType", result.credentials_type)
    value = result.credentials_value
    if value is not None:
        answer.credentialsValue = value if isinstance(value, str) else json.dumps(value)
    code = n.CREATED if result.status == ProvisionStatus.SUCCESS else n.BAD_REQUEST
    return octet_stream(answer.SerializeToString(), code)


def _enum_name(message: Any, field: str) -> str:
    enum = message.DESCRIPTOR.fields_by_name[field].enum_type
    return str(enum.values_by_number[getattr(message, field)].name)


def _enum_number(message: Any, field: str, name: str) -> int:
    """The number of enum value C{name} of C{field}; UNKNOWN's (0) if the enum lacks it."""
    value = message.DESCRIPTOR.fields_by_name[field].enum_type.values_by_name.get(name)
    return 0 if value is None else int(value.number)
