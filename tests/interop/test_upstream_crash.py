"""
Nothing acknowledged is lost: telemetry posted continuously by a real CoAP
client to the real gateway, which is SIGKILLed mid-stream and restarted on
the same data directory; every value answered 2.01 reaches the upstream
(scripts/upstream_sink.py), duplicates allowed, each recognisable by its id.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

from tests.interop.gateway_process import REPO, GatewayProcess, clean_environ
from tests.interop.peers import find_peer
from tests.interop.watch import OutputWatcher


def _sink(
    workdir: Path, record: Path, *options: str
) -> tuple[subprocess.Popen[bytes], OutputWatcher, int]:
    proc = subprocess.Popen(
        [sys.executable, str(REPO / "scripts" / "upstream_sink.py"), "--port", "0",
         "--record", str(record), "--report", "60", *options],
        env=clean_environ(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    assert proc.stdout is not None
    watcher = OutputWatcher(proc.stdout, workdir / "sink.log")
    line = watcher.wait_until(lambda text: '"listening"' in text and text, 10, "sink did not start")
    port = json.loads(str(line).strip().splitlines()[0])["listening"]
    return proc, watcher, port


def _received(record: Path) -> list[dict[str, object]]:
    if not record.exists():
        return []
    return [json.loads(line) for line in record.read_text().splitlines() if line.strip()]


def test_sigkill_loses_no_acknowledged_event(tmp_path: Path) -> None:
    """Every telemetry value whose 2.01 the client got before a SIGKILL arrives upstream."""
    client = find_peer("coap-client-notls")
    record = tmp_path / "received.jsonl"
    sink, sink_output, port = _sink(tmp_path, record)
    environ = {
        "GATEWAY_UPSTREAM_URL": f"http://127.0.0.1:{port}/events",
        "GATEWAY_UPSTREAM_FLUSH_INTERVAL": "0.05",
    }
    gateway = GatewayProcess.start(tmp_path, environ=environ)
    try:
        device = gateway.api_ok(
            "POST", "/api/v1/devices",
            {"name": "crash", "credentials": {"type": "access_token", "token": "CRASH1"}},
        )
        acknowledged: list[int] = []
        enough = threading.Event()
        stop = threading.Event()

        def post() -> None:
            n = 0
            while not stop.is_set():
                n += 1
                try:
                    reply = gateway.coap(
                        client, tmp_path, "post", "api/v1/CRASH1/telemetry",
                        json.dumps({"n": n}).encode(), extra=["-B", "3"],
                    )
                except AssertionError:  # no answer: the gateway is gone
                    continue
                if reply.code == "2.01":
                    acknowledged.append(n)
                    if len(acknowledged) >= 40:
                        enough.set()

        poster = threading.Thread(target=post)
        poster.start()
        enough.wait(10)
        gateway.proc.kill()
        gateway.proc.wait(timeout=10)
        stop.set()
        poster.join(timeout=30)
        assert len(acknowledged) >= 40
        gateway = GatewayProcess.start(tmp_path, environ=environ)
        wanted = set(acknowledged)

        def values() -> set[object]:
            return {e["data"][0]["values"]["n"] for e in _received(record)}  # type: ignore[index]

        # Wakes on each batch the sink records (its "recorded" lines).
        try:
            sink_output.wait_until(lambda _: wanted <= values(), 20, "not all events arrived")
        except TimeoutError:
            pass
        events = _received(record)
        assert wanted - values() == set()
        # At least once: a repeat is the same event (same id, same sequence).
        by_id: dict[object, object] = {}
        for e in events:
            assert by_id.setdefault(e["id"], e["sequence"]) == e["sequence"]
            assert e["deviceid"] == device["id"]
    finally:
        gateway.stop()
        sink.terminate()
        sink.wait(timeout=10)
