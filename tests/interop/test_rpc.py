"""
ThingsBoard RPC end to end: the real gateway (C{twistd -n coap-gateway})
with devices played by C{coap-client-notls}, C{aiocoap-client} and
C{scripts/psm_device.py}, operators by C{gatewayctl}, and a real HTTP
server as the application client-side RPCs are forwarded to.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.interop.gateway_process import (
    CLIENT_TIMEOUT,
    REPO,
    RESPONSE_LINE,
    VENV_BIN,
    GatewayProcess,
    clean_environ,
)
from tests.interop.test_aiocoap import OBSERVER, _Lines
from tests.interop.test_thingsboard_gateway import make_device, unique
from tests.interop.watch import OutputWatcher

#: The PSM device's activity timer, in ms (the gateway's and the device's).
PSM_TIMER = 1500


class _App(BaseHTTPRequestHandler):
    """The application: "echo" answers {"echo": params}; anything else is a 500."""

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        call = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if call["method"] == "echo":
            body = json.dumps({"echo": call["params"], "device": call["device"]["name"]})
            self.send_response(200)
        else:
            body = "no such method"
            self.send_response(500)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def app() -> Iterator[str]:
    """A real HTTP server on a loopback port: the URL client-side RPCs go to."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _App)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/rpc"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory, app: str) -> Iterator[GatewayProcess]:
    config = f'[rpc]\nupstream_url = "{app}"\ntimeout = 3.0\n'
    gw = GatewayProcess.start(tmp_path_factory.mktemp("rpcgateway"), config)
    try:
        yield gw
    finally:
        gw.stop()
    assert "Traceback" not in gw.log() and "Unhandled" not in gw.log(), gw.log()


def received(check: Callable[[str], bool]) -> Callable[[str], Any]:
    """A wait_until test: the first logged 2.05 payload that passes C{check}."""

    def found(text: str) -> Any:
        for m in RESPONSE_LINE.finditer(text):
            if m["code"] == "2.05" and m["payload"] and check(m["payload"]):
                return m["payload"]
        return None

    return found


class Observer:
    """C{coap-client-notls} observing a device's /rpc, its log watched."""

    def __init__(self, gw: GatewayProcess, libcoap: str, token: str, seconds: int = 20) -> None:
        # stdbuf: libcoap's log is stdio, fully buffered on a pipe otherwise.
        self.proc = subprocess.Popen(
            ["stdbuf", "-oL", libcoap, "-v", "6", "-s", str(seconds), "-m", "get",
             gw.uri(f"api/v1/{token}/rpc")],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )
        assert self.proc.stdout is not None
        self.log = OutputWatcher(self.proc.stdout)
        self.log.wait_until(
            lambda text: any(m["code"] == "2.03" for m in RESPONSE_LINE.finditer(text)),
            10, "no 2.03 answer to the observation",
        )

    def rpc(self, method: str) -> dict[str, Any]:
        """The notification carrying an RPC of C{method}."""
        payload = self.log.wait_until(
            received(lambda p: json.loads(p).get("method") == method), 10,
            f"no notification of {method}",
        )
        return json.loads(payload)  # type: ignore[no-any-return]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()


def gatewayctl(gw: GatewayProcess, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [str(VENV_BIN / "gatewayctl"), "--url", gw.api_url, "--key", gw.api_key, *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=clean_environ(),
    )


def finished(proc: subprocess.Popen[bytes]) -> Any:
    out, err = proc.communicate(timeout=CLIENT_TIMEOUT)
    assert proc.returncode == 0, err
    return json.loads(out)


def test_two_way_rpc_reply_is_gatewayctl_output(
    gateway: GatewayProcess, coap_client: str, tmp_path: Path
) -> None:
    """A device observing /rpc gets the RPC; its reply is what `gatewayctl rpc send` prints."""
    device = make_device(gateway)
    observer = Observer(gateway, coap_client, device["access_token"])
    try:
        ctl = gatewayctl(gateway, "rpc", "send", device["name"], "setLed",
                         "--params", '{"on":true}', "--timeout", "8000")
        rpc = observer.rpc("setLed")
        assert rpc["params"] == {"on": True} and isinstance(rpc["id"], int)
        reply = gateway.coap(coap_client, tmp_path, "post",
                             f"api/v1/{device['access_token']}/rpc/{rpc['id']}",
                             b'{"led":"on"}')
        assert reply.code == "2.01", reply.log
        assert finished(ctl) == {"led": "on"}
    finally:
        observer.stop()
    shown = gateway.api_ok("GET", f"/api/v1/devices/{device['id']}/rpc/{rpc['id']}")
    assert (shown["state"], shown["response"]) == ("SUCCESSFUL", {"led": "on"})


def test_one_way_rpc_is_successful_once_acknowledged(
    gateway: GatewayProcess, coap_client: str
) -> None:
    """`gatewayctl rpc send --oneway` prints the RPC, SUCCESSFUL once the device ACKed it."""
    device = make_device(gateway)
    observer = Observer(gateway, coap_client, device["access_token"])
    try:
        result = finished(gatewayctl(gateway, "rpc", "send", device["name"], "reboot",
                                     "--oneway"))
        assert (result["state"], result["method"]) == ("SUCCESSFUL", "reboot")
        assert observer.rpc("reboot")["id"] == result["id"]
    finally:
        observer.stop()


def test_rpc_sent_while_nobody_observes_goes_on_subscribing(
    gateway: GatewayProcess, coap_client: str
) -> None:
    """An RPC queued with nobody observing is notified as soon as the device subscribes."""
    device = make_device(gateway)
    queued = gateway.api_ok("POST", f"/api/v1/devices/{device['id']}/rpc",
                            {"method": "later", "oneway": True}, wait="false")
    assert queued["state"] == "QUEUED"
    observer = Observer(gateway, coap_client, device["access_token"])
    try:
        assert observer.rpc("later")["id"] == queued["id"]
    finally:
        observer.stop()


def test_client_side_rpcs(gateway: GatewayProcess, coap_client: str, tmp_path: Path) -> None:
    """getCurrentTime is answered by the gateway; echo by the application; errors as codes."""
    token = make_device(gateway, name=unique("client"))["access_token"]
    path = f"api/v1/{token}/rpc"
    now = gateway.coap(coap_client, tmp_path, "post", path, b'{"method":"getCurrentTime"}')
    assert now.code == "2.05", now.log
    assert isinstance(now.json()["currentTime"], int)
    echo = gateway.coap(coap_client, tmp_path, "post", path,
                        b'{"method":"echo","params":{"x":1}}')
    assert (echo.code, echo.json()["echo"]) == ("2.05", {"x": 1}), echo.log
    refused = gateway.coap(coap_client, tmp_path, "post", path, b'{"method":"nope"}')
    assert refused.code == "5.04" and "HTTP 500" in refused.payload, refused.log
    assert gateway.coap(coap_client, tmp_path, "post", path, b'{"params":1}').code == "4.00"


def test_rpc_error_codes(gateway: GatewayProcess, coap_client: str, tmp_path: Path) -> None:
    """GET /rpc without Observe, a reply that is no object or to an unknown id, a bad token."""
    token = make_device(gateway)["access_token"]
    assert gateway.coap(coap_client, tmp_path, "get", f"api/v1/{token}/rpc").code == "4.00"
    assert gateway.coap(coap_client, tmp_path, "post", f"api/v1/{token}/rpc/1",
                        b"[1]").code == "4.00"
    assert gateway.coap(coap_client, tmp_path, "post", f"api/v1/{token}/rpc/99999",
                        b"{}").code == "4.04"
    assert gateway.coap(coap_client, tmp_path, "post", "api/v1/NO_SUCH_TOKEN/rpc",
                        b'{"method":"getCurrentTime"}').code == "4.01"


def test_aiocoap_observer_gets_the_rpc(
    gateway: GatewayProcess, coap_client: str, aiocoap_client: str, tmp_path: Path
) -> None:
    """An aiocoap observer (its library, in a child process) gets a two-way RPC; the reply lands."""
    device = make_device(gateway)
    token = device["access_token"]
    # aiocoap-client --observe forgets its observation at the first answer
    # (see test_aiocoap): the library API observes instead.
    proc = subprocess.Popen(
        [sys.executable, "-c", OBSERVER, gateway.uri(f"api/v1/{token}/rpc"), "1"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    lines = _Lines(proc)
    try:
        assert lines.next() == "response"  # 2.03 Valid, no payload
        ctl = gatewayctl(gateway, "rpc", "send", device["name"], "aio", "--params", "[1,2]")
        notification = lines.next()
        assert notification.startswith("notification "), notification
        rpc = json.loads(notification.split(" ", 1)[1])
        assert (rpc["method"], rpc["params"]) == ("aio", [1, 2])
        reply = gateway.coap(coap_client, tmp_path, "post", f"api/v1/{token}/rpc/{rpc['id']}",
                             b'{"sum":3}')
        assert reply.code == "2.01", reply.log
        assert finished(ctl) == {"sum": 3}
        assert lines.next() == "cancelled"
    finally:
        proc.kill()
        proc.wait()


def test_psm_device_gets_queued_rpcs_in_its_next_window_only(gateway: GatewayProcess) -> None:
    """RPCs queued while a PSM device sleeps reach it in its next window, in order, none later."""
    device = make_device(gateway, power_mode="psm", psm_activity_timer=PSM_TIMER)
    proc = subprocess.Popen(
        [sys.executable, str(REPO / "scripts" / "psm_device.py"),
         "--port", str(gateway.coap_port), "--token", device["access_token"],
         "--awake", str(PSM_TIMER / 1000), "--asleep", "2", "--cycles", "3", "--reply"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=REPO,
    )
    assert proc.stdout is not None
    log = OutputWatcher(proc.stdout)

    def events() -> list[dict[str, Any]]:
        return [json.loads(x) for x in log.text.splitlines() if x.startswith("{")]

    def asleep(cycle: int) -> Callable[[str], bool]:
        return lambda _: any(e["event"] == "asleep" and e["cycle"] == cycle for e in events())

    queued: dict[int, list[int]] = {}
    try:
        for cycle in (0, 1):
            log.wait_until(asleep(cycle), 15, f"the device did not sleep in cycle {cycle}")
            queued[cycle + 1] = [
                gateway.api_ok("POST", f"/api/v1/devices/{device['id']}/rpc",
                               {"method": f"m{cycle}-{i}", "oneway": i % 2 == 0},
                               wait="false")["id"]
                for i in range(4)
            ]
        log.wait_until(lambda _: any(e["event"] == "done" for e in events()), 20, "not done")
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
    got = events()
    assert [e for e in got if e["event"] in ("late", "error")] == [], got
    for cycle, ids in queued.items():
        assert [e["id"] for e in got if e["event"] == "rpc" and e["cycle"] == cycle] == ids, got
    rpcs = gateway.api_ok("GET", f"/api/v1/devices/{device['id']}/rpc")["rpcs"]
    assert {r["state"] for r in rpcs} == {"SUCCESSFUL"}, rpcs
