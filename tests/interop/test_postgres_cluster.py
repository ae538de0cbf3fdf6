"""
Two real gateway nodes on different loopback addresses sharing one
PostgreSQL database act as one gateway: a device observing on node B gets
the shared attribute and the two-way RPC an operator sends through node
A's API, whose call returns the device's reply; a token replaced on A is
refused on B within a second; telemetry posted to both nodes reaches one
upstream sink, each device's in order, nothing missing.
"""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path
from typing import Any, Callable

from tests.interop.gateway_process import RESPONSE_LINE, GatewayProcess
from tests.interop.peers import find_peer
from tests.interop.test_rpc import Observer
from tests.interop.test_upstream_crash import _received, _sink
from tests.interop.watch import OutputWatcher

TELEMETRY = "io.coap-gateway.telemetry.v1"


def _until(node: GatewayProcess, check: Callable[[], bool], seconds: float, what: str) -> float:
    """
    Wait until C{check} holds, looking again at each line C{node} logs (at
    debug level it logs each change it follows from the other node and each
    heartbeat); how long that took (fails after C{seconds}).
    """
    start = time.monotonic()
    node.output.wait_until(lambda _: check(), seconds, what)
    return time.monotonic() - start


def _device(node: GatewayProcess, name: str, token: str) -> str:
    body = {"name": name, "credentials": {"type": "access_token", "token": token}}
    return str(node.api_ok("POST", "/api/v1/devices", body)["id"])


def test_two_nodes_act_as_one_gateway(tmp_path: Path, postgres_dsn: str) -> None:
    """Attributes and RPCs made on A reach a device on B, a revoked token is refused on B,
    and telemetry posted to both nodes arrives upstream in per-device order, nothing lost."""
    client = find_peer("coap-client-notls")
    record = tmp_path / "received.jsonl"
    sink, sink_output, port = _sink(tmp_path, record)
    environ = {
        "GATEWAY_STORAGE_BACKEND": "postgresql",
        "GATEWAY_STORAGE_DSN": postgres_dsn,
        "GATEWAY_UPSTREAM_URL": f"http://127.0.0.1:{port}/events",
        "GATEWAY_UPSTREAM_FLUSH_INTERVAL": "0.05",
        "GATEWAY_CLUSTER_HEARTBEAT_INTERVAL": "0.2",
        # The lines _until wakes on.
        "GATEWAY_LOG_LEVEL": "debug",
    }
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = GatewayProcess.start(
        tmp_path / "a", environ={**environ, "GATEWAY_CLUSTER_NODE_ID": "node-a"}, host="127.0.0.2"
    )
    b = GatewayProcess.start(
        tmp_path / "b", environ={**environ, "GATEWAY_CLUSTER_NODE_ID": "node-b"}, host="127.0.0.3"
    )
    watchers: list[subprocess.Popen[bytes]] = []
    try:
        one = _device(a, "one", "ONE1")
        _until(b, lambda: b.api("GET", f"/api/v1/devices/{one}").status == 200, 1.0,
               "node B does not know the device made on A")

        # The device observes its shared attributes and its RPCs on node B.
        attributes = subprocess.Popen(
            ["stdbuf", "-oL", client, "-v", "6", "-s", "20", "-m", "get",
             "-o", str(tmp_path / "attributes.out"), b.uri("api/v1/ONE1/attributes")],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )
        watchers.append(attributes)
        assert attributes.stdout is not None
        attribute_log = OutputWatcher(attributes.stdout)

        def pushed(payload: str) -> Callable[[str], bool]:
            return lambda text: any(m["payload"] == payload for m in RESPONSE_LINE.finditer(text))

        attribute_log.wait_until(pushed("{}"), 10, "no first answer to the observation")
        observer = Observer(b, client, "ONE1")
        try:
            a.api_ok("POST", f"/api/v1/devices/{one}/attributes/shared", {"led": 1})
            attribute_log.wait_until(pushed('{"led":1}'), 5, "the attribute set on A")

            answer: list[Any] = []
            call = threading.Thread(target=lambda: answer.append(a.api(
                "POST", f"/api/v1/devices/{one}/rpc",
                {"method": "setLed", "params": {"on": True}, "timeout": 8000},
            )))
            call.start()
            rpc = observer.rpc("setLed")
            assert rpc["params"] == {"on": True}
            reply = b.coap(client, tmp_path, "post", f"api/v1/ONE1/rpc/{rpc['id']}",
                           b'{"led":"on"}')
            assert reply.code == "2.01", reply.log
            call.join(timeout=15)
            assert answer and (answer[0].status, answer[0].body) == (200, {"led": "on"})
        finally:
            observer.stop()

        # A token replaced through A is refused on B within a second.
        a.api_ok("PUT", f"/api/v1/devices/{one}/credentials",
                 {"type": "access_token", "token": "ONE2"})
        took = _until(
            b, lambda: b.coap(client, tmp_path, "get", "api/v1/ONE1/attributes").code == "4.01",
            1.0, "node B still takes the replaced token",
        )
        print(f"node B refused the token replaced on A after {took:.3f} s")
        assert b.coap(client, tmp_path, "get", "api/v1/ONE2/attributes").code == "2.05"

        # Telemetry of two devices, posted to both nodes in turn.
        two = _device(b, "two", "TWO1")
        _until(a, lambda: a.api("GET", f"/api/v1/devices/{two}").status == 200, 1.0,
               "node A does not know the device made on B")
        posted: dict[str, list[int]] = {one: [], two: []}
        through: dict[int, str] = {}
        for n in range(1, 21):
            for device_id, token in ((one, "ONE2"), (two, "TWO1")):
                node = a if n % 2 else b
                reply = node.coap(client, tmp_path, "post", f"api/v1/{token}/telemetry",
                                  f'{{"n": {n}}}'.encode())
                assert reply.code == "2.01", reply.log
                posted[device_id].append(n)
                through[n] = "node-a" if node is a else "node-b"

        def arrived() -> dict[str, list[int]]:
            seen: dict[str, list[int]] = {one: [], two: []}
            ids: set[object] = set()
            for e in _received(record):
                if e["type"] != TELEMETRY or e["id"] in ids:
                    continue  # at least once: a repeat is the same event
                ids.add(e["id"])
                seen[str(e["deviceid"])].append(e["data"][0]["values"]["n"])  # type: ignore[index]
            return seen

        try:
            sink_output.wait_until(lambda _: arrived() == posted, 20, "not all telemetry arrived")
        except TimeoutError:
            pass
        assert arrived() == posted
        # Each event names the node that took the uplink in its source.
        for e in _received(record):
            if e["type"] == TELEMETRY:
                n = e["data"][0]["values"]["n"]  # type: ignore[index]
                assert str(e["source"]).startswith(f"/coap-gateway/{through[n]}/")

        # A PSM device heard by B is known on A to be awake, from B's uplink
        # (A last heard it while it did not save power: asleep since it does).
        a.api_ok("PATCH", f"/api/v1/devices/{two}",
                 {"power_mode": "psm", "psm_activity_timer": 60000})

        def reach(node: GatewayProcess) -> Any:
            return node.api_ok("GET", f"/api/v1/devices/{two}/reachability")

        _until(b, lambda: reach(b)["power_mode"] == "psm", 1.0,
               "node B does not know the device saves power")
        assert b.coap(client, tmp_path, "post", "api/v1/TWO1/telemetry", b'{"m": 1}').code == "2.01"

        # Within the recorder's second, and the same uplink B heard.
        _until(a, lambda: reach(a)["state"] == "awake", 5.0, "node A never heard of the uplink")
        assert abs(reach(a)["last_heard"] - reach(b)["last_heard"]) <= 1  # ms, rounded

        # Both nodes are alive and share the outbox partitions out.
        def shared_out() -> bool:
            nodes = b.api_ok("GET", "/api/v1/cluster")["nodes"]
            parts = [set(n["partitions"]) for n in nodes]
            return (
                [(n["node_id"], n["alive"]) for n in nodes]
                == [("node-a", True), ("node-b", True)]
                and not parts[0] & parts[1] and len(parts[0] | parts[1]) == 64
                and all(parts)
            )

        _until(b, shared_out, 10, "the nodes do not share the partitions out")
        for node in (a, b):
            assert node.proc.poll() is None
            assert "Traceback" not in node.log()
    finally:
        for proc in watchers:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
        a.stop()
        b.stop()
        sink.terminate()
        sink.wait(timeout=10)
