"""
Nothing acknowledged is lost: telemetry posted continuously by a real CoAP
client to the real gateway, which is SIGKILLed mid-stream and restarted on
the same data directory; every value answered 2.01 reaches the upstream
(scripts/upstream_sink.py), duplicates allowed, each recognisable by its id.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.interop.gateway_process import REPO, VENV_BIN, GatewayProcess, clean_environ
from tests.interop.watch import OutputWatcher


def _sink(workdir: Path, record: Path) -> tuple[subprocess.Popen[bytes], int]:
    proc = subprocess.Popen(
        [sys.executable, str(REPO / "scripts" / "upstream_sink.py"), "--port", "0",
         "--record", str(record), "--report", "60"],
        env=clean_environ(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    assert proc.stdout is not None
    watcher = OutputWatcher(proc.stdout, workdir / "sink.log")
    line = watcher.wait_until(lambda text: '"listening"' in text and text, 10, "sink did not start")
    port = json.loads(str(line).strip().splitlines()[0])["listening"]
    return proc, port


def _received(record: Path) -> list[dict[str, object]]:
    if not record.exists():
        return []
    return [json.loads(line) for line in record.read_text().splitlines() if line.strip()]


def test_sigkill_loses_no_acknowledged_event(tmp_path: Path) -> None:
    """Every telemetry value whose 2.01 the client got before a SIGKILL arrives upstream."""
    client = shutil.which("coap-client-notls")
    if client is None or not (VENV_BIN / "twistd").exists():
        pytest.skip("needs coap-client-notls and the venv's twistd")
    record = tmp_path / "received.jsonl"
    sink, port = _sink(tmp_path, record)
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

        poster = threading.Thread(target=post)
        poster.start()
        deadline = time.monotonic() + 10
        while len(acknowledged) < 40 and time.monotonic() < deadline:
            time.sleep(0.05)
        gateway.proc.kill()
        gateway.proc.wait(timeout=10)
        stop.set()
        poster.join(timeout=30)
        assert len(acknowledged) >= 40
        gateway = GatewayProcess.start(tmp_path, environ=environ)
        wanted = set(acknowledged)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            events = _received(record)
            got = {e["data"][0]["values"]["n"] for e in events}  # type: ignore[index]
            if wanted <= got:
                break
            time.sleep(0.1)
        assert wanted - got == set()
        # At least once: a repeat is the same event (same id, same sequence).
        by_id: dict[object, object] = {}
        for e in events:
            assert by_id.setdefault(e["id"], e["sequence"]) == e["sequence"]
            assert e["deviceid"] == device["id"]
    finally:
        gateway.stop()
        sink.terminate()
        sink.wait(timeout=10)
