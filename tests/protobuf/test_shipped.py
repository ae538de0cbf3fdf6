"""L{gateway.protobuf.shipped}: the default schemas and ThingsBoard's fixed messages."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.protobuf.schema import compile_proto
from gateway.protobuf.shipped import DEFAULT_SCHEMAS, shipped_text, transport_messages

from .test_schema import ATTRIBUTES, RPC_REQUEST, RPC_RESPONSE, TELEMETRY


@pytest.mark.parametrize(
    ("field", "reference"),
    [
        ("telemetry_proto", TELEMETRY),
        ("attributes_proto", ATTRIBUTES),
        ("rpc_request_proto", RPC_REQUEST),
        ("rpc_response_proto", RPC_RESPONSE),
    ],
)
def test_defaults_are_the_reference_schemas(field: str, reference: str) -> None:
    """Each shipped default compiles to the same message, field for field, as the reference's."""
    name = DEFAULT_SCHEMAS[field]
    shipped = compile_proto({name: shipped_text(name)}).last_message(name).DESCRIPTOR
    expected = compile_proto({name: reference}).last_message(name).DESCRIPTOR
    assert shipped.full_name == expected.full_name
    assert [(f.name, f.number, f.type, f.has_presence) for f in shipped.fields] == [
        (f.name, f.number, f.type, f.has_presence) for f in expected.fields
    ]


def test_fixed_messages_are_byte_compatible() -> None:
    """The fixed messages encode with ThingsBoard's field numbers and wire types."""
    fixed = transport_messages()
    kv: Any = fixed.message("transport.KeyValueProto")(key="k", type=1, long_v=5)
    assert kv.SerializeToString() == b"\x0a\x01k\x10\x01\x20\x05"
    ts_kv = fixed.message("transport.TsKvProto")(ts=2, kv=kv, version=3)
    assert ts_kv.SerializeToString() == b"\x08\x02\x12\x07" + kv.SerializeToString() + b"\x18\x03"
    response = fixed.message("transport.GetAttributeResponseMsg")(
        requestId=1, sharedAttributeList=[ts_kv], error="e", sharedStateMsg=True
    )
    assert response.SerializeToString() == (
        b"\x08\x01\x1a\x0d" + ts_kv.SerializeToString() + b"\x2a\x01e\x30\x01"
    )
    note = fixed.message("transport.AttributeUpdateNotificationMsg")(sharedDeleted=["x"])
    assert note.SerializeToString() == b"\x12\x01x"
    reply = fixed.message("transport.ToServerRpcResponseMsg")(requestId=1, payload="p", error="e")
    assert reply.SerializeToString() == b"\x08\x01\x12\x01p\x1a\x01e"
    rpc = fixed.message("transportapi.RpcRequest")(method="m", params="{}")
    assert rpc.SerializeToString() == b"\x0a\x01m\x12\x02{}"
    claim = fixed.message("transportapi.ClaimDevice")(secretKey="s", durationMs=1)
    assert claim.SerializeToString() == b"\x0a\x01s\x10\x01"


def test_provisioning_messages_are_byte_compatible() -> None:
    """ProvisionDeviceRequestMsg and ResponseMsg use ThingsBoard's numbers, nested ones too."""
    fixed = transport_messages()
    request: Any = fixed.message("transport.ProvisionDeviceRequestMsg")(
        deviceName="d", credentialsType=2
    )
    request.provisionDeviceCredentialsMsg.provisionDeviceKey = "k"
    request.provisionDeviceCredentialsMsg.provisionDeviceSecret = "s"
    request.credentialsDataProto.validateDeviceTokenRequestMsg.token = "t"
    request.credentialsDataProto.validateDeviceX509CertRequestMsg.hash = "h"
    request.credentialsDataProto.validateBasicMqttCredRequestMsg.userName = "u"
    assert request.SerializeToString() == (
        b"\x0a\x01d\x10\x02\x1a\x06\x0a\x01k\x12\x01s"
        b"\x22\x0f\x0a\x03\x0a\x01t\x12\x03\x0a\x01h\x1a\x03\x12\x01u"
    )
    response = fixed.message("transport.ProvisionDeviceResponseMsg")(
        status=1, credentialsType=0, credentialsValue="v"
    )
    assert response.SerializeToString() == b"\x08\x01\x1a\x01v"
