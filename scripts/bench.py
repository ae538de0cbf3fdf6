#!/usr/bin/env python3
"""
``make bench``: our CoAP engine beside aiocoap, txThings and libcoap.

For every server and every scenario a fresh server process is started on an
ephemeral loopback port, pinned to core 0; the load generator
(``loadgen.py``, in this process) runs on core 1.  Each scenario is a warm-up
run followed by one measured run; the server's CPU time (``/proc/<pid>/stat``
utime+stime) and RSS (``/proc/<pid>/status`` VmRSS) are read around it.
Then a memory soak per server: CON POST at window 16 with client sockets
re-opened about every second (new source ports), RSS sampled every 2 s.

    python scripts/bench.py                 # full: ~5 s per run, 60 s soak
    python scripts/bench.py --quick         # about a minute and a half
    python scripts/bench.py --servers gateway,aiocoap --duration 3 --json out.json
    python scripts/bench.py --only dtls      # the DTLS rows alone (bench_dtls.py)

Add a scenario by appending a ``Scenario`` to ``SCENARIOS``, and a server by
appending a ``Server`` to ``SERVERS``; a scenario may be limited to some
servers (``servers=("gateway-tb",)``) and may name its own path and payload.

``--baseline REV`` adds ``gateway-tb`` as commit REV had it (a temporary git
worktree, this venv's packages) beside the others, for a change's before and after.

The ThingsBoard telemetry scenario also runs on the whole gateway:
``gateway-tb`` (events committed to the outbox and kept there),
``gateway-tb-crash`` (the same, durability process-crash) and ``gateway-up`` /
``gateway-up-crash``, which forward them to a child ``upstream_sink.py``
pinned to the generator's core.  For those the table adds the events the
sink received per second of the measured window, the backlog left at its
end, and how long the rest took to arrive (at most ``DRAIN_SECONDS``).  CPU
per request is always the server process's own; the sink's is shown apart.

The DTLS rows (``bench_dtls.py``) follow in the same run: full handshakes
per second per core (PSK, ECDHE-ECDSA one-way and mutual), server CPU per
request on an established PSK session beside plain CoAP, and RSS per
established session at 5,000 sessions, each against its target.
"""

from __future__ import annotations

import argparse
import atexit
import base64
import importlib.util
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import loadgen  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
SERVER_CPU = 0
GENERATOR_CPU = 1


# --------------------------------------------------------------------------
# Servers


@dataclass
class Server:
    """How to start one server and what it serves."""

    name: str
    #: argv for a given port (0 = the server picks and prints ``PORT <n>``).
    argv: Callable[[int], list[str]]
    path: str = "telemetry"
    #: True when the server prints ``PORT <n>``; otherwise bench picks a port.
    announces_port: bool = True
    #: Called with the port once the server is up (e.g. create a resource).
    setup: Callable[[int], None] | None = None
    available: Callable[[], bool] = lambda: True
    note: str = ""
    #: None: every scenario; otherwise only these scenario names (and the soak).
    scenarios: tuple[str, ...] | None = None


def _py_server(kind: str) -> Callable[[int], list[str]]:
    return lambda port: [
        sys.executable, str(HERE / "bench_servers.py"), kind, "--port", str(port)
    ]


def _has_module(name: str) -> Callable[[], bool]:
    def check() -> bool:
        try:
            return importlib.util.find_spec(name) is not None
        except ModuleNotFoundError:
            return False

    return check


def _libcoap_setup(port: int) -> None:
    """libcoap's POST-able resource is created by a first POST (``-d``)."""
    for _ in range(20):
        r = loadgen.run(loadgen.LoadSpec(
            port=port, path="dyn", method="POST", payload=b"{}", clients=1,
            window=1, duration=1.0, max_requests=1, timeout=0.2,
            max_retransmit=0, expect=["2.01", "2.04"], drain=0.5,
        ))
        if r["responses"] == 1:
            return
        time.sleep(0.1)
    raise RuntimeError("libcoap: could not create /dyn")


TB_PATH = "api/v1/BENCH_TOKEN/telemetry"
#: The scenarios of the whole gateway's servers (gateway-tb and its kin).
WHOLE_GATEWAY = ("TB telemetry POST w=16", "Drogue publish POST w=16")

SERVERS: list[Server] = [
    Server("gateway", _py_server("gateway"),
           available=_has_module("gateway.coap.layer"), note="our engine"),
    Server("gateway-tb", _py_server("gateway-tb"), path=TB_PATH,
           available=_has_module("gateway.tap"), scenarios=WHOLE_GATEWAY,
           note="whole gateway: ThingsBoard route, token auth, JSON, SQLite store + "
                "outbox commit (no upstream: events stay local), durability power-loss"),
    Server("gateway-tb-crash", _py_server("gateway-tb-crash"), path=TB_PATH,
           available=_has_module("gateway.tap"), scenarios=WHOLE_GATEWAY,
           note="gateway-tb with durability process-crash (SQLite synchronous=NORMAL)"),
    Server("gateway-tb-pg", _py_server("gateway-tb-pg"), path=TB_PATH,
           available=_has_module("psycopg"), scenarios=WHOLE_GATEWAY,
           note="gateway-tb on the PostgreSQL backend (throw-away cluster, synchronous_commit "
                "off; the PostgreSQL server's own CPU is not counted)"),
    Server("gateway-up", _py_server("gateway-up"), path=TB_PATH,
           available=_has_module("gateway.tap"), scenarios=WHOLE_GATEWAY,
           note="gateway-tb + forwarder (batch) into upstream_sink.py, durability power-loss"),
    Server("gateway-up-crash", _py_server("gateway-up-crash"), path=TB_PATH,
           available=_has_module("gateway.tap"), scenarios=WHOLE_GATEWAY,
           note="gateway-up with durability process-crash"),
    Server("aiocoap", _py_server("aiocoap"), available=_has_module("aiocoap"),
           note="aiocoap 0.4.17"),
    Server("txthings", _py_server("txthings"), available=_has_module("txthings"),
           note="txThings 0.3.0"),
    Server("libcoap", lambda port: ["coap-server-notls", "-A", "127.0.0.1", "-p", str(port),
                                    "-d", "10"],
           path="dyn", announces_port=False, setup=_libcoap_setup,
           available=lambda: shutil.which("coap-server-notls") is not None,
           note="libcoap coap-server-notls (C reference)"),
    Server("rawecho", _py_server("rawecho"),
           note="plain socket loop, generator ceiling (not CoAP)"),
]
def baseline_server(rev: str, tree: Path) -> Server:
    """
    C{gateway-tb} as commit C{rev} had it (checked out at C{tree}), run on
    this venv's packages: a change's figures beside the path it changed, in
    one run on one machine.
    """
    return Server(
        f"gateway-tb@{rev}",
        lambda port: ["env", f"PYTHONPATH={tree}", sys.executable,
                      str(tree / "scripts" / "bench_servers.py"), "gateway-tb",
                      "--port", str(port)],
        path=TB_PATH, scenarios=WHOLE_GATEWAY,
        note=f"gateway-tb at commit {rev} (--baseline)",
    )


def checkout(rev: str) -> Path:
    """A detached worktree of C{rev} in a temporary directory (see L{drop_checkout})."""
    import tempfile

    tree = Path(tempfile.mkdtemp(prefix="bench-baseline-")) / "tree"
    subprocess.run(["git", "-C", str(HERE.parent), "worktree", "add", "--detach", "-q",
                    str(tree), rev], check=True)
    return tree


def drop_checkout(tree: Path) -> None:
    subprocess.run(["git", "-C", str(HERE.parent), "worktree", "remove", "--force", str(tree)],
                   check=False)
    shutil.rmtree(tree.parent, ignore_errors=True)


#: The servers that are the whole gateway (its scenarios: L{WHOLE_GATEWAY}).
WHOLE_GATEWAY_SERVERS = ("gateway-tb", "gateway-tb-crash", "gateway-tb-pg", "gateway-up",
                         "gateway-up-crash")
DEFAULT_SERVERS = ("gateway", *WHOLE_GATEWAY_SERVERS, "aiocoap", "txthings", "libcoap")


# --------------------------------------------------------------------------
# Scenarios


@dataclass
class Scenario:
    name: str
    method: str = "GET"
    window: int = 16
    confirmable: bool = True
    payload: bytes = b""
    content_format: int | None = None
    expect: list[str] = field(default_factory=list)
    clients: int = 100
    #: None: the server's own resource path.
    path: str | None = None
    #: None: every server; otherwise only these server names.
    servers: tuple[str, ...] | None = None
    options: list[tuple[int, bytes]] = field(default_factory=list)

    def spec(self, server: Server, port: int, duration: float) -> loadgen.LoadSpec:
        return loadgen.LoadSpec(
            port=port, path=self.path or server.path, method=self.method,
            payload=self.payload, content_format=self.content_format,
            confirmable=self.confirmable, clients=self.clients, window=self.window,
            duration=duration, expect=list(self.expect), options=list(self.options),
        )


TELEMETRY = b'{"t":21.5,"h":40}'

SCENARIOS: list[Scenario] = [
    Scenario("CON GET w=1", window=1),
    Scenario("CON GET w=16", window=16),
    Scenario("CON GET w=128", window=128),
    Scenario("CON POST w=16", method="POST", window=16, payload=TELEMETRY,
             content_format=50, expect=["2.04", "2.01"]),
    # The ThingsBoard telemetry route end to end (gateway-tb), beside the
    # trivial POST resource of the others.
    Scenario("TB telemetry POST w=16", method="POST", window=16, payload=TELEMETRY,
             content_format=50, expect=["2.01", "2.04"],
             servers=(*WHOLE_GATEWAY_SERVERS, "gateway", "aiocoap")),
    # A Drogue publish (option 4209 basic credentials, cached after the
    # first scrypt check) on the same whole-gateway servers.
    Scenario("Drogue publish POST w=16", method="POST", window=16, payload=TELEMETRY,
             content_format=50, expect=["2.04"], path="v1/bench",
             options=[(4209, b"Basic " + base64.b64encode(b"device1@example-app:hey-rodney"))],
             servers=WHOLE_GATEWAY_SERVERS),
]
#: The scenario the throughput ratios are computed on.
RATIO_SCENARIO = "CON GET w=16"
SOAK = Scenario("soak CON POST w=16", method="POST", window=16, payload=TELEMETRY,
                content_format=50, expect=["2.04", "2.01"])


# --------------------------------------------------------------------------
# Process handling and /proc


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pin_server() -> None:
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, {SERVER_CPU})


def pin_generator() -> None:
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1:
        os.sched_setaffinity(0, {GENERATOR_CPU})


def _proc_cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # fields[0] is the state (field 3); utime and stime are fields 14, 15.
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


class Running:
    """One started server process."""

    def __init__(self, server: Server, log_path: str | None = None,
                 extra_args: list[str] | None = None) -> None:
        self.server = server
        port = 0 if server.announces_port else _free_port()
        argv = server.argv(port) + (extra_args or [])
        self.stderr = open(log_path, "ab") if log_path else subprocess.DEVNULL
        self.proc = subprocess.Popen(
            argv, stdout=subprocess.PIPE if server.announces_port else subprocess.DEVNULL,
            stderr=self.stderr, preexec_fn=_pin_server,
        )
        self.pid = self.proc.pid
        #: gateway-up*: the upstream sink's port and pid (``SINK <port> <pid>``).
        self.sink_port: int | None = None
        self.sink_pid: int | None = None
        #: gateway-dtls: the same engine's plain UDP port (``PLAIN <port>``).
        self.plain_port: int | None = None
        if server.announces_port:
            self.port = self._read_port(timeout=20.0)
        else:
            self.port = port
            time.sleep(0.3)
        if self.proc.poll() is not None:
            raise RuntimeError(f"{server.name} exited with {self.proc.returncode}")
        if server.setup:
            server.setup(self.port)

    def _read_port(self, timeout: float) -> int:
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        buf = b""
        fd = self.proc.stdout.fileno()
        while time.monotonic() < deadline:
            r, _, _ = select.select([fd], [], [], 0.2)
            if r:
                chunk = os.read(fd, 4096)
                if not chunk:
                    break
                buf += chunk
                for line in buf.splitlines():
                    if line.startswith(b"SINK "):
                        self.sink_port, self.sink_pid = map(int, line.split()[1:3])
                    if line.startswith(b"PLAIN "):
                        self.plain_port = int(line.split()[1])
                    if line.startswith(b"PORT "):
                        return int(line.split()[1])
            if self.proc.poll() is not None:
                break
        self.stop()
        raise RuntimeError(f"{self.server.name}: no PORT line (got {buf[-200:]!r})")

    def cpu_seconds(self) -> float:
        """This process's own CPU (children, such as the sink, are not in it)."""
        return _proc_cpu_seconds(self.pid)

    def sink_cpu_seconds(self) -> float:
        if self.sink_pid is None:
            return 0.0
        try:
            return _proc_cpu_seconds(self.sink_pid)
        except OSError:
            return 0.0

    def sink_stats(self, timeout: float = 2.0) -> dict[str, Any]:
        """The upstream sink's GET /stats (loopback, bounded by C{timeout})."""
        import urllib.request

        with urllib.request.urlopen(f"http://127.0.0.1:{self.sink_port}/stats",
                                    timeout=timeout) as r:
            return dict(json.load(r))

    def rss_mb(self) -> float:
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
        return 0.0

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self.proc.stdout:
            self.proc.stdout.close()
        if self.stderr not in (None, subprocess.DEVNULL):
            self.stderr.close()  # type: ignore[union-attr]


@dataclass
class CoreSample:
    """Jiffies of one core from /proc/stat, to spot other work on the server's core."""

    busy: int
    steal: int
    total: int

    @classmethod
    def take(cls, core: int) -> "CoreSample":
        tag = f"cpu{core} "
        with open("/proc/stat") as f:
            for line in f:
                if line.startswith(tag):
                    v = [int(x) for x in line.split()[1:]]
                    # user + nice + system only: irq/softirq time is mostly the
                    # loopback traffic of the benchmark itself.
                    steal = v[7] if len(v) > 7 else 0
                    return cls(v[0] + v[1] + v[2], steal, sum(v))
        return cls(0, 0, 1)


# --------------------------------------------------------------------------
# Runs


def _own_cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system


#: A run is repeated (``--retries``) when other processes took more than this
#: share of the server's core; the run with the least foreign CPU is kept.
MAX_FOREIGN_PCT = 20.0


def run_scenario(server: Server, sc: Scenario, duration: float, warmup: float,
                 retries: int = 2) -> dict[str, Any]:
    best: dict[str, Any] | None = None
    for attempt in range(retries + 1):
        res = _run_scenario_once(server, sc, duration, warmup)
        res["attempt"] = attempt + 1
        if best is None or res["disturbance_pct"] < best["disturbance_pct"]:
            best = res
        if res["disturbance_pct"] <= MAX_FOREIGN_PCT:
            break
        print(f" [disturbed: {res['foreign_cpu_pct']}% / "
              f"{res['generator_core_foreign_pct']}% foreign CPU on the server/generator "
              f"core, {res['steal_pct']}% steal; repeating]", end="", file=sys.stderr, flush=True)
    assert best is not None
    return best


class Meter:
    """Server CPU and the contention on both cores around one measured run."""

    def __init__(self, srv: Running) -> None:
        self.srv = srv
        self.t0 = time.monotonic()
        self.cpu0 = srv.cpu_seconds()
        self.core0 = CoreSample.take(SERVER_CPU)
        self.gen0 = CoreSample.take(GENERATOR_CPU)
        self.own0 = _own_cpu_seconds()
        self.sink0 = srv.sink_cpu_seconds()

    def figures(self, responses: int) -> dict[str, Any]:
        wall = max(1e-9, time.monotonic() - self.t0)
        cpu = self.srv.cpu_seconds() - self.cpu0
        core1 = CoreSample.take(SERVER_CPU)
        gen1 = CoreSample.take(GENERATOR_CPU)
        own = _own_cpu_seconds() - self.own0
        # The upstream sink runs on the generator's core by design: its CPU is
        # reported on its own, not counted as foreign there (nor as the server's).
        sink = self.srv.sink_cpu_seconds() - self.sink0
        ticks = max(1, core1.total - self.core0.total)
        gen_ticks = max(1, gen1.total - self.gen0.total)
        server_foreign = (core1.busy - self.core0.busy) - cpu * CLK_TCK
        gen_foreign = (gen1.busy - self.gen0.busy) - (own + sink) * CLK_TCK
        out = {
            "server_cpu_s": round(cpu, 3),
            "server_cpu_pct": round(100.0 * cpu / wall, 1),
            "server_us_per_req": round(1e6 * cpu / responses, 1) if responses else None,
            "generator_cpu_pct": round(100.0 * own / wall, 1),
            "sink_cpu_pct": round(100.0 * sink / wall, 1),
            "steal_pct": round(100.0 * (core1.steal - self.core0.steal) / ticks, 1),
            "foreign_cpu_pct": round(max(0.0, 100.0 * server_foreign / ticks), 1),
            "generator_core_foreign_pct": round(max(0.0, 100.0 * gen_foreign / gen_ticks), 1),
        }
        # Hypervisor steal counts double: the baselines threw away runs over 10%.
        out["disturbance_pct"] = max(out["foreign_cpu_pct"], out["generator_core_foreign_pct"],
                                     2 * out["steal_pct"])
        return out


def _run_scenario_once(server: Server, sc: Scenario, duration: float,
                       warmup: float) -> dict[str, Any]:
    srv = Running(server)
    try:
        rss_before = srv.rss_mb()
        accepted = 0
        if warmup > 0:
            accepted += loadgen.run(sc.spec(server, srv.port, warmup))["responses"]
        up0 = srv.sink_stats()["unique"] if srv.sink_port else 0
        meter = Meter(srv)
        res = loadgen.run(sc.spec(server, srv.port, duration))
        res.update(meter.figures(res["responses"]))
        if srv.sink_port:
            res.update(_upstream_figures(srv, up0, accepted + res["responses"],
                                         res["duration_s"], res["requests_per_s"]))
            res["upstream_backlog_start_events"] = max(0, accepted - up0)
        res["rss_before_mb"] = round(rss_before, 1)
        res["rss_after_mb"] = round(srv.rss_mb(), 1)
        res["server_alive"] = srv.proc.poll() is None
        return res
    finally:
        srv.stop()


#: After the measured run, how long the bench waits for the forwarder to
#: deliver what is still in the outbox.
DRAIN_SECONDS = 5.0
#: The forwarder keeps up when, at the end of the measured window, what is not
#: yet upstream is at most this many seconds of the accepted traffic: a partial
#: batch waits ``upstream.flush_interval`` (1 s by default) once, so a backlog
#: swings between 0 and about 1 s worth even when delivery is fast enough.
MAX_BACKLOG_SECONDS = 2.0


def _upstream_figures(srv: Running, unique0: int, accepted: int, window: float,
                      accepted_per_s: float) -> dict[str, Any]:
    """
    Events delivered upstream: unique events the sink received during the
    measured window per second of it, the backlog left at its end, then a
    bounded drain (C{DRAIN_SECONDS}) until every request accepted in the run
    (warm-up included) is upstream.
    """
    unique1 = srv.sink_stats()["unique"]
    delivered_per_s = (unique1 - unique0) / window if window else 0.0
    backlog = max(0, accepted - unique1)
    backlog_s = backlog / accepted_per_s if accepted_per_s else 0.0
    t0 = time.monotonic()
    final = unique1
    while final < accepted and time.monotonic() - t0 < DRAIN_SECONDS:
        time.sleep(0.05)
        final = srv.sink_stats()["unique"]
    drained = final >= accepted
    stats = srv.sink_stats()
    return {
        "upstream_delivered_per_s": round(delivered_per_s, 1),
        "upstream_accepted": accepted,
        "upstream_unique": final,
        "upstream_backlog_events": backlog,
        "upstream_backlog_s": round(backlog_s, 2),
        "upstream_drain_s": round(time.monotonic() - t0, 2) if drained else None,
        "upstream_keeps_up": drained and backlog_s <= MAX_BACKLOG_SECONDS,
        "upstream_duplicates": stats["duplicates"],
        "upstream_gaps": stats["gaps"],
        "upstream_requests": stats["requests"],
    }


def run_soak(server: Server, seconds: float) -> dict[str, Any]:
    srv = Running(server)
    try:
        samples: list[tuple[float, float]] = [(0.0, srv.rss_mb())]

        def tick(elapsed: float, _stats: dict[str, Any]) -> None:
            samples.append((round(elapsed, 1), srv.rss_mb()))

        spec = SOAK.spec(server, srv.port, seconds)
        spec.fresh_ports_every = 1.0
        spec.tick = tick
        spec.tick_every = 2.0
        meter = Meter(srv)
        res = loadgen.run(spec)
        res.update(meter.figures(res["responses"]))
        samples.append((round(res["duration_s"], 1), srv.rss_mb()))
        rss = [s[1] for s in samples]
        res.update(
            rss_start_mb=round(rss[0], 1), rss_peak_mb=round(max(rss), 1),
            rss_end_mb=round(rss[-1], 1),
            rss_samples=[(t, round(m, 1)) for t, m in samples],
            server_alive=srv.proc.poll() is None,
        )
        return res
    finally:
        srv.stop()


# --------------------------------------------------------------------------
# Report


def _fmt_int(x: float) -> str:
    return f"{x:,.0f}"


def render_table(results: dict[str, Any]) -> str:
    names = [n for n in results["servers"]]
    if not names:
        return "(no server available)"
    lines = ["| | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]

    def row(label: str, cell: Callable[[str], str]) -> None:
        lines.append(f"| {label} | " + " | ".join(cell(n) for n in names) + " |")

    for sc in results["scenarios"]:
        def main_cell(n: str, sc: str = sc) -> str:
            r = results["runs"].get(n, {}).get(sc)
            if r is None:
                return "–"
            if "error" in r:
                return "error"
            cell = f"**{_fmt_int(r['requests_per_s'])}** · {r['p50_ms']:.2f}/{r['p99_ms']:.2f}"
            bad = r["timeouts"] + r["mismatches"] + r["lost"]
            if bad:
                cell += f" ⚠ {r['timeouts']} to/{r['mismatches']} mm/{r['lost']} lost"
            if r.get("disturbance_pct", 0) > MAX_FOREIGN_PCT:
                cell += (f" ⚠ disturbed ({r['foreign_cpu_pct']:.0f}%/"
                         f"{r['generator_core_foreign_pct']:.0f}% foreign, "
                         f"{r['steal_pct']:.0f}% steal)")
            return cell

        def cpu_cell(n: str, sc: str = sc) -> str:
            r = results["runs"].get(n, {}).get(sc)
            if not r or "error" in r:
                return "–"
            return (f"{r['server_us_per_req']} µs · {r['server_cpu_pct']:.0f}% · "
                    f"{r['rss_before_mb']:.0f}→{r['rss_after_mb']:.0f} MB")

        def upstream_cell(n: str, sc: str = sc) -> str:
            r = results["runs"].get(n, {}).get(sc)
            if not r or "error" in r or "upstream_delivered_per_s" not in r:
                return "–"
            drained = (f"all {_fmt_int(r['upstream_accepted'])} in "
                       f"{r['upstream_drain_s']:.1f} s" if r["upstream_drain_s"] is not None
                       else f"⚠ {_fmt_int(r['upstream_unique'])}/"
                            f"{_fmt_int(r['upstream_accepted'])} after {DRAIN_SECONDS:g} s")
            flags = "" if r["upstream_keeps_up"] else " ⚠ behind"
            if r["upstream_duplicates"] or r["upstream_gaps"]:
                flags += f" ⚠ {r['upstream_duplicates']} dup/{r['upstream_gaps']} gaps"
            return (f"**{_fmt_int(r['upstream_delivered_per_s'])}**/s{flags} · backlog "
                    f"{r['upstream_backlog_s']:.1f} s · {drained} · "
                    f"sink {r['sink_cpu_pct']:.0f}%")

        row(f"{sc}: req/s · p50/p99 ms", main_cell)
        row(f"{sc}: CPU/req · CPU · RSS", cpu_cell)
        if any("upstream_delivered_per_s" in results["runs"].get(n, {}).get(sc, {})
               for n in names):
            row(f"{sc}: events delivered/s upstream · backlog at end · drain · sink CPU (core "
                f"{GENERATOR_CPU})", upstream_cell)

    def soak_cell(n: str) -> str:
        r = results["soak"].get(n)
        if r is None:
            return "–"
        if "error" in r:
            return "error"
        return (f"{_fmt_int(r['responses'])} req ({_fmt_int(r['requests_per_s'])}/s) · "
                f"RSS {r['rss_start_mb']:.0f}/{r['rss_peak_mb']:.0f}/{r['rss_end_mb']:.0f} MB"
                + (f" ⚠ {r['timeouts']} to" if r["timeouts"] else ""))

    if results["soak"]:
        row(f"soak {results['soak_seconds']:.0f} s CON POST w=16, new ports/1 s: "
            "req · RSS start/peak/end", soak_cell)
    out = "\n".join(lines)
    if results.get("ratios"):
        out += "\n\n" + "\n".join(
            f"- {k}: **{v:.2f}×**" for k, v in results["ratios"].items()
        )
    return out


def compute_ratios(results: dict[str, Any]) -> dict[str, float]:
    ratios: dict[str, float] = {}
    runs = results["runs"]
    ours = runs.get("gateway", {}).get(RATIO_SCENARIO)
    if not ours or "error" in ours:
        return ratios
    for peer in ("aiocoap", "txthings", "libcoap"):
        r = runs.get(peer, {}).get(RATIO_SCENARIO)
        if r and "error" not in r and r["requests_per_s"]:
            ratios[f"gateway / {peer} throughput at {RATIO_SCENARIO}"] = round(
                ours["requests_per_s"] / r["requests_per_s"], 2)
    return ratios


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="CoAP server benchmark (loopback)")
    p.add_argument("--quick", action="store_true", help="short runs, about 1.5 min in total")
    p.add_argument("--duration", type=float, default=None, help="seconds per measured run")
    p.add_argument("--warmup", type=float, default=None)
    p.add_argument("--soak", type=float, default=None, help="soak seconds per server (0 = none)")
    p.add_argument("--servers", default=",".join(DEFAULT_SERVERS),
                   help="comma separated: " + ",".join(s.name for s in SERVERS))
    p.add_argument("--scenarios", default="", help="comma separated names (default all)")
    p.add_argument("--json", default=None, metavar="FILE")
    p.add_argument("--only", choices=("dtls",), default=None,
                   help="run only these rows: dtls = the DTLS rows (bench_dtls.py)")
    p.add_argument("--no-dtls", action="store_true", help="leave out the DTLS rows")
    p.add_argument("--baseline", default=None, metavar="REV",
                   help="also run gateway-tb as git commit REV had it (a worktree of REV)")
    p.add_argument("--retries", type=int, default=2,
                   help=f"repeat a run when >{MAX_FOREIGN_PCT:.0f}%% of the server core "
                        "went to other processes")
    a = p.parse_args(argv)

    duration = a.duration if a.duration is not None else (1.5 if a.quick else 5.0)
    warmup = a.warmup if a.warmup is not None else (0.5 if a.quick else 1.0)
    soak = a.soak if a.soak is not None else (10.0 if a.quick else 60.0)

    pin_generator()
    wanted = [n.strip() for n in a.servers.split(",") if n.strip()]
    by_name = {s.name: s for s in SERVERS}
    servers: list[Server] = []
    for n in wanted:
        s = by_name.get(n)
        if s is None:
            p.error(f"unknown server {n!r}")
        if not s.available():
            print(f"# skipping {n}: not available", file=sys.stderr)
            continue
        servers.append(s)
    baseline: Path | None = None
    if a.baseline:
        baseline = checkout(a.baseline)
        atexit.register(drop_checkout, baseline)
        servers.insert(0, baseline_server(a.baseline, baseline))
    scenarios = SCENARIOS
    if a.only == "dtls":
        servers, scenarios, soak = [], [], 0.0
    if a.scenarios:
        keep = {x.strip() for x in a.scenarios.split(",")}
        scenarios = [sc for sc in SCENARIOS if sc.name in keep]

    results: dict[str, Any] = {
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "mode": "quick" if a.quick else "full",
        "duration_s": duration, "warmup_s": warmup, "soak_seconds": soak,
        "cpus": {"server": SERVER_CPU, "generator": GENERATOR_CPU},
        "python": sys.version.split()[0],
        "servers": [s.name for s in servers],
        "notes": {s.name: s.note for s in servers},
        "scenarios": [sc.name for sc in scenarios],
        "runs": {}, "soak": {},
    }
    t_start = time.monotonic()
    for sc in scenarios:
        for s in servers:
            # A baseline (gateway-tb@REV) runs where gateway-tb does.
            if sc.servers is not None and s.name.split("@")[0] not in sc.servers:
                continue
            if s.scenarios is not None and sc.name not in s.scenarios:
                continue
            print(f"# {s.name:9s} {sc.name} ...", end="", file=sys.stderr, flush=True)
            try:
                r = run_scenario(s, sc, duration, warmup, a.retries)
                print(f" {r['requests_per_s']:>9,.0f} req/s  p50 {r['p50_ms']:.2f} ms  "
                      f"p99 {r['p99_ms']:.2f} ms  {r['server_us_per_req']} µs/req  "
                      f"to={r['timeouts']} mm={r['mismatches']} steal={r['steal_pct']}% "
                      f"foreign={r['foreign_cpu_pct']}%/{r['generator_core_foreign_pct']}% "
                      f"gen={r['generator_cpu_pct']}%"
                      + (f" upstream={r['upstream_delivered_per_s']}/s "
                         f"backlog={r['upstream_backlog_s']} s "
                         f"drain={r['upstream_drain_s']} s sink={r['sink_cpu_pct']}%"
                         if "upstream_delivered_per_s" in r else ""),
                      file=sys.stderr)
            except Exception as e:  # keep going with the other servers
                r = {"error": repr(e)}
                print(f" ERROR {e!r}", file=sys.stderr)
            results["runs"].setdefault(s.name, {})[sc.name] = r
    if soak > 0:
        for s in servers:
            if "@" in s.name:
                continue  # a baseline is for the CPU comparison, not the soak
            print(f"# {s.name:9s} soak {soak:.0f} s ...", end="", file=sys.stderr, flush=True)
            try:
                r = run_soak(s, soak)
                print(f" {r['responses']:,} req, RSS {r['rss_start_mb']:.1f} → peak "
                      f"{r['rss_peak_mb']:.1f} → {r['rss_end_mb']:.1f} MB, "
                      f"to={r['timeouts']} mm={r['mismatches']} "
                      f"foreign={r['foreign_cpu_pct']}%/{r['generator_core_foreign_pct']}%",
                      file=sys.stderr)
            except Exception as e:
                r = {"error": repr(e)}
                print(f" ERROR {e!r}", file=sys.stderr)
            results["soak"][s.name] = r
    if not a.no_dtls and _has_module("gateway.dtls.transport")():
        import bench_dtls

        print("# gateway-dtls handshakes, requests and sessions ...", file=sys.stderr, flush=True)
        try:
            results["dtls"] = bench_dtls.run_dtls(duration, warmup)
        except Exception as e:
            results["dtls"] = {"error": repr(e)}
            print(f" ERROR {e!r}", file=sys.stderr)
    results["ratios"] = compute_ratios(results)
    results["elapsed_s"] = round(time.monotonic() - t_start, 1)

    print(f"\n## CoAP bench ({results['mode']} mode: {duration:g} s runs after {warmup:g} s "
          f"warm-up, 100 clients, server on core {SERVER_CPU}, generator on core "
          f"{GENERATOR_CPU}; total {results['elapsed_s']:.0f} s)\n")
    if servers:
        print(render_table(results))
    if "dtls" in results:
        import bench_dtls

        print("\n### DTLS (gateway-dtls: our engine behind the DTLS transport)\n")
        dtls = results["dtls"]
        print(f"error: {dtls['error']}" if "error" in dtls else bench_dtls.render_dtls(dtls))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(results, f, indent=2, default=str)
        print(f"\n(JSON written to {a.json})")
    bad = any(
        "error" in r or r.get("mismatches") for runs in results["runs"].values()
        for r in runs.values()
    ) or "error" in results.get("dtls", {})
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
