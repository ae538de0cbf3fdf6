"""
The Drogue dialect end to end: the real gateway (C{twistd -n coap-gateway})
with devices played by Debian's C{coap-client-notls} (plain CoAP) and
C{coap-client-openssl} (DTLS), Drogue's own documented command among them,
commands sent through the northbound RPC API, and the events checked as a
real HTTP upstream (C{scripts/upstream_sink.py}) receives them.
"""

from __future__ import annotations

import base64
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest

from tests.interop.gateway_process import (
    CLIENT_TIMEOUT,
    RESPONSE_LINE,
    VENV_BIN,
    GatewayProcess,
    clean_environ,
)
from tests.interop.peers import find_peer
from tests.interop.test_upstream_crash import _received, _sink
from tests.interop.watch import OutputWatcher

#: Drogue's documented credentials: device1 of example-app, password hey-rodney.
DOCUMENTED = "4209,Basic ZGV2aWNlMUBleGFtcGxlLWFwcDpoZXktcm9kbmV5"
#: An empty ACK in libcoap's C{-v 7} log.
EMPTY_ACK = re.compile(r"received \d+ bytes\s*\nv:1 t:ACK c:0\.00")


@attrs.frozen
class Drogue:
    """The gateway, its device1 of example-app, and what its upstream received."""

    gw: GatewayProcess
    device_id: str
    record: Path
    sink: OutputWatcher

    def event(self, channel: str) -> dict[str, Any]:
        """The one event upstream of a publish on C{channel} (waits for it)."""

        def found(_: str) -> list[dict[str, Any]]:
            return [e for e in _received(self.record) if e.get("subject") == channel]

        # Wakes on each batch the sink records (its "recorded" lines).
        (event,) = self.sink.wait_until(found, 10, f"no event of channel {channel!r}")
        return event


@pytest.fixture(scope="module")
def drogue(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Drogue]:
    workdir = tmp_path_factory.mktemp("droguegateway")
    record = workdir / "received.jsonl"
    sink, sink_output, port = _sink(workdir, record)
    environ = {
        "GATEWAY_UPSTREAM_URL": f"http://127.0.0.1:{port}/events",
        "GATEWAY_UPSTREAM_FLUSH_INTERVAL": "0.05",
    }
    gw = GatewayProcess.start(workdir, environ=environ)
    try:
        device = gw.api_ok("POST", "/api/v1/devices", {
            "name": "device1", "application": "example-app",
            "credentials": {"type": "basic", "password": "hey-rodney"},
        })
        yield Drogue(gw, device["id"], record, sink_output)
    finally:
        gw.stop()
        sink.terminate()
        sink.wait(10)
    assert "Traceback" not in gw.log() and "Unhandled" not in gw.log(), gw.log()


@pytest.fixture
def gateway(drogue: Drogue) -> GatewayProcess:
    return drogue.gw


#: A publish through aiocoap's library, with the credentials option and
#: C{ct}; prints the response code, option 4210 and payload.
AIOCOAP_PUBLISH = """
import asyncio, sys
from aiocoap import Context, Message, POST
from aiocoap.optiontypes import OpaqueOption

async def main():
    context = await Context.create_client_context()
    request = Message(code=POST, uri=sys.argv[1], payload=b'{"a":1}')
    request.opt.add_option(OpaqueOption(4209, sys.argv[2].encode()))
    response = await context.request(request).response
    command = [bytes(o.value) for o in response.opt.option_list() if o.number == 4210]
    print(response.code, command, response.payload)
    await context.shutdown()

asyncio.run(main())
"""


def basic(user: str, password: str = "hey-rodney") -> str:
    return "4209,Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_documented_command_over_plain_coap(gateway: GatewayProcess, tmp_path: Path) -> None:
    """Drogue's documented publish, verbatim but for the host, gets 2.04."""
    reply = gateway.coap(
        find_peer("coap-client-notls"), tmp_path, "post", "v1/foo", extra=("-O", DOCUMENTED)
    )
    assert reply.code == "2.04", reply.log


def test_upstream_event_has_drogues_shape(drogue: Drogue, tmp_path: Path) -> None:
    """The event the HTTP upstream receives matches Drogue's, attribute by attribute."""
    reply = drogue.gw.coap(
        find_peer("coap-client-notls"), tmp_path, "post", "v1/shape?data_schema=urn%3At",
        b'{"temp": 21.5}', extra=("-O", DOCUMENTED, "-t", "50"),
    )
    assert reply.code == "2.04", reply.log
    event = drogue.event("shape")
    assert (event["specversion"], event["type"], event["source"], event["subject"]) == (
        "1.0", "io.drogue.event.v1", "drogue://example-app/device1", "shape",
    )
    assert (event["application"], event["device"], event["sender"]) == (
        "example-app", "device1", "device1",
    )
    assert (event["partitionkey"], event["dataschema"]) == ("example%2Dapp/device1", "urn:t")
    assert event["instance"] and re.fullmatch(r"[0-9a-f-]{36}", event["id"])
    assert (event["datacontenttype"], event["data"]) == ("application/json", {"temp": 21.5})
    assert event["time"].endswith("Z")


def test_documented_command_over_dtls(gateway: GatewayProcess) -> None:
    """The same command with coap-client-openssl over DTLS (no client identity) gets 2.04."""
    done = subprocess.run(
        [find_peer("coap-client-openssl"), "-v", "6", "-m", "post",
         f"coaps://127.0.0.1:{gateway.dtls_port}/v1/foo", "-O", DOCUMENTED],
        capture_output=True, timeout=CLIENT_TIMEOUT, check=False,
    )
    log = (done.stdout + done.stderr).decode("utf-8", "replace")
    codes = [m["code"] for m in RESPONSE_LINE.finditer(log) if m["code"] != "0.00"]
    assert codes == ["2.04"], log


def test_query_parameters_as_separate_encoded_options(
    drogue: Drogue, gateway: GatewayProcess, tmp_path: Path
) -> None:
    """application, device and a URL-encoded data_schema, one option each, all count."""
    reply = gateway.coap(
        find_peer("coap-client-notls"), tmp_path, "put",
        "v1/state/room?application=example-app&device=device1&data_schema=urn%3Aroom",
        b"hello", extra=("-O", basic("device1"), "-t", "0"),
    )
    assert reply.code == "2.04", reply.log
    last = drogue.event("state")
    assert (last["subject"], last["subjectsuffix"], last["dataschema"]) == (
        "state", "room", "urn:room",
    )
    assert last["datacontenttype"] == "text/plain; charset=utf-8"
    assert base64.b64decode(last["data_base64"]) == b"hello"


@pytest.mark.parametrize(
    ("path", "option", "code", "reason"),
    [
        ("v1/foo", basic("device1@example-app", "wrong"), "4.03", "Authentication failed"),
        ("v1/foo?ct=soon", DOCUMENTED, "4.00", "Invalid data: ct must be whole seconds"),
    ],
)
def test_error_codes_carry_their_reasons(
    gateway: GatewayProcess, tmp_path: Path, path: str, option: str, code: str, reason: str
) -> None:
    """A wrong password is 4.03 and an unparseable ct 4.00, each with its reason."""
    reply = gateway.coap(
        find_peer("coap-client-notls"), tmp_path, "post", path, extra=("-O", option)
    )
    assert (reply.code, reply.payload) == (code, reason), reply.log


def test_ct_running_out_is_changed(gateway: GatewayProcess, tmp_path: Path) -> None:
    """ct=1 with no command: 2.04 as a separate CON response, the request sent once."""
    reply = gateway.coap(
        find_peer("coap-client-notls"), tmp_path, "post", "v1/foo?ct=1", extra=("-O", DOCUMENTED)
    )
    assert (reply.code, reply.type) == ("2.04", "CON"), reply.log
    assert len(re.findall(r"t:CON c:POST", reply.log)) == 1, reply.log


def test_command_within_ct_and_a_queued_one(
    drogue: Drogue, gateway: GatewayProcess, tmp_path: Path
) -> None:
    """
    A command sent while the device waits is answered 2.05 with option 4210
    after one empty ACK and no retransmission; one sent while nobody waits
    goes out on the next publish.
    """
    client = find_peer("coap-client-notls")
    out = tmp_path / "cmd.out"
    proc = subprocess.Popen(
        [client, "-v", "7", "-m", "post", "-o", str(out), "-O", DOCUMENTED,
         f"coap://127.0.0.1:{gateway.coap_port}/v1/foo?ct=10"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    assert proc.stdout is not None
    output = OutputWatcher(proc.stdout)
    try:
        # The publish waits once the gateway has sent its empty ACK.
        output.wait_until(EMPTY_ACK.search, CLIENT_TIMEOUT, "no empty ACK")
        gateway.api_ok("POST", f"/api/v1/devices/{drogue.device_id}/rpc",
                       {"method": "reboot", "params": "now", "oneway": True}, wait="false")
        proc.wait(timeout=CLIENT_TIMEOUT)
        log = output.ended(5)
    finally:
        if proc.poll() is None:
            proc.kill()
    reboot = "".join(f"\\x{b:02X}" for b in b"reboot")
    assert re.search(r"t:CON c:2\.05 \S+ \{01\} \[ 4210:" + re.escape(reboot), log), log
    assert out.read_bytes().strip() == b"now"
    assert len(EMPTY_ACK.findall(log)) == 1, log
    assert len(re.findall(r"t:CON c:POST", log)) == 1, log  # no retransmission
    gateway.api_ok("POST", f"/api/v1/devices/{drogue.device_id}/rpc",
                   {"method": "led", "params": "on", "oneway": True}, wait="false")
    reply = gateway.coap(client, tmp_path, "post", "v1/foo?ct=5", extra=("-O", DOCUMENTED))
    assert (reply.code, reply.payload.strip()) == ("2.05", "on"), reply.log


def _with_and_without_4209(uri: str, *identity: str) -> tuple[list[list[str]], list[str]]:
    """The response codes of a DTLS publish with C{identity}, then with 4209 too; the logs."""
    codes, logs = [], []
    for extra in ((), ("-O", DOCUMENTED)):
        done = subprocess.run(
            [find_peer("coap-client-openssl"), "-v", "6", *identity, "-m", "post", *extra, uri],
            capture_output=True, timeout=CLIENT_TIMEOUT, check=False,
        )
        log = (done.stdout + done.stderr).decode("utf-8", "replace")
        codes.append([m["code"] for m in RESPONSE_LINE.finditer(log) if m["code"] != "0.00"])
        logs.append(log)
    return codes, logs


def test_psk_identity_device_at_app_over_dtls(drogue: Drogue) -> None:
    """coap-client-openssl with PSK identity device@app publishes; 4209 on that session is 4.03."""
    drogue.gw.api_ok("POST", "/api/v1/devices", {
        "name": "psk1", "application": "example-app",
        "credentials": {"type": "psk", "identity": "psk1@example-app", "key": b"psk-key".hex()},
    })
    uri = f"coaps://127.0.0.1:{drogue.gw.dtls_port}/v1/psk"
    codes, logs = _with_and_without_4209(uri, "-u", "psk1@example-app", "-k", "psk-key")
    assert codes == [["2.04"], ["4.03"]], logs
    assert drogue.event("psk")["source"] == "drogue://example-app/psk1"


def test_x509_certificate_over_dtls(drogue: Drogue, tmp_path: Path) -> None:
    """A device of example-app with a registered certificate publishes over DTLS (-c/-j), 2.04."""
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    openssl = find_peer("openssl")
    subprocess.run([openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1", "-subj", "/CN=x509dev",
                    "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=CLIENT_TIMEOUT)
    drogue.gw.api_ok("POST", "/api/v1/devices", {
        "name": "x509dev", "application": "example-app",
        "credentials": {"type": "x509", "certificate": cert.read_text()},
    })
    uri = f"coaps://127.0.0.1:{drogue.gw.dtls_port}/v1/cert"
    # 4209 on a session that already carries an identity is refused, as in Drogue.
    codes, logs = _with_and_without_4209(uri, "-c", str(cert), "-j", str(key), "-e", '{"x":1}')
    assert codes == [["2.04"], ["4.03"]], logs
    event = drogue.event("cert")
    assert (event["source"], event["device"]) == ("drogue://example-app/x509dev", "x509dev")


def test_as_allowed_and_refused(drogue: Drogue, tmp_path: Path) -> None:
    """A gateway publishes as a device that lists it; as a device that does not, 4.03."""
    gw = drogue.gw
    gw.api_ok("POST", "/api/v1/devices", {
        "name": "gw1", "application": "example-app",
        "credentials": {"type": "basic", "password": "gw-pass"},
    })
    gw.api_ok("POST", "/api/v1/devices",
              {"name": "behind", "application": "example-app", "gateways": ["gw1"]})
    gw.api_ok("POST", "/api/v1/devices", {"name": "alone", "application": "example-app"})
    client = find_peer("coap-client-notls")
    option = ("-O", basic("gw1@example-app", "gw-pass"))
    allowed = gw.coap(client, tmp_path, "post", "v1/relayed?as=behind", extra=option)
    refused = gw.coap(client, tmp_path, "post", "v1/refused?as=alone", extra=option)
    assert allowed.code == "2.04", allowed.log
    assert (refused.code, refused.payload) == ("4.03", "Authentication failed"), refused.log
    event = drogue.event("relayed")
    assert (event["device"], event["sender"]) == ("behind", "gw1")


def test_gatewayctl_command_send_reaches_a_waiting_device(
    drogue: Drogue, tmp_path: Path
) -> None:
    """A command queued with gatewayctl command send answers the next ct publish, its type too."""
    done = subprocess.run(
        [str(VENV_BIN / "gatewayctl"), "--url", drogue.gw.api_url, "--key", drogue.gw.api_key,
         "command", "send", "example-app", "device1", "blink", "--payload", "3 times",
         "--content-type", "application/json"],
        capture_output=True, timeout=CLIENT_TIMEOUT, check=False, env=clean_environ(),
    )
    assert done.returncode == 0, done.stderr
    reply = drogue.gw.coap(
        find_peer("coap-client-notls"), tmp_path, "post", "v1/foo?ct=5", extra=("-O", DOCUMENTED)
    )
    assert (reply.code, reply.payload.strip()) == ("2.05", "3 times"), reply.log
    # The Content-Type it was sent with, as Content-Format 50 (Drogue sends none).
    assert re.search(r"c:2\.05 .*\[ Content-Format:application/json,", reply.log), reply.log


def test_aiocoap_publish_waits_for_a_command(drogue: Drogue) -> None:
    """aiocoap's client publishes with 4209 and ct, and gets the command as 2.05 with 4210."""
    # Queued first: the publish takes it at once (no guessing when it started to wait).
    drogue.gw.api_ok("POST", f"/api/v1/devices/{drogue.device_id}/rpc",
                     {"method": "fan", "params": "max", "oneway": True}, wait="false")
    proc = subprocess.Popen(
        [sys.executable, "-c", AIOCOAP_PUBLISH,
         f"coap://127.0.0.1:{drogue.gw.coap_port}/v1/aio?ct=10", DOCUMENTED.split(",", 1)[1]],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=clean_environ(),
    )
    try:
        out = proc.communicate(timeout=CLIENT_TIMEOUT)[0].decode("utf-8", "replace")
    finally:
        if proc.poll() is None:
            proc.kill()
    assert "2.05 Content [b'fan'] b'max'" in out, out
    assert drogue.event("aio")["data"] == {"a": 1}
