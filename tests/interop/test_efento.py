"""
The Efento dialect end to end: the real gateway (C{twistd -n coap-gateway})
with an Efento sensor played by Debian's C{coap-client-notls} (CON, and NON
with C{-N}), its messages built from the sensor's published schema with the
protobuf runtime, and what it recorded read back through the northbound API.
"""

from __future__ import annotations

import struct
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest

from gateway.dialects.efento.schema import EfentoSchema, load_schema
from tests.interop.gateway_process import CLIENT_TIMEOUT, RESPONSE_LINE, GatewayProcess
from tests.interop.peers import find_peer

TOKEN = "efento-interop-token"


@attrs.frozen
class Sensor:
    """The gateway, its Efento device (access token L{TOKEN}) and the sensor's schema."""

    gw: GatewayProcess
    device_id: str
    schema: EfentoSchema

    def latest(self) -> dict[str, Any]:
        return self.gw.api_ok("GET", f"/api/v1/devices/{self.device_id}/telemetry/latest")


@attrs.frozen
class Reply:
    code: str
    type: str
    #: The body (C{-o}) of a 2.xx, the logged diagnostic of anything else.
    payload: bytes
    log: str


@pytest.fixture(scope="module")
def sensor(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sensor]:
    gw = GatewayProcess.start(tmp_path_factory.mktemp("efentogateway"))
    try:
        device = gw.api_ok("POST", "/api/v1/devices", {
            "name": "efento-sensor", "credentials": {"type": "access_token", "token": TOKEN},
        })
        yield Sensor(gw, device["id"], load_schema())
    finally:
        gw.stop()
    assert "Traceback" not in gw.log() and "Unhandled" not in gw.log(), gw.log()


def send(
    sensor: Sensor, tmp: Path, method: str, path: str, payload: bytes | None = None,
    non: bool = False,
) -> Reply:
    """One request with C{coap-client-notls -v 6}, the payload from a file (C{-f})."""
    out = tmp / f"efento-{time.monotonic_ns()}.out"
    argv = [find_peer("coap-client-notls"), "-v", "6", "-m", method, "-o", str(out)]
    if non:
        argv.append("-N")
    if payload is not None:
        body = tmp / f"efento-{time.monotonic_ns()}.in"
        body.write_bytes(payload)
        argv += ["-f", str(body)]
    argv.append(sensor.gw.uri(path))
    done = subprocess.run(argv, capture_output=True, timeout=CLIENT_TIMEOUT, check=False)
    log = (done.stdout + done.stderr).decode("utf-8", "replace")
    responses = [m for m in RESPONSE_LINE.finditer(log) if m["code"] != "0.00"]
    assert responses, f"no response logged by {argv}:\n{log}"
    last = responses[-1]
    body_bytes = out.read_bytes() if out.exists() else (last["payload"] or "").encode()
    return Reply(last["code"], last["type"], body_bytes, log)


def measurements(schema: EfentoSchema, token: str = TOKEN, **channel: Any) -> bytes:
    message: Any = schema.measurements(
        serial_num=bytes.fromhex("282C02424F5E"), cloud_token=token, battery_status=True,
        measurement_period_base=60, measurement_period_factor=1, signal=30,
        next_transmission_at=1_700_000_600,
    )
    message.channels.add(**channel)
    return bytes(message.SerializeToString())


def test_measurements_con_are_stored(sensor: Sensor, tmp_path: Path) -> None:
    """A CON ProtoMeasurements gets a piggybacked 2.01 and its samples show in the API."""
    payload = measurements(
        sensor.schema, type=1, timestamp=1_700_000_000, start_point=200, sample_offsets=[15, 20]
    )
    reply = send(sensor, tmp_path, "post", "efento/m", payload)
    assert (reply.code, reply.type) == ("2.01", "ACK"), reply.log
    latest = sensor.latest()
    assert latest["temperature_1"] == {"ts": 1_700_000_060_000, "value": 22.0}
    assert latest["serial"]["value"] == "282C02424F5E"
    assert latest["battery"]["value"] == "ok"
    assert latest["measurement_interval_1"]["value"] == 60


def test_measurements_non_get_a_non_answer(sensor: Sensor, tmp_path: Path) -> None:
    """A NON ProtoMeasurements (coap-client -N) is answered with a NON 2.01 and stored."""
    payload = measurements(sensor.schema, type=5, timestamp=1_700_001_000, sample_offsets=[1, -31])
    reply = send(sensor, tmp_path, "post", "efento/m", payload, non=True)
    assert (reply.code, reply.type) == ("2.01", "NON"), reply.log
    assert sensor.latest()["ok_alarm_1"] == {"ts": 1_700_001_030_000, "value": "OK"}


def test_device_info_is_telemetry(sensor: Sensor, tmp_path: Path) -> None:
    """A ProtoDeviceInfo gets 2.01 and its keys show as telemetry."""
    message: Any = sensor.schema.device_info(
        cloud_token=TOKEN, sw_version=1546, memory_statistics=[0, 0xFFFFFFFF],
        modem={"type": 1, "parameters": [6300, 2]},
    )
    reply = send(sensor, tmp_path, "post", "efento/i", message.SerializeToString())
    assert reply.code == "2.01", reply.log
    latest = sensor.latest()
    assert latest["sw_version"]["value"] == 1546
    assert latest["timestamp_of_the_end_of_collecting_statistics"]["value"] == "Undefined"
    assert latest["modem_types"]["value"] == "MODEM_TYPE_BC66"
    assert latest["sc_EARFCN"]["value"] == 6300


def test_configuration_is_client_attributes(sensor: Sensor, tmp_path: Path) -> None:
    """A NON ProtoConfig gets a NON 2.01 and shows as client attributes, without its cloud token."""
    message: Any = sensor.schema.config(
        cloud_token=TOKEN, transmission_interval=3600, apn="iot.example", channel_types=[1, 5],
    )
    reply = send(sensor, tmp_path, "post", "efento/c", message.SerializeToString(), non=True)
    assert (reply.code, reply.type) == ("2.01", "NON"), reply.log
    client = sensor.gw.api_ok(
        "GET", f"/api/v1/devices/{sensor.device_id}/attributes", scope="client"
    )["client"]
    assert client["transmissionInterval"] == 3600 and client["apn"] == "iot.example"
    assert client["channelTypes"] == ["MEASUREMENT_TYPE_TEMPERATURE", "MEASUREMENT_TYPE_OK_ALARM"]
    assert "cloudToken" not in client


def test_time_is_four_bytes_of_epoch_seconds(sensor: Sensor, tmp_path: Path) -> None:
    """GET /efento/t is 2.05 with the gateway's epoch seconds, 4 bytes big-endian."""
    before = int(time.time())
    reply = send(sensor, tmp_path, "get", "efento/t")
    assert reply.code == "2.05", reply.log
    (seconds,) = struct.unpack(">I", reply.payload)
    assert before - 1 <= seconds <= time.time() + 1


def test_unknown_token_is_unauthorized(sensor: Sensor, tmp_path: Path) -> None:
    """Measurements with a cloud token no device holds are 4.01 with the reason; none stored."""
    payload = measurements(sensor.schema, "nobody", type=43, timestamp=1_700_000_000,
                           sample_offsets=[5])
    reply = send(sensor, tmp_path, "post", "efento/m", payload)
    assert (reply.code, reply.payload) == ("4.01", b"Unknown cloud token"), reply.log
    assert "resistance_1" not in sensor.latest()


def test_bad_payload_is_bad_request(sensor: Sensor, tmp_path: Path) -> None:
    """A payload that is no ProtoMeasurements is 4.00 with the reason."""
    reply = send(sensor, tmp_path, "post", "efento/m", b"\x0a\xff\xff")
    assert reply.code == "4.00", reply.log
    assert reply.payload.startswith(b"Invalid ProtoMeasurements"), reply.log


def test_other_paths_are_bad_request(sensor: Sensor, tmp_path: Path) -> None:
    """A path Efento does not use is 4.00 with the reason."""
    reply = send(sensor, tmp_path, "post", "efento/x", b"")
    assert reply.code == "4.00", reply.log
    assert reply.payload.startswith(b"No Efento endpoint for POST /efento/x"), reply.log


def test_queued_configuration_comes_back_in_the_answer(sensor: Sensor, tmp_path: Path) -> None:
    """A 'config' RPC queued through the API is the payload of the next 2.01, as ProtoConfig."""
    rpc = sensor.gw.api_ok(
        "POST", f"/api/v1/devices/{sensor.device_id}/rpc",
        {"method": "config", "params": {"transmissionInterval": 900, "requestDeviceInfo": True},
         "oneway": True},
        wait="false",
    )
    payload = measurements(sensor.schema, type=2, timestamp=1_700_002_000, sample_offsets=[40])
    reply = send(sensor, tmp_path, "post", "efento/m", payload)
    assert reply.code == "2.01", reply.log
    config: Any = sensor.schema.config.FromString(reply.payload)
    assert (config.transmission_interval, config.request_device_info) == (900, True)
    done = sensor.gw.api_ok("GET", f"/api/v1/devices/{sensor.device_id}/rpc/{rpc['id']}")
    assert done["state"] == "SUCCESSFUL"
    assert sensor.latest()["humidity_1"]["value"] == 40.0


@pytest.mark.parametrize("non", [False, True])
def test_aiocoap_measurements(
    sensor: Sensor, tmp_path: Path, aiocoap_client: str, non: bool
) -> None:
    """aiocoap-client's CON and NON measurements are answered (2.01) and stored."""
    timestamp = 1_700_003_000 + 100 * non
    body = tmp_path / "m.bin"
    body.write_bytes(
        measurements(sensor.schema, type=3, timestamp=timestamp, sample_offsets=[10132])
    )
    argv = [aiocoap_client, *(["--non"] if non else []), "-m", "POST", "--payload", f"@{body}",
            sensor.gw.uri("efento/m")]
    done = subprocess.run(argv, capture_output=True, timeout=CLIENT_TIMEOUT, check=False)
    assert done.returncode == 0, done.stderr
    assert sensor.latest()["pressure_1"] == {"ts": timestamp * 1000, "value": 1013.2}
