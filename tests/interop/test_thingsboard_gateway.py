"""
The ThingsBoard CoAP dialect end to end: the real gateway started with
C{twistd -n coap-gateway} on port 0, managed through its HTTP API (and
C{gatewayctl}), with devices played by C{coap-client-notls} and
C{aiocoap-client} over loopback.
"""

from __future__ import annotations

import itertools
import json
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.interop.gateway_process import (
    CLIENT_TIMEOUT,
    RESPONSE_LINE,
    VENV_BIN,
    GatewayProcess,
    clean_environ,
)
from tests.interop.watch import OutputWatcher

_serial = itertools.count(1)


def unique(prefix: str) -> str:
    """A name (or token) no other test of the module uses."""
    return f"{prefix}-{next(_serial)}-{time.monotonic_ns() % 1_000_000}"


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    """The real gateway, started as an operator does; stopped with SIGTERM at the end."""
    gw = GatewayProcess.start(tmp_path_factory.mktemp("tbgateway"))
    try:
        yield gw
    finally:
        status = gw.stop()
    log = gw.log()
    # twistd re-raises the SIGTERM it handled once it has shut down cleanly.
    assert status in (0, -signal.SIGTERM), f"the gateway exited with {status}:\n{log}"
    assert "Server Shut Down" in log, log
    assert "Traceback" not in log and "Unhandled" not in log, log


@pytest.fixture(scope="module")
def libcoap(coap_client: str) -> str:
    return coap_client


@pytest.fixture(scope="module")
def aiocoap(aiocoap_client: str) -> str:
    return aiocoap_client


def make_device(gw: GatewayProcess, **fields: Any) -> dict[str, Any]:
    """A device created through the API; its body includes C{access_token}."""
    body = {"name": unique("dev"), **fields}
    device: dict[str, Any] = gw.api_ok("POST", "/api/v1/devices", body)
    return device


@pytest.fixture
def device(gateway: GatewayProcess) -> dict[str, Any]:
    return make_device(gateway)


def latest(gw: GatewayProcess, device_id: str) -> dict[str, Any]:
    found: dict[str, Any] = gw.api_ok("GET", f"/api/v1/devices/{device_id}/telemetry/latest")
    return found


def run_aiocoap(aiocoap: str, *args: str) -> tuple[int, str, str]:
    done = subprocess.run(
        [aiocoap, *args], capture_output=True, timeout=CLIENT_TIMEOUT, check=False
    )
    return done.returncode, done.stdout.decode(), done.stderr.decode()


# -- telemetry -------------------------------------------------------------------


def test_telemetry_shapes_stored(
    gateway: GatewayProcess, libcoap: str, device: dict[str, Any], tmp_path: Path
) -> None:
    """A flat object, an array and a ts/values object each get a piggybacked 2.01 and are stored."""
    token = device["access_token"]
    path = f"api/v1/{token}/telemetry"
    before = int(time.time() * 1000)
    flat = gateway.coap(libcoap, tmp_path, "post", path, b'{"temperature":21.5}',
                        extra=["-t", "json"])
    array = gateway.coap(libcoap, tmp_path, "post", path, b'[{"a":1},{"b":"two"}]')
    stamped = gateway.coap(libcoap, tmp_path, "post", path,
                           b'{"ts":1700000000000,"values":{"old":5,"flag":true}}')
    after = int(time.time() * 1000)
    assert (flat.code, array.code, stamped.code) == ("2.01", "2.01", "2.01"), flat.log
    assert (flat.type, array.type, stamped.type) == ("ACK", "ACK", "ACK"), "not piggybacked"
    assert flat.payload == array.payload == stamped.payload == ""

    values = latest(gateway, device["id"])
    assert {k: v["value"] for k, v in values.items()} == {
        "temperature": 21.5, "a": 1, "b": "two", "old": 5, "flag": True,
    }
    assert values["old"]["ts"] == values["flag"]["ts"] == 1700000000000
    for key in ("temperature", "a", "b"):
        assert before - 1000 <= values[key]["ts"] <= after + 1000, values


def test_guide_command_with_unquoted_key(
    gateway: GatewayProcess, libcoap: str, device: dict[str, Any]
) -> None:
    """ThingsBoard's guide command (body {temperature:25}) is 2.01 and gatewayctl shows 25."""
    uri = gateway.uri(f"api/v1/{device['access_token']}/telemetry")
    # The guide's command line, as it is written there (but the host and token).
    done = subprocess.run(
        [libcoap, "-v", "6", "-m", "POST", uri, "-t", "json", "-e", "{temperature:25}"],
        capture_output=True, timeout=CLIENT_TIMEOUT, check=False,
    )
    log = (done.stdout + done.stderr).decode("utf-8", "replace")
    codes = [m["code"] for m in RESPONSE_LINE.finditer(log) if m["code"] != "0.00"]
    assert codes[-1:] == ["2.01"], log
    shown = subprocess.run(
        [str(VENV_BIN / "gatewayctl"), "--url", gateway.api_url, "--key", gateway.api_key,
         "telemetry", "latest", device["name"]],
        capture_output=True, timeout=CLIENT_TIMEOUT, check=False, env=clean_environ(),
    )
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["temperature"]["value"] == 25


def test_telemetry_errors(
    gateway: GatewayProcess, libcoap: str, device: dict[str, Any], tmp_path: Path
) -> None:
    """Bad JSON and an empty body are 4.00, an unknown token 4.01, PUT 4.05; none is stored."""
    path = f"api/v1/{device['access_token']}/telemetry"
    assert gateway.coap(libcoap, tmp_path, "post", path, b"{x").code == "4.00"
    assert gateway.coap(libcoap, tmp_path, "post", path).code == "4.00"
    unknown = gateway.coap(libcoap, tmp_path, "post", "api/v1/NO_SUCH_TOKEN/telemetry",
                           b'{"a":1}')
    assert unknown.code == "4.01"
    assert gateway.coap(libcoap, tmp_path, "put", path, b'{"a":1}').code == "4.05"
    assert gateway.coap(libcoap, tmp_path, "get", path).code == "4.00"
    assert latest(gateway, device["id"]) == {}


def test_gatewayctl_device_with_token(
    gateway: GatewayProcess, libcoap: str, tmp_path: Path
) -> None:
    """A device made with `gatewayctl device create --token` posts telemetry with that token."""
    name, token = unique("ctl"), unique("CTLTOKEN")
    ctl = [str(VENV_BIN / "gatewayctl"), "--url", gateway.api_url, "--key", gateway.api_key]
    created = subprocess.run(
        [*ctl, "device", "create", name, "--token", token],
        capture_output=True, timeout=CLIENT_TIMEOUT, check=False, env=clean_environ(),
    )
    assert created.returncode == 0, created.stderr
    body = json.loads(created.stdout)
    assert (body["name"], body["access_token"]) == (name, token)

    reply = gateway.coap(libcoap, tmp_path, "post", f"api/v1/{token}/telemetry", b'{"rssi":-70}')
    assert reply.code == "2.01", reply.log
    shown = subprocess.run(
        [*ctl, "telemetry", "latest", name],
        capture_output=True, timeout=CLIENT_TIMEOUT, check=False, env=clean_environ(),
    )
    assert shown.returncode == 0, shown.stderr
    assert json.loads(shown.stdout)["rssi"]["value"] == -70


def test_gatewayctl_key_starting_with_dash(gateway: GatewayProcess) -> None:
    """`gatewayctl --key -KEY` sends -KEY as the key (a wrong one: HTTP 401, exit 1)."""
    done = subprocess.run(
        [str(VENV_BIN / "gatewayctl"), "--url", gateway.api_url, "--key", "-not-the-key",
         "device", "list"],
        capture_output=True, timeout=CLIENT_TIMEOUT, check=False, env=clean_environ(),
    )
    assert done.returncode == 1, done.stderr
    assert b"HTTP 401" in done.stderr


def test_credentials_replaced_through_api(
    gateway: GatewayProcess, libcoap: str, device: dict[str, Any], tmp_path: Path
) -> None:
    """After PUT .../credentials with a new token the old one is 4.01 and the new one 2.01."""
    old, new = device["access_token"], unique("NEWTOKEN")
    set_ = gateway.api_ok("PUT", f"/api/v1/devices/{device['id']}/credentials",
                          {"type": "access_token", "token": new})
    assert set_ == {"type": "access_token", "token": new}
    assert gateway.coap(libcoap, tmp_path, "post", f"api/v1/{old}/telemetry",
                        b'{"a":1}').code == "4.01"
    assert gateway.coap(libcoap, tmp_path, "post", f"api/v1/{new}/telemetry",
                        b'{"a":2}').code == "2.01"
    assert latest(gateway, device["id"])["a"]["value"] == 2


def test_aiocoap_whole_path_in_one_option(
    gateway: GatewayProcess, aiocoap: str, device: dict[str, Any]
) -> None:
    """A path sent as one Uri-Path option "api/v1/{token}/telemetry" is re-split and 2.01."""
    token = device["access_token"]
    # aiocoap keeps %2F inside one segment: one option with the whole path.
    rc, out, err = run_aiocoap(
        aiocoap, "-v", "-m", "POST", "--content-format", "application/json",
        "--payload", '{"one":1}', gateway.uri(f"api%2Fv1%2F{token}%2Ftelemetry"),
    )
    assert f"Uri-Path (11): 'api/v1/{token}/telemetry'" in err, err
    assert rc == 0 and "2.01" in err, (out, err)
    assert latest(gateway, device["id"])["one"]["value"] == 1


# -- attributes ------------------------------------------------------------------


def test_attributes_post_and_get(
    gateway: GatewayProcess, libcoap: str, device: dict[str, Any], tmp_path: Path
) -> None:
    """Client attributes posted over CoAP and a shared one set over HTTP read back together."""
    token, device_id = device["access_token"], device["id"]
    posted = gateway.coap(libcoap, tmp_path, "post", f"api/v1/{token}/attributes",
                          b'{"a":"x1","b":7}')
    assert posted.code == "2.01", posted.log
    gateway.api_ok("POST", f"/api/v1/devices/{device_id}/attributes/shared", {"c": 3, "d": 4})

    reply = gateway.coap(libcoap, tmp_path, "get",
                         f"api/v1/{token}/attributes?clientKeys=a&sharedKeys=c")
    assert reply.code == "2.05", reply.log
    assert reply.json() == {"client": {"a": "x1"}, "shared": {"c": 3}}
    everything = gateway.coap(libcoap, tmp_path, "get", f"api/v1/{token}/attributes")
    assert everything.json() == {"client": {"a": "x1", "b": 7}, "shared": {"c": 3, "d": 4}}
    client = gateway.api_ok("GET", f"/api/v1/devices/{device_id}/attributes", scope="client")
    assert client == {"client": {"a": "x1", "b": 7}}


def test_attributes_errors(
    gateway: GatewayProcess, libcoap: str, device: dict[str, Any], tmp_path: Path
) -> None:
    """A GET that finds nothing is 4.04 and a non-object attributes body 4.00."""
    token = device["access_token"]
    missing = gateway.coap(libcoap, tmp_path, "get",
                           f"api/v1/{token}/attributes?clientKeys=nope&sharedKeys=none")
    assert missing.code == "4.04", missing.log
    assert gateway.coap(libcoap, tmp_path, "post", f"api/v1/{token}/attributes",
                        b"[1,2]").code == "4.00"
    assert gateway.coap(libcoap, tmp_path, "post", f"api/v1/{token}/attributes",
                        b'"text"').code == "4.00"
    assert gateway.coap(libcoap, tmp_path, "delete",
                        f"api/v1/{token}/attributes").code == "4.05"


def test_observe_shared_attributes(
    gateway: GatewayProcess, libcoap: str, device: dict[str, Any], tmp_path: Path
) -> None:
    """An observer gets the shared state, then {"k":v} on an API set and {"deleted":[..]}."""
    token, device_id = device["access_token"], device["id"]
    shared = f"/api/v1/devices/{device_id}/attributes/shared"
    gateway.api_ok("POST", shared, {"c": 3})
    out = tmp_path / "observe.out"
    # stdbuf: libcoap's log is stdio, fully buffered on a pipe otherwise.
    client = subprocess.Popen(
        ["stdbuf", "-oL", libcoap, "-v", "6", "-s", "8", "-m", "get", "-o", str(out),
         gateway.uri(f"api/v1/{token}/attributes")],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    assert client.stdout is not None
    log = OutputWatcher(client.stdout)

    def received(payload: str) -> Callable[[str], bool]:
        return lambda text: any(m["payload"] == payload for m in RESPONSE_LINE.finditer(text))

    try:
        log.wait_until(received('{"c":3}'), 10, "no first observe response")
        gateway.api_ok("POST", shared, {"led": 1})
        log.wait_until(received('{"led":1}'), 10, "no update notification")
        deleted = gateway.api_ok("DELETE", shared, keys="c")
        assert deleted == {"scope": "shared", "deleted": ["c"]}
        log.wait_until(received('{"deleted":["c"]}'), 10, "no deletion notification")
        rc = client.wait(timeout=CLIENT_TIMEOUT)
    finally:
        if client.poll() is None:
            client.kill()
            client.wait()
    assert rc == 0
    assert out.read_text() == '{"c":3}{"led":1}{"deleted":["c"]}'
    responses = [m for m in RESPONSE_LINE.finditer(log.text) if m["code"] == "2.05"]
    assert [m["payload"] for m in responses] == ['{"c":3}', '{"led":1}', '{"deleted":["c"]}']
    assert gateway.proc.poll() is None
    assert "Traceback" not in gateway.log()
    # The gateway still serves the device after the observer left.
    after = gateway.coap(libcoap, tmp_path, "get", f"api/v1/{token}/attributes?sharedKeys=led")
    assert after.json() == {"shared": {"led": 1}}


# -- claim -----------------------------------------------------------------------


def test_claim(
    gateway: GatewayProcess, libcoap: str, device: dict[str, Any], tmp_path: Path
) -> None:
    """A claim with no body or with secretKey/durationMs is 2.01; a JSON array is 4.00."""
    path = f"api/v1/{device['access_token']}/claim"
    assert gateway.coap(libcoap, tmp_path, "post", path).code == "2.01"
    full = gateway.coap(libcoap, tmp_path, "post", path, b'{"secretKey":"s","durationMs":60000}')
    assert full.code == "2.01", full.log
    assert full.payload == ""
    assert gateway.coap(libcoap, tmp_path, "post", path, b"[1]").code == "4.00"
    assert gateway.coap(libcoap, tmp_path, "post", "api/v1/NO_SUCH_TOKEN/claim").code == "4.01"


def test_claim_visible_to_operators(
    gateway: GatewayProcess, libcoap: str, device: dict[str, Any], tmp_path: Path
) -> None:
    """A claim a device posts is shown by `gatewayctl device claim`: expiry, never the secret."""
    before = int(time.time() * 1000)
    posted = gateway.coap(libcoap, tmp_path, "post", f"api/v1/{device['access_token']}/claim",
                          b'{"secretKey":"s3cret","durationMs":60000}')
    assert posted.code == "2.01", posted.log
    shown = subprocess.run(
        [str(VENV_BIN / "gatewayctl"), "--url", gateway.api_url, "--key", gateway.api_key,
         "device", "claim", device["name"]],
        capture_output=True, timeout=CLIENT_TIMEOUT, check=False, env=clean_environ(),
    )
    assert shown.returncode == 0, shown.stderr
    claim = json.loads(shown.stdout)
    assert claim["secret_required"] is True and b"s3cret" not in shown.stdout
    assert before <= claim["created"] <= claim["expires_at"] - 60_000 <= int(time.time() * 1000)


# -- provisioning ----------------------------------------------------------------


def make_profile(gw: GatewayProcess, strategy: str) -> tuple[str, str, str]:
    """A profile with C{strategy} created through the API: (name, key, secret)."""
    name, key, secret = unique("profile"), unique("pkey"), unique("psecret")
    created = gw.api_ok("POST", "/api/v1/profiles", {
        "name": name, "provisioning": strategy,
        "provision_key": key, "provision_secret": secret,
    })
    assert (created["provisioning"], created["provision_key"]) == (strategy, key)
    return name, key, secret


def provision_body(key: str, secret: str, name: str) -> bytes:
    return json.dumps({"provisionDeviceKey": key, "provisionDeviceSecret": secret,
                       "deviceName": name}).encode()


def test_provision_allow_create_new(
    gateway: GatewayProcess, libcoap: str, tmp_path: Path
) -> None:
    """Provisioning a new name returns an access token that posts telemetry for a new device."""
    profile, key, secret = make_profile(gateway, "allow_create_new")
    name = unique("provisioned")
    reply = gateway.coap(libcoap, tmp_path, "post", "api/v1/provision",
                         provision_body(key, secret, name))
    assert reply.code == "2.01", reply.log
    answer = reply.json()
    assert set(answer) == {"credentialsType", "credentialsValue", "status"}
    assert answer["credentialsType"] == "ACCESS_TOKEN" and answer["status"] == "SUCCESS"
    token = answer["credentialsValue"]
    assert isinstance(token, str) and token

    telemetry = gateway.coap(libcoap, tmp_path, "post", f"api/v1/{token}/telemetry", b'{"p":1}')
    assert telemetry.code == "2.01", telemetry.log
    devices = gateway.api_ok("GET", "/api/v1/devices", name=name)["devices"]
    assert [(d["name"], d["profile"]) for d in devices] == [(name, profile)]
    assert latest(gateway, devices[0]["id"])["p"]["value"] == 1


def test_provision_failures(gateway: GatewayProcess, libcoap: str, tmp_path: Path) -> None:
    """A wrong secret is 4.00 NOT_FOUND, the same name twice 4.00 FAILURE, no key 4.00."""
    _, key, secret = make_profile(gateway, "allow_create_new")
    name = unique("twice")
    wrong = gateway.coap(libcoap, tmp_path, "post", "api/v1/provision",
                         provision_body(key, "not-the-secret", name))
    assert wrong.code == "4.00", wrong.log
    assert wrong.json() == {"errorMsg": "Provision data was not found!", "status": "NOT_FOUND"}
    assert gateway.api_ok("GET", "/api/v1/devices", name=name) == {"devices": []}

    first = gateway.coap(libcoap, tmp_path, "post", "api/v1/provision",
                         provision_body(key, secret, name))
    assert first.code == "2.01", first.log
    again = gateway.coap(libcoap, tmp_path, "post", "api/v1/provision",
                         provision_body(key, secret, name))
    assert again.code == "4.00", again.log
    assert again.json() == {"errorMsg": "Failed to provision device!", "status": "FAILURE"}

    keyless = gateway.coap(libcoap, tmp_path, "post", "api/v1/provision",
                           b'{"provisionDeviceSecret":"x","deviceName":"y"}')
    assert keyless.code == "4.00", keyless.log


def test_provision_check_pre_provisioned(
    gateway: GatewayProcess, libcoap: str, tmp_path: Path
) -> None:
    """check_pre_provisioned succeeds for a device created through the API, else NOT_FOUND."""
    profile, key, secret = make_profile(gateway, "check_pre_provisioned")
    device = make_device(gateway, profile=profile)
    reply = gateway.coap(libcoap, tmp_path, "post", "api/v1/provision",
                         provision_body(key, secret, device["name"]))
    assert reply.code == "2.01", reply.log
    answer = reply.json()
    assert (answer["status"], answer["credentialsType"]) == ("SUCCESS", "ACCESS_TOKEN")
    telemetry = gateway.coap(libcoap, tmp_path, "post",
                             f"api/v1/{answer['credentialsValue']}/telemetry", b'{"pre":1}')
    assert telemetry.code == "2.01", telemetry.log
    assert latest(gateway, device["id"])["pre"]["value"] == 1

    unknown = gateway.coap(libcoap, tmp_path, "post", "api/v1/provision",
                           provision_body(key, secret, unique("not-created")))
    assert unknown.code == "4.00", unknown.log
    assert unknown.json()["status"] == "NOT_FOUND"


def test_provision_with_aiocoap(gateway: GatewayProcess, aiocoap: str, libcoap: str,
                                tmp_path: Path) -> None:
    """aiocoap-client provisions a device (2.01 SUCCESS) whose token then works."""
    _, key, secret = make_profile(gateway, "allow_create_new")
    rc, out, err = run_aiocoap(
        aiocoap, "-v", "-m", "POST", "--payload",
        provision_body(key, secret, unique("aio")).decode(), gateway.uri("api/v1/provision"),
    )
    assert rc == 0 and "2.01" in err, (out, err)
    answer = json.loads(out)
    assert (answer["status"], answer["credentialsType"]) == ("SUCCESS", "ACCESS_TOKEN")
    telemetry = gateway.coap(libcoap, tmp_path, "post",
                             f"api/v1/{answer['credentialsValue']}/telemetry", b'{"aio":1}')
    assert telemetry.code == "2.01", telemetry.log


# -- routing and discovery -------------------------------------------------------


def test_unknown_routes(
    gateway: GatewayProcess, libcoap: str, device: dict[str, Any], tmp_path: Path
) -> None:
    """An unknown feature under /api/v1/{token}/ is 4.00; an unknown top-level path 4.04."""
    token = device["access_token"]
    assert gateway.coap(libcoap, tmp_path, "post", f"api/v1/{token}/nope",
                        b'{"a":1}').code == "4.00"
    assert gateway.coap(libcoap, tmp_path, "get", f"api/v1/{token}/nope").code == "4.00"
    assert gateway.coap(libcoap, tmp_path, "get", "nothing").code == "4.04"


def test_well_known_core_lists_provision(
    gateway: GatewayProcess, libcoap: str, tmp_path: Path
) -> None:
    """/.well-known/core lists </api/v1/provision> and no token-bearing path."""
    reply = gateway.coap(libcoap, tmp_path, "get", ".well-known/core")
    assert reply.code == "2.05", reply.log
    links = [link.split(";")[0] for link in reply.payload.split(",")]
    assert "</api/v1/provision>" in links
    assert all(link.count("/") <= 3 for link in links if link.startswith("</api/v1/")), links
