"""
Failover between two real gateway nodes on one PostgreSQL database: a
device posts telemetry through node A, A is SIGKILLed mid-stream, and node
B takes A's outbox partitions over (A's session, and its advisory locks,
end with it), so every value A answered 2.01 reaches the upstream.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from tests.interop.gateway_process import GatewayProcess
from tests.interop.peers import find_peer
from tests.interop.test_upstream_crash import _received, _sink


def test_surviving_node_forwards_what_a_killed_node_acknowledged(
    tmp_path: Path, postgres_dsn: str
) -> None:
    """Every value node A acknowledged before its SIGKILL reaches the upstream through node B."""
    client = find_peer("coap-client-notls")
    record = tmp_path / "received.jsonl"
    # The first POST is answered 503 "retry after 60 s": node A holds every
    # event from then on, and node B, started later, finds every partition taken.
    sink, sink_output, port = _sink(tmp_path, record, "--fail", "503:1", "--retry-after", "60")
    environ = {
        "GATEWAY_STORAGE_BACKEND": "postgresql",
        "GATEWAY_STORAGE_DSN": postgres_dsn,
        "GATEWAY_UPSTREAM_URL": f"http://127.0.0.1:{port}/events",
        "GATEWAY_UPSTREAM_FLUSH_INTERVAL": "0.05",
    }
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    a = GatewayProcess.start(tmp_path / "a", environ=environ)
    b = None
    try:
        device = a.api_ok(
            "POST", "/api/v1/devices",
            {"name": "failover", "credentials": {"type": "access_token", "token": "FAIL1"}},
        )
        acknowledged: list[int] = []
        enough = threading.Event()
        stop = threading.Event()

        def post() -> None:
            n = 0
            while not stop.is_set():
                n += 1
                try:
                    reply = a.coap(
                        client, tmp_path, "post", "api/v1/FAIL1/telemetry",
                        f'{{"n": {n}}}'.encode(), extra=["-B", "3"],
                    )
                except AssertionError:  # no answer: node A is gone
                    continue
                if reply.code == "2.01":
                    acknowledged.append(n)
                    if len(acknowledged) >= 30:
                        enough.set()

        poster = threading.Thread(target=post)
        poster.start()
        enough.wait(15)
        b = GatewayProcess.start(tmp_path / "b", environ=environ)
        assert _received(record) == []  # nothing forwarded yet: A holds it all
        a.proc.kill()
        a.proc.wait(timeout=10)
        killed = time.monotonic()
        stop.set()
        poster.join(timeout=30)
        assert len(acknowledged) >= 30
        wanted = set(acknowledged)

        def values() -> set[object]:
            return {e["data"][0]["values"]["n"] for e in _received(record)}  # type: ignore[index]

        try:
            sink_output.wait_until(lambda _: wanted <= values(), 20, "not all events arrived")
        except TimeoutError:
            pass
        print(f"node B delivered A's events {time.monotonic() - killed:.2f} s after the kill")
        assert wanted - values() == set()
        # At least once, and in the device's order: a repeat is the same event.
        by_id: dict[object, object] = {}
        for e in _received(record):
            assert by_id.setdefault(e["id"], e["sequence"]) == e["sequence"]
            assert e["deviceid"] == device["id"]
    finally:
        a.stop()
        if b is not None:
            b.stop()
        sink.terminate()
        sink.wait(timeout=10)
