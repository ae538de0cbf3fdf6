"""
The ThingsBoard dialect for a device of a protobuf profile: uplinks decoded
with the profile's schemas, answers and downlinks in ThingsBoard's fixed
messages or the profile's RPC schemas, all with Content-Format 42.
"""

from __future__ import annotations

import json
from typing import Any

import attrs
import pytest
from google.protobuf.message import Message

from gateway.coap import codec
from gateway.coap import numbers as n
from gateway.domain.model import (
    AttributeScope,
    PayloadFormat,
    Profile,
    ProvisionStrategy,
    RpcState,
)
from gateway.protobuf.schema import compile_proto
from gateway.protobuf.shipped import DEFAULT_SCHEMAS, shipped_text, transport_messages
from tests.coap.support import PEER, option
from tests.service.conftest import result

from .conftest import TOKEN, Harness

BASE = f"api/v1/{TOKEN}"
OBSERVE = ((n.OBSERVE, 0),)
FIXED = transport_messages()
SHARED = AttributeScope.SHARED


def default(field: str) -> type[Message]:
    """The class of a default schema's last message, compiled on its own."""
    name = DEFAULT_SCHEMAS[field]
    return compile_proto({name: shipped_text(name)}).last_message(name)


def fixed(name: str, payload: bytes) -> Any:
    return FIXED.message(name).FromString(payload)


@pytest.fixture
def pb(tb: Harness) -> Harness:
    """The harness's device moved to a protobuf profile with the default schemas."""
    result(tb.services.registry.create_profile(Profile("pb", PayloadFormat.PROTOBUF)))
    result(tb.services.registry.update_device(tb.device_id, profile="pb"))
    return tb


def latest(tb: Harness) -> dict[str, object]:
    return {p.key: p.value for p in result(tb.services.telemetry.latest(tb.device_id))}


def test_telemetry_decoded_with_the_last_message(pb: Harness) -> None:
    """Telemetry decodes as SensorDataReading and is stored as its JSON, 2.01 with format 42."""
    reading: Any = default("telemetry_proto")(temperature=21.5)
    reading.innerObject.key1 = "on"
    reading.innerObject.key4 = 7
    response = pb.ask(n.POST, f"{BASE}/telemetry", reading.SerializeToString())
    assert (response.code, response.payload) == (n.CREATED, b"")
    assert option(response, n.CONTENT_FORMAT) == n.OCTET_STREAM
    assert latest(pb) == {"temperature": 21.5, "innerObject": {"key1": "on", "key4": 7}}


def test_undecodable_payload_is_400_and_nothing_stored(pb: Harness) -> None:
    """Bytes that are not the schema's message are a 4.00 with the reason; nothing is stored."""
    for path in ("telemetry", "attributes"):
        response = pb.ask(n.POST, f"{BASE}/{path}", b"\x0a\x05ab")  # a truncated string
        assert response.code == n.BAD_REQUEST
        assert response.payload.startswith(b"payload is not a protobuf ")
    assert latest(pb) == {}
    assert result(pb.services.devices.get_attributes(pb.device_id, AttributeScope.CLIENT)) == []


def test_fields_without_presence_are_printed_with_defaults(pb: Harness) -> None:
    """Plain proto3 fields left at their default are stored too, as ThingsBoard prints them."""
    schema = 'syntax = "proto3"; message A { int32 count = 1; string name = 2; int64 big = 3; }'
    profile = result(pb.services.registry.get_profile("pb"))
    result(pb.services.registry.update_profile(attrs.evolve(profile, attributes_proto=schema)))
    a_class = compile_proto({"a.proto": schema}).last_message("a.proto")
    response = pb.ask(n.POST, f"{BASE}/attributes", a_class(name="x", big=5).SerializeToString())
    assert response.code == n.CREATED
    found = result(pb.services.devices.get_attributes(pb.device_id, AttributeScope.CLIENT))
    # int64 prints as a JSON string and is cast back to a number, as in ThingsBoard.
    assert {a.key: a.value for a in found} == {"count": 0, "name": "x", "big": 5}


def test_schema_change_applies_to_the_next_uplink(pb: Harness) -> None:
    """After the profile's telemetry schema changes, the same bytes decode with the new one."""
    payload = default("telemetry_proto")(temperature=3.0).SerializeToString()
    pb.ask(n.POST, f"{BASE}/telemetry", payload)
    profile = result(pb.services.registry.get_profile("pb"))
    renamed = 'syntax = "proto3"; message T { double celsius = 1; }'
    result(pb.services.registry.update_profile(attrs.evolve(profile, telemetry_proto=renamed)))
    assert pb.ask(n.POST, f"{BASE}/telemetry", payload).code == n.CREATED
    assert latest(pb) == {"temperature": 3.0, "celsius": 3.0}


def test_attribute_read_is_get_attribute_response_msg(pb: Harness) -> None:
    """GET attributes answers GetAttributeResponseMsg with each value's KeyValueProto type."""
    values = {"b": True, "l": 5, "d": 1.5, "s": "x", "j": {"k": [1]}, "huge": 2**70}
    result(pb.services.attributes.set_attributes(pb.device_id, SHARED, values))
    result(pb.services.attributes.set_attributes(pb.device_id, AttributeScope.CLIENT, {"c": 1}))
    response = pb.ask(n.GET, f"{BASE}/attributes")
    assert (response.code, option(response, n.CONTENT_FORMAT)) == (n.CONTENT, n.OCTET_STREAM)
    answer = fixed("transport.GetAttributeResponseMsg", response.payload)
    assert [(t.kv.key, t.kv.long_v) for t in answer.clientAttributeList] == [("c", 1)]
    shared = {t.kv.key: t.kv for t in answer.sharedAttributeList}
    assert (shared["b"].type, shared["b"].bool_v) == (0, True)
    assert (shared["l"].type, shared["l"].long_v) == (1, 5)
    assert (shared["d"].type, shared["d"].double_v) == (2, 1.5)
    assert (shared["s"].type, shared["s"].string_v) == (3, "x")
    assert (shared["j"].type, json.loads(shared["j"].json_v)) == (4, {"k": [1]})
    assert (shared["huge"].type, shared["huge"].string_v) == (3, str(2**70))
    assert all(t.ts > 0 for t in answer.sharedAttributeList)
    query = ((n.URI_QUERY, b"sharedKeys=none"),)
    assert pb.ask(n.GET, f"{BASE}/attributes", options=query).code == n.NOT_FOUND


def test_observation_is_attribute_update_notification_msg(pb: Harness) -> None:
    """The shared state, each update and each deletion are AttributeUpdateNotificationMsg."""
    result(pb.services.attributes.set_attributes(pb.device_id, SHARED, {"led": True}))
    first = pb.ask(n.GET, f"{BASE}/attributes", options=OBSERVE, token=b"ob")
    assert option(first, n.CONTENT_FORMAT) == n.OCTET_STREAM
    state = fixed("transport.AttributeUpdateNotificationMsg", first.payload)
    assert [(t.kv.key, t.kv.bool_v) for t in state.sharedUpdated] == [("led", True)]
    result(pb.services.attributes.set_attributes(pb.device_id, SHARED, {"fw": "2.0"}))
    (update,) = pb.transport.take()
    notified = fixed("transport.AttributeUpdateNotificationMsg", update.payload)
    assert [(t.kv.key, t.kv.string_v) for t in notified.sharedUpdated] == [("fw", "2.0")]
    assert option(update, n.CONTENT_FORMAT) == n.OCTET_STREAM
    pb.server.feed(codec.empty(n.ACK, update.mid), PEER)
    result(pb.services.attributes.delete_attributes(pb.device_id, SHARED, ["fw"]))
    (deleted,) = pb.transport.take()
    gone = fixed("transport.AttributeUpdateNotificationMsg", deleted.payload)
    assert (list(gone.sharedDeleted), list(gone.sharedUpdated)) == (["fw"], [])


def test_server_rpc_round_trip(pb: Harness) -> None:
    """An RPC goes out as RpcRequestMsg (params as JSON text); the RpcResponseMsg reply ends it."""
    response = pb.ask(n.GET, f"{BASE}/rpc", options=OBSERVE, token=b"rp")
    assert response.code == n.VALID
    rpc = result(pb.services.rpc.enqueue(pb.device_id, "setGpio", {"pin": 7}))
    pb.clock.advance(0)
    (note,) = pb.transport.take()
    assert option(note, n.CONTENT_FORMAT) == n.OCTET_STREAM
    request: Any = default("rpc_request_proto").FromString(note.payload)
    assert (request.method, request.requestId, json.loads(request.params)) == (
        "setGpio",
        rpc.id,
        {"pin": 7},
    )
    pb.server.feed(codec.empty(n.ACK, note.mid), PEER)
    reply = default("rpc_response_proto")(payload="ok").SerializeToString()
    answer = pb.ask(n.POST, f"{BASE}/rpc/{rpc.id}", reply)
    assert (answer.code, option(answer, n.CONTENT_FORMAT)) == (n.CREATED, n.OCTET_STREAM)
    done = result(pb.services.rpc.get(pb.device_id, rpc.id))
    assert (done.state, done.response) == (RpcState.SUCCESSFUL, {"payload": "ok"})


def test_rpc_schema_change_applies_to_an_observing_device(pb: Harness) -> None:
    """An RPC sent after the request schema changed is encoded with the new schema."""
    pb.ask(n.GET, f"{BASE}/rpc", options=OBSERVE, token=b"rp")
    profile = result(pb.services.registry.get_profile("pb"))
    schema = 'syntax = "proto3"; message R { string method = 7; }'
    result(pb.services.registry.update_profile(attrs.evolve(profile, rpc_request_proto=schema)))
    result(pb.services.rpc.enqueue(pb.device_id, "reboot", oneway=True))
    pb.clock.advance(0)
    (note,) = pb.transport.take()
    r_class = compile_proto({"r.proto": schema}).last_message("r.proto")
    assert r_class.FromString(note.payload).method == "reboot"  # type: ignore[attr-defined]


def test_client_side_rpc(pb: Harness) -> None:
    """transportapi.RpcRequest is answered ToServerRpcResponseMsg; nobody answering is 5.04."""
    rpc_class = FIXED.message("transportapi.RpcRequest")
    request = rpc_class(method="getCurrentTime", params="{}").SerializeToString()
    response = pb.ask(n.POST, f"{BASE}/rpc", request)
    assert (response.code, option(response, n.CONTENT_FORMAT)) == (n.CONTENT, n.OCTET_STREAM)
    answer = fixed("transport.ToServerRpcResponseMsg", response.payload)
    assert json.loads(answer.payload) == {"currentTime": int(pb.clock.seconds() * 1000)}
    unanswered = pb.ask(n.POST, f"{BASE}/rpc", rpc_class(method="check").SerializeToString())
    assert unanswered.code == n.GATEWAY_TIMEOUT
    assert "check" in fixed("transport.ToServerRpcResponseMsg", unanswered.payload).error
    assert pb.ask(n.POST, f"{BASE}/rpc", rpc_class().SerializeToString()).code == n.BAD_REQUEST


def test_claim_is_claim_device(pb: Harness) -> None:
    """A ClaimDevice body is recorded with its secret and duration."""
    body = FIXED.message("transportapi.ClaimDevice")(secretKey="s", durationMs=60_000)
    assert pb.ask(n.POST, f"{BASE}/claim", body.SerializeToString()).code == n.CREATED
    claim = result(pb.services.claiming.get_claim(pb.device_id))
    assert claim is not None and claim.secret_key == "s"
    assert claim.expires_at == int(pb.clock.seconds() * 1000) + 60_000


@pytest.fixture
def provisioning(tb: Harness) -> Harness:
    profile = Profile(
        "sensors",
        provisioning=ProvisionStrategy.ALLOW_CREATE_NEW,
        provision_key="k",
        provision_secret="s",
    )
    result(tb.services.registry.create_profile(profile))
    return tb


def _provision_request(**fields: Any) -> bytes:
    message: Any = FIXED.message("transport.ProvisionDeviceRequestMsg")(deviceName="p1", **fields)
    message.provisionDeviceCredentialsMsg.provisionDeviceKey = "k"
    message.provisionDeviceCredentialsMsg.provisionDeviceSecret = "s"
    return bytes(message.SerializeToString())


def test_protobuf_provisioning(provisioning: Harness) -> None:
    """A request that is no JSON object is a ProvisionDeviceRequestMsg, answered in protobuf."""
    tb = provisioning
    request: Any = FIXED.message("transport.ProvisionDeviceRequestMsg").FromString(
        _provision_request()
    )
    request.credentialsDataProto.validateDeviceTokenRequestMsg.token = "PTOKEN"
    response = tb.ask(n.POST, "api/v1/provision", request.SerializeToString())
    assert (response.code, option(response, n.CONTENT_FORMAT)) == (n.CREATED, n.OCTET_STREAM)
    answer = fixed("transport.ProvisionDeviceResponseMsg", response.payload)
    assert (answer.status, answer.credentialsType, answer.credentialsValue) == (1, 0, "PTOKEN")
    assert tb.services.devices.authenticate_token("PTOKEN") is not None
    again = tb.ask(n.POST, "api/v1/provision", _provision_request())
    assert again.code == n.BAD_REQUEST
    assert fixed("transport.ProvisionDeviceResponseMsg", again.payload).status == 3  # FAILURE


def test_json_provisioning_stays_json(provisioning: Harness) -> None:
    """A JSON request still gets JSON, and bytes that are neither get the JSON error."""
    body = b'{"provisionDeviceKey":"k","provisionDeviceSecret":"s","deviceName":"j"}'
    response = provisioning.ask(n.POST, "api/v1/provision", body)
    assert json.loads(response.payload)["status"] == "SUCCESS"
    garbage = provisioning.ask(n.POST, "api/v1/provision", b"\xff\xfe")
    assert (garbage.code, garbage.payload) == (n.BAD_REQUEST, b"payload is not UTF-8")


def test_json_profile_is_unchanged(tb: Harness) -> None:
    """A device of a JSON profile still gets JSON with Content-Format 50."""
    result(tb.services.attributes.set_attributes(tb.device_id, SHARED, {"a": 1}))
    response = tb.ask(n.GET, f"{BASE}/attributes")
    assert (json.loads(response.payload), option(response, n.CONTENT_FORMAT)) == (
        {"shared": {"a": 1}},
        n.JSON,
    )


def test_rpc_field_the_schema_cannot_hold_is_left_out(pb: Harness) -> None:
    """A request schema whose requestId is a string still carries the method; the id is left out."""
    pb.ask(n.GET, f"{BASE}/rpc", options=OBSERVE, token=b"rp")
    profile = result(pb.services.registry.get_profile("pb"))
    schema = 'syntax = "proto3"; message R { string method = 1; bytes requestId = 2; }'
    result(pb.services.registry.update_profile(attrs.evolve(profile, rpc_request_proto=schema)))
    result(pb.services.rpc.enqueue(pb.device_id, "reboot", oneway=True))
    pb.clock.advance(0)
    (note,) = pb.transport.take()
    r_class = compile_proto({"r.proto": schema}).last_message("r.proto")
    sent: Any = r_class.FromString(note.payload)
    assert (sent.method, sent.requestId) == ("reboot", b"")


def test_stored_schema_that_does_not_compile_is_400(pb: Harness) -> None:
    """A profile stored with a schema that no longer compiles answers its uplinks 4.00 and why."""
    profile = result(pb.services.registry.get_profile("pb"))
    # Written past the registry's check, as a store from before the check holds it.
    pb.services.credentials.put_profile(attrs.evolve(profile, telemetry_proto='syntax = "proto3";'))
    response = pb.ask(n.POST, f"{BASE}/telemetry", b"")
    assert (response.code, response.payload) == (
        n.BAD_REQUEST,
        b"telemetry_proto: the schema declares no message",
    )
