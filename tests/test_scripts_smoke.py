"""
Smoke tests for the benchmark and fuzz scripts (a few seconds, loopback only).
"""

from __future__ import annotations

import select
import sys
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"
sys.path.insert(0, str(SCRIPTS))

pytestmark = pytest.mark.skipif(not hasattr(select, "epoll"), reason="loadgen needs epoll")


@pytest.fixture()
def gateway_server(tmp_path: Path):  # type: ignore[no-untyped-def]
    import bench

    server = {s.name: s for s in bench.SERVERS}["gateway"]
    if not server.available():
        pytest.fail("the gateway engine (gateway.coap.layer) is not importable: run make test")
    log = tmp_path / "gateway.log"
    running = bench.Running(server, extra_args=["--log", str(log)])
    try:
        yield running, log
    finally:
        running.stop()


def test_loadgen_gets_valid_answers_from_the_engine(gateway_server) -> None:  # type: ignore[no-untyped-def]
    """Every GET and POST the generator sends gets the right type, MID, token and code."""
    import loadgen

    running, _log = gateway_server
    for method, payload in (("GET", b""), ("POST", b'{"t":1}')):
        r = loadgen.run(loadgen.LoadSpec(
            port=running.port, method=method, payload=payload, clients=8, window=4,
            duration=0.3, timeout=1.0, max_requests=2000,
        ))
        assert r["responses"] > 0
        assert (r["mismatches"], r["timeouts"], r["unexpected"]) == (0, 0, 0)


def test_fuzz_short_run_leaves_the_engine_alive(gateway_server) -> None:  # type: ignore[no-untyped-def]
    """A short fuzz run (reproducers included) passes every liveness probe and logs no traceback."""
    import fuzz

    running, log = gateway_server
    res = fuzz.run("127.0.0.1", running.port, running.pid, str(log), count=3000,
                   max_seconds=5.0, seed=1, sockets=4, rate=0, path="telemetry", dump=None)
    assert res["probes_failed"] == 0 and res["final_probe_ok"]
    assert res["probes_ok"] >= 3
    assert res["log_counts"]["Traceback"] == 0


def test_gateway_up_forwards_accepted_posts_to_its_sink() -> None:
    """The gateway-up bench server answers ThingsBoard POSTs and its sink receives every event."""
    import bench
    import loadgen

    server = {s.name: s for s in bench.SERVERS}["gateway-up"]
    if not server.available():
        pytest.fail("the gateway (gateway.tap) is not importable: run make test")
    running = bench.Running(server)
    try:
        assert running.sink_port is not None and running.sink_pid is not None
        r = loadgen.run(loadgen.LoadSpec(
            port=running.port, path=server.path, method="POST", payload=b'{"t":1}',
            content_format=50, clients=4, window=4, duration=1.0, timeout=1.0,
            max_requests=200, expect=["2.01", "2.04"],
        ))
        assert r["responses"] > 0
        assert (r["mismatches"], r["timeouts"], r["unexpected"]) == (0, 0, 0)
        # The bench's own bounded drain (at most bench.DRAIN_SECONDS) waits for delivery.
        up = bench._upstream_figures(running, 0, r["responses"], r["duration_s"],
                                     r["requests_per_s"])
        assert up["upstream_drain_s"] is not None
        assert up["upstream_unique"] >= r["responses"]
        assert (up["upstream_duplicates"], up["upstream_gaps"]) == (0, 0)
    finally:
        running.stop()
    assert running.proc.returncode is not None


def test_certs_script_makes_a_usable_pki(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """certs.py writes a CA, a server certificate the gateway loads, and device certificates."""
    import certs

    from gateway.dtls.context import ServerCredentials

    assert certs.main([str(tmp_path), "--device", "d1", "--self-signed", "d2",
                       "--key-password", "pw"]) == 0
    loaded = ServerCredentials.load(str(tmp_path / "server.pem"), str(tmp_path / "server.key"),
                                    "pw")
    assert len(loaded.chain) == 2
    printed = capsys.readouterr().out
    assert "d1 sha256 " in printed and "d2 sha256 " in printed
    assert oct((tmp_path / "d1.key").stat().st_mode & 0o777) == "0o600"


def test_dtls_flood_short_run_keeps_no_state(tmp_path: Path) -> None:
    """A short spoofed-ClientHello flood is answered statelessly while a real device posts."""
    import json

    import dtls_flood

    report_file = tmp_path / "flood.json"
    assert dtls_flood.main(["--count", "3000", "--rate", "3000", "--max-seconds", "3",
                            "--settle", "6", "--json", str(report_file)]) == 0
    report = json.loads(report_file.read_text())
    assert report["gateway_hello_verify_requests"] >= 2000
    assert report["gateway_handshakes_failed"] == 0
    assert report["sessions_after"]["handshaking"] == 0
    assert report["real_devices"]["during_flood"]["posts_ok"] >= 1


@pytest.mark.parametrize(
    ("figure", "args", "count_key", "expected"),
    [
        ("observe", ["--devices", "30"], "observations", 30),
        ("queue", ["--devices", "20"], "queued", 200),
        ("latency", ["--count", "5", "--warmup", "1"], "count", 5),
    ],
)
def test_rpc_figures_small_runs(figure: str, args: list[str], count_key: str,
                                expected: int) -> None:
    """Each figure of rpc_figures.py runs bounded and reports what it measured."""
    import json
    import subprocess

    done = subprocess.run(
        [sys.executable, str(SCRIPTS / "rpc_figures.py"), figure, *args],
        capture_output=True, timeout=120, check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    assert json.loads(done.stdout)[count_key] == expected


@pytest.mark.parametrize("route", ["tb", "drogue"])
def test_path_cpu_measures_every_request_by_thread(tmp_path: Path, route: str) -> None:
    """path_cpu.py answers every request in process and reports CPU per request by thread."""
    import json
    import subprocess

    out = tmp_path / "cpu.json"
    done = subprocess.run(
        [sys.executable, str(SCRIPTS / "path_cpu.py"), "--requests", "300", "--warmup", "50",
         "--route", route, "--json", str(out)],
        capture_output=True, timeout=120, check=False,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(out.read_text())
    assert report["requests"] == 300
    assert report["threads_us_per_req"]["MainThread"] > 0
    assert "sqlite-writer" in report["threads_us_per_req"]


def test_drogue_parked_answers_every_parked_publish() -> None:
    """drogue_parked.py parks each publish (empty ACK) and then answers each with its command."""
    import subprocess

    done = subprocess.run(
        [sys.executable, str(SCRIPTS / "drogue_parked.py"), "--parked", "50",
         "--max-seconds", "60"],
        capture_output=True, timeout=120, check=False,
    )
    assert done.returncode == 0, done.stderr
    assert b"50 publishes parked" in done.stdout and b"50 answered 2.05" in done.stdout


def test_ota_figures_short_runs() -> None:
    """The OTA figures run end to end on a small file: both servers answer, bodies match."""
    import argparse

    import ota_figures

    speed = ota_figures.throughput(argparse.Namespace(size=8192, blocks=[1024]))
    (row,) = speed["rows"]
    assert row["block"] == 1024 and row["gateway"] > 0 and row["aiocoap-fileserver"] > 0
    held = ota_figures.memory(argparse.Namespace(devices=10, size=16384, blocks=2))
    assert held["rss_peak_kib"] >= held["rss_before_kib"] > 0


def test_takeover_measures_a_round() -> None:
    """takeover.py kills a node holding every partition and times the survivor's takeover."""
    import json
    import subprocess

    done = subprocess.run(
        [sys.executable, str(SCRIPTS / "takeover.py"), "--rounds", "1", "--events", "64"],
        capture_output=True, timeout=120, check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    report = json.loads(done.stdout)
    assert report["events"] == 64 and len(report["takeover_ms"]) == 1
    assert 0 < report["max_ms"] < 30_000


def test_commit_latency_measures_every_backend() -> None:
    """commit_latency.py times commits on SQLite (both durabilities) and PostgreSQL."""
    import json
    import subprocess

    done = subprocess.run(
        [sys.executable, str(SCRIPTS / "commit_latency.py"), "--commits", "40"],
        capture_output=True, timeout=120, check=False,
    )
    assert done.returncode == 0, done.stderr.decode()
    report = json.loads(done.stdout)
    assert len(report) == 6
    assert all(row["p50_ms"] > 0 and row["commits_per_s"] > 0 for row in report.values())
