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
