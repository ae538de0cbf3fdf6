#!/usr/bin/env python3
"""
Commit latency of each store backend: the time from handing the store a
ThingsBoard telemetry unit of work (the telemetry and its outbox event) to
its Deferred firing, one commit at a time (no group commit to share), then
with 16 in flight as the bench's window has.

    .venv/bin/python scripts/commit_latency.py --commits 2000

SQLite in a temporary directory in both durability modes, and PostgreSQL on
a throw-away cluster (the tests' ``tests.pgcluster``: a Unix socket, fsync
and synchronous_commit off) when its binaries are installed (else the run
fails with the install hint).  Bounded by ``--commits``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))


def _unit(device_id: str, n: int) -> Any:
    from gateway.store.unit import AppendEvent, AppendTelemetry, UnitOfWork

    body = '{"t":21.5,"h":40}'
    return UnitOfWork.of(
        AppendTelemetry(device_id, [(n, {"t": 21.5, "h": 40})]),
        AppendEvent(device_id, f"{device_id}-{n}", "io.coap-gateway.telemetry.v1", n, n, body),
    )


async def _measure(store: Any, commits: int, window: int) -> dict[str, float]:
    from twisted.internet.defer import DeferredList

    from gateway.domain.model import Device, Profile

    device_id = f"bench-{window}"
    await store.put_profile(Profile("default"))
    await store.create_device(Device(device_id, device_id))
    times: list[float] = []
    started = time.perf_counter()
    n = 0
    while n < commits:
        batch = []
        for _ in range(min(window, commits - n)):
            t0 = time.perf_counter()
            d = store.commit(_unit(device_id, n))
            d.addCallback(lambda _, t0=t0: times.append(time.perf_counter() - t0))
            batch.append(d)
            n += 1
        await DeferredList(batch, fireOnOneErrback=True, consumeErrors=True)
    wall = time.perf_counter() - started
    ms = sorted(t * 1000 for t in times)
    return {
        "p50_ms": round(statistics.median(ms), 3),
        "p99_ms": round(ms[int(len(ms) * 0.99) - 1], 3),
        "commits_per_s": round(commits / wall),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].strip())
    p.add_argument("--commits", type=int, default=2000)
    a = p.parse_args(argv)

    from twisted.internet import reactor
    from twisted.internet.defer import ensureDeferred

    from gateway.store.backends import open_store
    from tests.pgcluster import INSTALL_HINT, Cluster, find_bindir

    bindir = find_bindir()
    if bindir is None:
        print(f"commit_latency: {INSTALL_HINT}", file=sys.stderr)
        return 1
    cluster = Cluster(bindir)
    cluster.start()
    report: dict[str, Any] = {}

    async def run() -> None:
        stores = [
            ("sqlite power-loss", "sqlite", "power-loss"),
            ("sqlite process-crash", "sqlite", "process-crash"),
            ("postgresql", "postgresql", "power-loss"),
        ]
        for name, backend, durability in stores:
            path = cluster.dsn if backend == "postgresql" else str(
                Path(tempfile.mkdtemp(prefix="commit-latency-")) / "gateway.db")
            for window in (1, 16):
                store = await open_store(reactor, backend, path, durability)
                try:
                    report[f"{name}, {window} in flight"] = await _measure(
                        store, a.commits, window)
                finally:
                    await store.close()

    def done(result: Any) -> None:
        if hasattr(result, "getErrorMessage"):
            report["error"] = result.getErrorMessage()
        reactor.stop()

    ensureDeferred(run()).addBoth(done)
    try:
        reactor.run()
    finally:
        cluster.stop()
    if "error" in report:
        print(f"commit_latency: {report['error']}", file=sys.stderr)
        return 1
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
