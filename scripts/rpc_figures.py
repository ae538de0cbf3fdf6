#!/usr/bin/env python3
"""
Figures of the downlink path, bounded by count and time, loopback only.

 - C{latency}: the real gateway (C{twistd -n coap-gateway}, SQLite,
   durability as configured) in a temporary directory; one device observes
   C{/rpc} from a thread of this process and answers each RPC at once on
   C{/rpc/{id}}; C{--count} two-way RPCs go through C{POST
   /api/v1/devices/{id}/rpc} one after the other.  Prints the round-trip
   (API -> device -> API) p50, p99 and max in ms.
 - C{queue}: in this process, the service layer over SQLite (a real
   reactor drives its writer thread) with C{--devices} devices, then 10
   queued RPCs for each: the Python heap (tracemalloc) and RSS growth per
   device.
 - C{observe}: in this process, the engine and the ThingsBoard dialect over
   the in-memory store on a Clock, C{--devices} devices each observing its
   C{/rpc} from its own address: heap and RSS growth per observing device,
   right after registering (duplicate cache entries held) and once the
   exchange lifetime has passed.

    .venv/bin/python scripts/rpc_figures.py latency --count 500
    .venv/bin/python scripts/rpc_figures.py queue --devices 10000
    .venv/bin/python scripts/rpc_figures.py observe --devices 10000
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from txthings import coap as tx  # noqa: E402

from gateway.coap import codec  # noqa: E402

#: Seconds any one phase may take before it gives up.
PHASE_LIMIT = 300.0


def rss_kib() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


# -- latency: the real gateway -----------------------------------------------------


def _api(port: int, key: str, method: str, path: str, body: Any = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}", data=data, method=method,
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


class _Device(threading.Thread):
    """Observes /rpc and answers every RPC notification at once."""

    def __init__(self, port: int, token: str) -> None:
        super().__init__(daemon=True)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.connect(("127.0.0.1", port))
        self.sock.settimeout(0.5)
        self.token = token
        self.mid = random.getrandbits(16)
        self.stopping = False
        self.ready = threading.Event()

    def _send(self, code: int, path: str, payload: bytes, observe: bool, token: bytes) -> None:
        self.mid = (self.mid + 1) & 0xFFFF
        m = tx.Message(mtype=tx.CON, mid=self.mid, code=code, token=token, payload=payload)
        m.opt.uri_path = [s.encode() for s in path.split("/")]
        if observe:
            m.opt.observe = 0
        self.sock.send(codec.encode(m))

    def run(self) -> None:
        self._send(tx.GET, f"api/v1/{self.token}/rpc", b"", True, b"obs1")
        while not self.stopping:
            try:
                m = codec.decode(self.sock.recv(4096))
            except socket.timeout:
                continue
            if m.mtype == tx.CON:
                self.sock.send(codec.empty(tx.ACK, m.mid))
            if m.token == b"obs1":
                if m.code == tx.VALID:
                    self.ready.set()
                elif m.code == tx.CONTENT:
                    rpc = json.loads(m.payload)
                    self._send(tx.POST, f"api/v1/{self.token}/rpc/{rpc['id']}",
                               b'{"ok":true}', False, os.urandom(4))


def latency(args: argparse.Namespace) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="rpc-figures-"))
    argv = [str(REPO / ".venv" / "bin" / "twistd"), "-n", "--pidfile=", "coap-gateway",
            "--coap-port", "0", "--api-port", "0", "--data-dir", str(work / "data")]
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    log = open(work / "gateway.log", "w")  # noqa: SIM115 (closed with the process)
    proc = subprocess.Popen(argv, cwd=work, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        pattern = re.compile(r"CoAP on udp \[[^\]]*\]:(\d+).*API on http://[^:]+:(\d+)")
        while not (found := pattern.search((work / "gateway.log").read_text())):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("the gateway did not start")
            time.sleep(0.1)
        coap_port, api_port = int(found[1]), int(found[2])
        key = (work / "data" / "api-key").read_text().strip()
        device = _api(api_port, key, "POST", "/api/v1/devices", {"name": "bench"})
        observer = _Device(coap_port, device["access_token"])
        observer.start()
        if not observer.ready.wait(10):
            raise SystemExit("the device could not observe /rpc")
        path = f"/api/v1/devices/{device['id']}/rpc"
        times: list[float] = []
        stop_at = time.monotonic() + min(args.seconds, PHASE_LIMIT)
        for i in range(args.count + args.warmup):
            start = time.perf_counter()
            reply = _api(api_port, key, "POST", path, {"method": "ping", "params": i})
            took = time.perf_counter() - start
            assert reply == {"ok": True}, reply
            if i >= args.warmup:
                times.append(took * 1000)
            if time.monotonic() > stop_at:
                break
        observer.stopping = True
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
        shutil.rmtree(work, ignore_errors=True)
    times.sort()
    return {
        "figure": "rpc round trip API -> device -> API (loopback, SQLite power-loss)",
        "count": len(times),
        "p50_ms": round(statistics.median(times), 2),
        "p99_ms": round(times[min(len(times) - 1, int(len(times) * 0.99))], 2),
        "max_ms": round(times[-1], 2),
    }


# -- memory: the RPC queue ----------------------------------------------------------


def queue(args: argparse.Namespace) -> dict[str, Any]:
    from twisted.internet import reactor, task
    from twisted.internet.defer import Deferred, gatherResults

    from gateway.service.build import open_services

    out: dict[str, Any] = {}
    work = Path(tempfile.mkdtemp(prefix="rpc-figures-"))

    async def run(_: Any) -> None:
        services = await open_services(reactor, "sqlite", str(work / "gateway.db"),
                                       durability="process-crash")
        ids = []
        for start in range(0, args.devices, 1000):
            made = await gatherResults([
                services.registry.create_device(f"d{i}")
                for i in range(start, min(start + 1000, args.devices))
            ])
            ids += [m.device.id for m in made]
        gc.collect()
        heap, rss = tracemalloc.get_traced_memory()[0], rss_kib()
        began = time.monotonic()
        for start in range(0, len(ids), 500):
            await gatherResults([
                services.rpc.enqueue(d, "setConfig", {"interval": 60, "n": n})
                for d in ids[start:start + 500] for n in range(10)
            ])
        gc.collect()
        out.update({
            "figure": "memory per device with 10 queued RPCs (SQLite store, in memory: the queue)",
            "devices": len(ids),
            "queued": sum(services.rpc.pending(d) for d in ids),
            "heap_bytes_per_device": round((tracemalloc.get_traced_memory()[0] - heap) / len(ids)),
            "rss_kib_per_device": round((rss_kib() - rss) / len(ids), 2),
            "enqueue_seconds": round(time.monotonic() - began, 1),
        })
        await services.close()

    tracemalloc.start()
    try:
        task.react(lambda r: Deferred.fromCoroutine(run(r)))
    except SystemExit:  # react exits once run is done
        pass
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return out


# -- memory: observing devices ---------------------------------------------------------


def observe(args: argparse.Namespace) -> dict[str, Any]:
    import attrs
    from twisted.internet.task import Clock
    from zope.interface import implementer

    from gateway.coap.layer import MessageLayer
    from gateway.coap.params import EngineLimits, TransmissionParameters
    from gateway.coap.peer import IPeer
    from gateway.coap.resource import Resource
    from gateway.dialects.thingsboard import ThingsBoardDialect
    from gateway.service.build import memory_services

    @implementer(IPeer)
    @attrs.define(eq=False)
    class Peer:
        address: tuple[str, int]
        params: TransmissionParameters
        identity: None = None
        answers: int = 0

        @property
        def key(self) -> Any:
            return self.address

        def send(self, data: bytes) -> None:
            self.answers += 1

    clock = Clock()
    clock.advance(1_700_000_000)
    services = memory_services(clock).result
    root = Resource()
    ThingsBoardDialect().install(root, services.devices.for_dialect("thingsboard"), clock)
    limits = EngineLimits(max_observers=args.devices + 10)
    layer = MessageLayer(root, clock, limits=limits)
    tokens = [services.registry.create_device(f"d{i}").result.access_token
              for i in range(args.devices)]
    peers: list[Peer] = []
    tracemalloc.start()
    gc.collect()
    heap, rss = tracemalloc.get_traced_memory()[0], rss_kib()
    for i, token in enumerate(tokens):
        peer = Peer((f"127.0.0.{1 + i // 50000}", 10000 + i % 50000), layer.params)
        peers.append(peer)
        m = tx.Message(mtype=tx.CON, mid=i & 0xFFFF, code=tx.GET, token=b"ob")
        m.opt.uri_path = [b"api", b"v1", token.encode(), b"rpc"]
        m.opt.observe = 0
        layer.receive(peer, codec.encode(m))
    clock.advance(0)
    gc.collect()
    registered = tracemalloc.get_traced_memory()[0] - heap, rss_kib() - rss
    answered = sum(p.answers for p in peers)
    for _ in range(int(layer.params.exchange_lifetime) + 2):
        clock.advance(1)
    gc.collect()
    settled = tracemalloc.get_traced_memory()[0] - heap
    return {
        "figure": "memory per observing device (ThingsBoard /rpc, engine + dialect + queue)",
        "devices": args.devices,
        "observations": len(layer.observations),
        "answered": answered,
        "heap_bytes_per_device_at_once": round(registered[0] / args.devices),
        "rss_kib_per_device_at_once": round(registered[1] / args.devices, 2),
        "heap_bytes_per_device_after_exchange_lifetime": round(settled / args.devices),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("figure", choices=("latency", "queue", "observe"))
    p.add_argument("--count", type=int, default=500, help="RPCs timed (latency)")
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--seconds", type=float, default=120.0, help="latency time bound")
    p.add_argument("--devices", type=int, default=10_000)
    args = p.parse_args(argv)
    if args.devices > 100_000 or args.count > 100_000:
        p.error("keep it bounded: at most 100,000 devices or RPCs")
    figure = {"latency": latency, "queue": queue, "observe": observe}[args.figure](args)
    print(json.dumps(figure, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
