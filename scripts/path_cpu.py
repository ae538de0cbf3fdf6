#!/usr/bin/env python3
"""
CPU per request of the ThingsBoard telemetry path, in process, by thread.

The whole gateway (``bench_servers.py gateway-tb``'s configuration) runs in
this process; pre-encoded CON POSTs to ``/api/v1/BENCH_TOKEN/telemetry`` are
handed straight to its UDP protocol, a window of them at a time, and its
answers are counted instead of sent.  With no sockets and no load generator
on the request side, what is left is the gateway's own work: the main
thread (engine, dialect, service, event building, forwarder) apart from the
SQLite writer thread, and the garbage collector's share.  Use it to see
where a change moves CPU; ``make bench`` gives the figures over real UDP.

    .venv/bin/python scripts/path_cpu.py --requests 30000
    .venv/bin/python scripts/path_cpu.py --durability power-loss --upstream
    .venv/bin/python scripts/path_cpu.py --profile out.prof    # cProfile, thread CPU time

Loopback only (the upstream sink, with ``--upstream``); bounded by
``--requests`` and ``--max-seconds``.
"""

from __future__ import annotations

import argparse
import base64
import gc
import json
import os
import struct
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench_servers  # noqa: E402
import loadgen  # noqa: E402

PAYLOAD = b'{"t":21.5,"h":40}'
#: Each route's path and extra options (Drogue's documented device1@example-app).
ROUTES: dict[str, tuple[str, list[tuple[int, bytes]]]] = {
    "tb": (f"api/v1/{bench_servers.BENCH_TOKEN}/telemetry", []),
    "drogue": ("v1/bench", [(4209, b"Basic " + base64.b64encode(b"device1@example-app:rodney"))]),
}
_MID_TOKEN = struct.Struct("!HI")


def _thread_cpu(native_id: int) -> float:
    with open(f"/proc/self/task/{native_id}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return round(int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20, 1)


def _threads() -> dict[str, int]:
    return {t.name.split(":")[0]: t.native_id for t in threading.enumerate() if t.native_id}


class _GCTimer:
    """The thread CPU the collector takes, from C{gc.callbacks}."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._start = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._start = time.thread_time()
        else:
            self.seconds += time.thread_time() - self._start


class _Driver:
    """
    Keeps C{window} requests outstanding from C{peers} addresses, refilling
    once per reactor turn in which answers came, never by spinning (a
    polling harness would count as the gateway's main-thread CPU).
    """

    def __init__(self, reactor: Any, prefix: bytes, suffix: bytes, window: int,
                 peers: int) -> None:
        self._reactor = reactor
        self._prefix, self._suffix = prefix, suffix
        self._window = window
        self._peers = [("127.0.0.1", 20000 + i) for i in range(peers)]
        self.receive: Any = None
        self.sent = self.answered_count = self._target = 0
        self._refill: Any = None
        self._done: Any = None

    def run(self, total: int, max_seconds: float) -> Any:
        """Fires once C{total} more requests are answered (fails after C{max_seconds})."""
        from twisted.internet.defer import Deferred

        self._target = self.answered_count + total
        self._done = done = Deferred()
        if total <= 0:
            done.callback(None)
            return done
        timer = self._reactor.callLater(max_seconds, lambda: done.called or done.errback(
            RuntimeError(f"not answered within {max_seconds} s")))
        done.addBoth(lambda result: (timer.active() and timer.cancel(), result)[1])
        self._send_window()
        return done

    def answered(self, data: bytes, addr: Any) -> None:
        self.answered_count += 1
        if self.answered_count >= self._target and self._done is not None:
            done, self._done = self._done, None
            done.callback(None)
        elif self._refill is None:
            self._refill = self._reactor.callLater(0, self._send_window)

    def _send_window(self) -> None:
        self._refill = None
        room = self._window - (self.sent - self.answered_count)
        for _ in range(min(room, self._target - self.sent)):
            i = self.sent
            self.sent += 1
            self.receive(self._prefix + _MID_TOKEN.pack(i & 0xFFFF, i) + self._suffix,
                         self._peers[i % len(self._peers)])


def in_process(name: str, **storage: str) -> list[Any]:
    """
    The settings of a gateway run inside a measuring script: loopback, any
    free port, no DTLS, a fresh data directory, these C{storage} keys.
    """
    from gateway.config import Override

    settings = [("coap", "bind", "127.0.0.1"), ("coap", "port", "0"), ("api", "port", "0"),
                ("dtls", "enabled", "false"), ("log", "level", "warn"),
                ("storage", "data_dir", tempfile.mkdtemp(prefix=f"{name}-"))]
    settings += [("storage", key, value) for key, value in storage.items()]
    return [Override(section, key, value, name) for section, key, value in settings]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].strip())
    p.add_argument("--requests", type=int, default=30000)
    p.add_argument("--warmup", type=int, default=2000)
    p.add_argument("--window", type=int, default=16, help="requests outstanding")
    p.add_argument("--peers", type=int, default=100, help="client addresses")
    p.add_argument("--durability", default="process-crash",
                   choices=("power-loss", "process-crash"))
    p.add_argument("--backend", default="sqlite", choices=("sqlite", "memory", "postgresql"),
                   help="postgresql: a throw-away cluster (the tests' tests.pgcluster)")
    p.add_argument("--route", default="tb", choices=sorted(ROUTES),
                   help="the ThingsBoard telemetry POST or a Drogue publish (option 4209)")
    p.add_argument("--upstream", action="store_true",
                   help="forward to a child upstream_sink.py (its CPU is not counted)")
    p.add_argument("--profile", default=None, metavar="FILE",
                   help="cProfile of the measured requests (main thread, CPU time)")
    p.add_argument("--max-seconds", type=float, default=120.0)
    p.add_argument("--trace-memory", action="store_true",
                   help="print the allocations the measured requests left behind")
    p.add_argument("--json", default=None, metavar="FILE")
    a = p.parse_args(argv)

    from twisted.internet import reactor
    from twisted.internet.defer import ensureDeferred

    from gateway.application.compose import build_service
    from gateway.config import Override, load_config

    overrides = in_process("path_cpu", backend=a.backend, durability=a.durability)
    cluster = None
    if a.backend == "postgresql":
        from tests.pgcluster import INSTALL_HINT, Cluster, find_bindir

        bindir = find_bindir()
        if bindir is None:
            print(f"path_cpu: {INSTALL_HINT}", file=sys.stderr)
            return 1
        cluster = Cluster(bindir)
        cluster.start()
        overrides.append(Override("storage", "dsn", cluster.dsn, "path_cpu"))
    sink = None
    if a.upstream:
        sink, sink_port = bench_servers._start_sink(None)
        overrides.append(
            Override("upstream", "url", f"http://127.0.0.1:{sink_port}/events", "path_cpu")
        )
    gateway = build_service(load_config(None, {}, overrides), reactor)
    path, extra = ROUTES[a.route]
    prefix, suffix = loadgen.build_template("POST", path, PAYLOAD, True, 50, extra=extra)
    report: dict[str, Any] = {}
    driver = _Driver(reactor, prefix, suffix, a.window, a.peers)

    async def measure() -> None:
        await gateway.whenListening()
        services = gateway.service_layer
        assert services is not None
        await services.registry.create_device(
            "bench-sensor", access_token=bench_servers.BENCH_TOKEN
        )
        drogue = await services.registry.create_device("device1", application="example-app")
        await services.registry.set_basic(drogue.device.id, "device1", "rodney")
        protocol = gateway.coap.transport.protocol  # type: ignore[union-attr]
        protocol._sendto = driver.answered  # answers are counted, not sent
        driver.receive = protocol.datagramReceived

        async def run(total: int) -> None:
            await driver.run(total, a.max_seconds)

        await run(a.warmup)
        rss0 = _rss_mb()
        timer = _GCTimer()
        gc.callbacks.append(timer)
        threads = _threads()
        before = {name: _thread_cpu(tid) for name, tid in threads.items()}
        started, cpu0 = time.perf_counter(), time.process_time()
        profile = None
        if a.profile:
            import cProfile

            profile = cProfile.Profile(time.thread_time)
            profile.enable()
        if a.trace_memory:
            import tracemalloc

            tracemalloc.start(8)
            snapshot = tracemalloc.take_snapshot()
        await run(a.requests)
        if a.trace_memory:
            grown = tracemalloc.take_snapshot().compare_to(snapshot, "traceback")
            for stat in grown[:5]:
                print(stat)
                print("\n".join(stat.traceback.format()[-8:]))
            tracemalloc.stop()
        if profile is not None:
            profile.disable()
            profile.dump_stats(a.profile)
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu0
        gc.callbacks.remove(timer)
        per = 1e6 / a.requests
        report.update({
            "requests": a.requests, "durability": a.durability, "backend": a.backend,
            "upstream": a.upstream, "requests_per_s": round(a.requests / wall),
            "process_us_per_req": round(cpu * per, 1),
            "threads_us_per_req": {
                name: round((_thread_cpu(tid) - before.get(name, 0.0)) * per, 1)
                for name, tid in _threads().items() if name in before
            },
            "gc_us_per_req": round(timer.seconds * per, 1),
            "rss_mb": [rss0, _rss_mb()],
        })

    def done(_: object) -> None:
        reactor.stop()

    def failed(failure: Any) -> None:
        report["error"] = failure.getErrorMessage()
        reactor.stop()

    gateway.startService()
    ensureDeferred(measure()).addCallbacks(done, failed)
    reactor.run()
    if sink is not None:
        sink.terminate()
        sink.wait(5)
    if cluster is not None:
        cluster.stop()
    if "error" in report:
        print(f"path_cpu: {report['error']}", file=sys.stderr)
        return 1
    for name, us in report["threads_us_per_req"].items():
        print(f"{name:20s} {us:7.1f} µs/req")
    print(f"{'process':20s} {report['process_us_per_req']:7.1f} µs/req "
          f"(GC {report['gc_us_per_req']} µs), {report['requests_per_s']:,} req/s, "
          f"RSS {report['rss_mb'][0]} -> {report['rss_mb'][1]} MB")
    if a.json:
        Path(a.json).write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
