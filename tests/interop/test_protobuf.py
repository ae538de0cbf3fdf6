"""
Protobuf profiles end to end: the real gateway (C{twistd -n coap-gateway}),
a profile with the default schemas made through the HTTP API, devices
played by C{coap-client-notls} (payloads from files) and, to observe, the
aiocoap library in a child process; the test encodes and decodes with the
protobuf runtime and the schemas of C{etc/proto} compiled by the gateway's
compiler.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from google.protobuf.message import Message

from gateway.protobuf.schema import compile_proto
from gateway.protobuf.shipped import DEFAULT_SCHEMAS, shipped_text, transport_messages
from tests.interop.gateway_process import GatewayProcess
from tests.interop.test_aiocoap import _Lines
from tests.interop.test_thingsboard_gateway import latest, make_device, unique

FIXED = transport_messages()
#: Content-Format 42, application/octet-stream, as aiocoap reports it.
OCTET_STREAM = "42"

#: An aiocoap observer printing each answer's code, Content-Format and payload in hex.
OBSERVER = """
import asyncio, sys
import aiocoap

async def main(uri, count):
    context = await aiocoap.Context.create_client_context()
    requester = context.request(aiocoap.Message(code=aiocoap.GET, uri=uri, observe=0))
    first = await requester.response
    cf = int(first.opt.content_format or 0)
    print("response", first.code.dotted, cf, first.payload.hex(), flush=True)
    seen = 0
    async for note in requester.observation:
        print("notification", int(note.opt.content_format or 0), note.payload.hex(), flush=True)
        seen += 1
        if seen == count:
            break
    requester.observation.cancel()
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    await context.shutdown()

asyncio.run(main(sys.argv[1], int(sys.argv[2])))
"""


def default(field: str) -> type[Message]:
    """A default schema's last message, compiled from the shipped file."""
    name = DEFAULT_SCHEMAS[field]
    return compile_proto({name: shipped_text(name)}).last_message(name)


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    gw = GatewayProcess.start(tmp_path_factory.mktemp("pbgateway"))
    try:
        yield gw
    finally:
        gw.stop()
    assert "Traceback" not in gw.log() and "Unhandled" not in gw.log(), gw.log()


@pytest.fixture(scope="module")
def profile(gateway: GatewayProcess) -> str:
    """A protobuf profile given no schemas: it gets the defaults."""
    name = unique("pb")
    made = gateway.api_ok("POST", "/api/v1/profiles", {"name": name, "payload_format": "protobuf"})
    assert made["payload_format"] == "protobuf"
    return name


@pytest.fixture
def device(gateway: GatewayProcess, profile: str) -> dict[str, Any]:
    return make_device(gateway, profile=profile)


class Observer:
    """The aiocoap child observing C{path}, and the lines it prints."""

    def __init__(self, gw: GatewayProcess, path: str, count: int) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", OBSERVER, gw.uri(path), str(count)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )
        self.lines = _Lines(self.proc)

    def next(self, kind: str) -> list[str]:
        """The words of the next line, which must be of C{kind}."""
        words = self.lines.next().split(" ")
        assert words[0] == kind, words
        return words[1:]

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()


def test_telemetry_and_bad_payload(
    gateway: GatewayProcess, coap_client: str, device: dict[str, Any], tmp_path: Path
) -> None:
    """Telemetry encoded as SensorDataReading is stored; bytes that don't decode are 4.00."""
    path = f"api/v1/{device['access_token']}/telemetry"
    bad = gateway.coap(coap_client, tmp_path, "post", path, b"\x0a\x09trunc")
    assert bad.code == "4.00" and "not a protobuf" in bad.payload, bad.log
    assert latest(gateway, device["id"]) == {}
    reading: Any = default("telemetry_proto")(temperature=21.5, humidity=40.0)
    reading.innerObject.key2 = True
    reply = gateway.coap(coap_client, tmp_path, "post", path, reading.SerializeToString())
    assert reply.code == "2.01", reply.log
    values = {k: v["value"] for k, v in latest(gateway, device["id"]).items()}
    assert values == {"temperature": 21.5, "humidity": 40.0, "innerObject": {"key2": True}}


def test_attributes_posted_and_read(
    gateway: GatewayProcess, coap_client: str, device: dict[str, Any], tmp_path: Path
) -> None:
    """Client attributes as SensorConfiguration; GET answers GetAttributeResponseMsg."""
    base = f"api/v1/{device['access_token']}/attributes"
    config = default("attributes_proto")(firmwareVersion="v1.2", serialNumber="SN-7")
    posted = gateway.coap(coap_client, tmp_path, "post", base, config.SerializeToString())
    assert posted.code == "2.01", posted.log
    gateway.api_ok("POST", f"/api/v1/devices/{device['id']}/attributes/shared", {"led": 3})
    read = gateway.coap(coap_client, tmp_path, "get", base)
    assert read.code == "2.05", read.log
    answer: Any = FIXED.message("transport.GetAttributeResponseMsg").FromString(read.raw)
    client = {t.kv.key: t.kv.string_v for t in answer.clientAttributeList}
    assert client == {"firmwareVersion": "v1.2", "serialNumber": "SN-7"}
    assert [(t.kv.key, t.kv.long_v) for t in answer.sharedAttributeList] == [("led", 3)]


def test_attribute_observation(gateway: GatewayProcess, device: dict[str, Any]) -> None:
    """The observation answers AttributeUpdateNotificationMsg, then one per shared change."""
    gateway.api_ok("POST", f"/api/v1/devices/{device['id']}/attributes/shared", {"fw": "1"})
    observer = Observer(gateway, f"api/v1/{device['access_token']}/attributes", 1)
    notification = FIXED.message("transport.AttributeUpdateNotificationMsg")
    try:
        code, content_format, payload = observer.next("response")
        assert (code, content_format) == ("2.05", OCTET_STREAM)
        state: Any = notification.FromString(bytes.fromhex(payload))
        assert [(t.kv.key, t.kv.string_v) for t in state.sharedUpdated] == [("fw", "1")]
        gateway.api_ok("POST", f"/api/v1/devices/{device['id']}/attributes/shared", {"fw": "2"})
        content_format, payload = observer.next("notification")
        changed: Any = notification.FromString(bytes.fromhex(payload))
        assert content_format == OCTET_STREAM
        assert [(t.kv.key, t.kv.string_v) for t in changed.sharedUpdated] == [("fw", "2")]
    finally:
        observer.stop()


def test_server_rpc_round_trip(
    gateway: GatewayProcess, coap_client: str, device: dict[str, Any], tmp_path: Path
) -> None:
    """An RPC goes out as RpcRequestMsg; the device's RpcResponseMsg reply completes it."""
    token = device["access_token"]
    observer = Observer(gateway, f"api/v1/{token}/rpc", 1)
    try:
        assert observer.next("response")[0] == "2.03"
        queued = gateway.api_ok("POST", f"/api/v1/devices/{device['id']}/rpc",
                                {"method": "setLed", "params": {"on": True}}, wait="false")
        content_format, payload = observer.next("notification")
        request: Any = default("rpc_request_proto").FromString(bytes.fromhex(payload))
        assert content_format == OCTET_STREAM
        assert (request.method, request.requestId, request.params) == (
            "setLed", queued["id"], '{"on":true}',
        )
    finally:
        observer.stop()
    reply = default("rpc_response_proto")(payload="done").SerializeToString()
    answered = gateway.coap(coap_client, tmp_path, "post", f"api/v1/{token}/rpc/{queued['id']}",
                            reply)
    assert answered.code == "2.01", answered.log
    rpc = gateway.api_ok("GET", f"/api/v1/devices/{device['id']}/rpc/{queued['id']}")
    assert (rpc["state"], rpc["response"]) == ("SUCCESSFUL", {"payload": "done"})


def test_provisioning(gateway: GatewayProcess, coap_client: str, tmp_path: Path) -> None:
    """A ProvisionDeviceRequestMsg creates the device; the answer is ProvisionDeviceResponseMsg."""
    name, key, secret = unique("prov"), unique("key"), unique("secret")
    gateway.api_ok("POST", "/api/v1/profiles", {
        "name": name, "payload_format": "protobuf", "provisioning": "allow_create_new",
        "provision_key": key, "provision_secret": secret,
    })
    request: Any = FIXED.message("transport.ProvisionDeviceRequestMsg")(deviceName=name)
    request.provisionDeviceCredentialsMsg.provisionDeviceKey = key
    request.provisionDeviceCredentialsMsg.provisionDeviceSecret = secret
    reply = gateway.coap(coap_client, tmp_path, "post", "api/v1/provision",
                         request.SerializeToString())
    assert reply.code == "2.01", reply.log
    answer: Any = FIXED.message("transport.ProvisionDeviceResponseMsg").FromString(reply.raw)
    assert (answer.status, answer.credentialsType) == (1, 0)  # SUCCESS, ACCESS_TOKEN
    reading = default("telemetry_proto")(temperature=1.0).SerializeToString()
    posted = gateway.coap(coap_client, tmp_path, "post",
                          f"api/v1/{answer.credentialsValue}/telemetry", reading)
    assert posted.code == "2.01", posted.log


def test_bad_schema_is_refused(gateway: GatewayProcess) -> None:
    """A profile whose schema imports another file is a 400 saying so; nothing is created."""
    name = unique("badpb")
    refused = gateway.api("POST", "/api/v1/profiles", {
        "name": name, "payload_format": "protobuf",
        "telemetry_proto": 'syntax = "proto3";\nimport "other.proto";\nmessage T {}',
    })
    assert refused.status == 400
    assert refused.body["error"] == (
        "telemetry_proto: telemetry.proto, line 2: imports are not allowed in a profile schema"
    )
    assert gateway.api("GET", f"/api/v1/profiles/{name}").status == 404
