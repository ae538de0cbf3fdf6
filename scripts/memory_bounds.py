#!/usr/bin/env python3
"""
Memory under hostile floods, against the real gateway (loopback only).

Starts ``twistd -n coap-gateway`` with tight byte bounds, creates a
legitimate device and a hostile one over the API, then runs three floods,
each bounded in datagrams and seconds:

 - ``transfers``: 1,000 Block2 downloads (SZX 0, distinct queries) of
   ``/.well-known/core`` from one port, uploads with bogus tokens, and
   unfinished 64 KiB Block1 uploads by the hostile device from 200 ports;
 - ``observe``: the hostile device registers observations from 400 ports,
   10 tokens each, half of them with 7 KB of Uri-Query options;
 - ``dedup``: 60,000 NON requests of 8 KB from 400 ports.

During each flood (every half second) and after it, the legitimate device
uploads 3 KB of telemetry with Block1, registers an observation of its
attributes and posts telemetry; each must succeed.  RSS (VmRSS) is sampled
every 0.1 s.  The report gives RSS at the start, the peak and the end of
each flood beside the byte bound that applies::

    python scripts/memory_bounds.py                # about a minute
    python scripts/memory_bounds.py --json out.json

Exit status is non-zero if a legitimate exchange failed, the gateway died,
or RSS grew by more than the flood's bound plus ``--slack-mb``.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any, Callable

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from txthings import coap as tx  # noqa: E402

from gateway.coap import codec  # noqa: E402
from gateway.coap import numbers as n  # noqa: E402
from tests.interop.gateway_process import LISTENING  # noqa: E402
from tests.interop.watch import OutputWatcher  # noqa: E402

MIB = 1024 * 1024
#: The bounds the gateway runs with, and which flood each one limits.
BOUNDS = {
    "max_transfer_bytes": 8 * MIB,
    "max_observe_request_bytes": 2048,
    "dedup_bytes": 16 * MIB,
}
FLOOD_BOUND_MB = {
    # Uploads and downloads each have the byte bound.
    "transfers": 2 * BOUNDS["max_transfer_bytes"] / MIB,
    # 10,000 observations at most, each keeping at most 2 KB of options.
    "observe": 10_000 * BOUNDS["max_observe_request_bytes"] / MIB,
    "dedup": BOUNDS["dedup_bytes"] / MIB,
}
LEGIT, HOSTILE = "LEGIT_TOKEN", "HOSTILE_TOKEN"


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


class Gateway:
    """``twistd -n coap-gateway`` in a temporary directory, with tight bounds."""

    def __init__(self, workdir: Path) -> None:
        config = workdir / "gateway.toml"
        config.write_text(
            "[coap]\nbind = \"127.0.0.1\"\nport = 0\n"
            + "".join(f"{key} = {value}\n" for key, value in BOUNDS.items())
            + "[dtls]\nenabled = false\n"
            + f"[api]\nport = 0\n[storage]\ndata_dir = \"{workdir / 'data'}\"\n"
            + "[log]\nlevel = \"warn\"\n"
        )
        env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
        self.proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "twistd"), "-n", "--pidfile=", "coap-gateway",
             "--config", str(config), "--log-level", "info"],
            cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        )
        assert self.proc.stdout is not None
        self.output = OutputWatcher(self.proc.stdout, workdir / "gateway.log")
        match = self.output.wait_until(LISTENING.search, 20.0, "the gateway did not start")
        self.coap_port = int(match["coap_port"])
        self.api = f"http://127.0.0.1:{match['api_port']}"
        self.key = (workdir / "data" / "api-key").read_text().strip()

    def create_device(self, name: str, token: str) -> None:
        credentials = {"type": "access_token", "token": token}
        body = json.dumps({"name": name, "credentials": credentials}).encode()
        request = urllib.request.Request(
            self.api + "/api/v1/devices", data=body, method="POST",
            headers={"Authorization": f"Bearer {self.key}", "Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 201, response.status

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def message(code: int, path: str, mtype: int = n.CON, mid: int = 1, token: bytes = b"",
            payload: bytes = b"", options: tuple[tuple[int, Any], ...] = ()) -> bytes:
    m = tx.Message(mtype=mtype, mid=mid & 0xFFFF, code=code, token=token, payload=payload)
    for segment in path.strip("/").split("/"):
        m.opt.addOption(tx.StringOption(n.URI_PATH, segment.encode()))
    for number, value in options:
        if number in (n.BLOCK1, n.BLOCK2):
            m.opt.addOption(tx.BlockOption(number, value))
        elif isinstance(value, int):
            m.opt.addOption(tx.UintOption(number, value))
        else:
            m.opt.addOption(tx.OpaqueOption(number, value))
    return codec.encode(m)


class Device:
    """The legitimate device: a CON client that retransmits like a real one."""

    def __init__(self, port: int) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.connect(("127.0.0.1", port))
        self.mid = int.from_bytes(os.urandom(2), "big")
        self.failures: list[str] = []
        self.rounds = 0

    def ask(self, code: int, path: str, token: bytes | None = None, **kwargs: Any) -> Any:
        self.mid = (self.mid + 1) & 0xFFFF
        token = token or os.urandom(4)
        data = message(code, path, mid=self.mid, token=token, **kwargs)
        for timeout in (0.5, 1.0, 2.0):
            self.sock.send(data)
            deadline = time.monotonic() + timeout
            while (left := deadline - time.monotonic()) > 0:
                self.sock.settimeout(left)
                try:
                    reply = codec.decode(self.sock.recv(65535))
                except (TimeoutError, socket.timeout):
                    break
                if reply.token == token and reply.code != n.EMPTY:
                    return reply
        raise TimeoutError(f"no answer to {path}")

    def round(self) -> None:
        """Upload with Block1, observe, post: each must succeed."""
        self.rounds += 1
        body = json.dumps({"blob": "x" * 3000, "round": self.rounds}).encode()
        path = f"api/v1/{LEGIT}/telemetry"
        try:
            for num in range(0, (len(body) + 1023) // 1024):
                more = (num + 1) * 1024 < len(body)
                reply = self.ask(n.POST, path, payload=body[num * 1024:(num + 1) * 1024],
                                 options=((n.BLOCK1, (num, more, 6)),))
                expected = n.CONTINUE if more else n.CREATED
                if reply.code != expected:
                    raise AssertionError(f"upload block {num}: {n.code_text(reply.code)}")
            attributes, token = f"api/v1/{LEGIT}/attributes", os.urandom(4)
            reply = self.ask(n.GET, attributes, token, options=((n.OBSERVE, 0),))
            if reply.code != n.CONTENT or reply.opt.getOption(n.OBSERVE) is None:
                raise AssertionError(f"observe: {n.code_text(reply.code)} without Observe")
            self.ask(n.GET, attributes, token, options=((n.OBSERVE, 1),))
            reply = self.ask(n.POST, path, payload=b'{"t":21}')
            if reply.code != n.CREATED:
                raise AssertionError(f"telemetry: {n.code_text(reply.code)}")
        except (AssertionError, TimeoutError, OSError) as e:
            self.failures.append(f"round {self.rounds}: {e}")


def transfers(port: int) -> list[tuple[socket.socket, bytes]]:
    one = _socket(port)
    out = []
    for i in range(1000):
        out.append((one, message(n.GET, ".well-known/core", mid=i, token=b"d",
                                 options=((n.BLOCK2, (0, False, 0)),
                                          (n.URI_QUERY, b"q=%d" % i)))))
    for i in range(40):
        out.append((one, message(n.POST, f"api/v1/BOGUS{i}/telemetry", mid=2000 + i,
                                 token=b"b", payload=b"x" * 1024,
                                 options=((n.BLOCK1, (0, True, 6)),))))
    chunk = b"x" * 1024
    for _ in range(200):
        sock = _socket(port)
        for num in range(64):
            out.append((sock, message(n.POST, f"api/v1/{HOSTILE}/telemetry", mid=num,
                                      token=b"u", payload=chunk,
                                      options=((n.BLOCK1, (num, True, 6)),))))
    return out


def observe(port: int) -> list[tuple[socket.socket, bytes]]:
    out = []
    # 30 queries of 240 bytes: within max_options, 7 KB over the observe bound.
    bloat = tuple((n.URI_QUERY, b"q" * 240) for _ in range(30))
    for _ in range(400):
        sock = _socket(port)
        for t in range(10):
            extra = bloat if t % 2 else ()
            out.append((sock, message(n.GET, f"api/v1/{HOSTILE}/attributes", mid=t,
                                      token=b"o%d" % t, options=((n.OBSERVE, 0), *extra))))
    return out


def dedup(port: int) -> list[tuple[socket.socket, bytes]]:
    socks = [_socket(port) for _ in range(400)]
    payload = b"x" * 8000
    return [(socks[i % 400], message(n.POST, "api/v1/BOGUS/telemetry", mtype=n.NON,
                                     mid=i // 400, token=b"n", payload=payload))
            for i in range(60_000)]


_OPEN: list[socket.socket] = []


def _socket(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # answers are not read
    # The hostile sender is another host: wrong credentials are throttled
    # per source address, and the legitimate device must not share its budget.
    sock.bind(("127.0.0.2", 0))
    sock.connect(("127.0.0.1", port))
    sock.setblocking(False)
    _OPEN.append(sock)
    return sock


def run_flood(name: str, build: Callable[[int], list[tuple[socket.socket, bytes]]],
              gateway: Gateway, device: Device, max_seconds: float) -> dict[str, Any]:
    pid = gateway.proc.pid
    samples: list[float] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            samples.append(rss_mb(pid))
            time.sleep(0.1)

    device.failures, device.rounds = [], 0
    start = rss_mb(pid)
    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    datagrams = build(gateway.coap_port)
    began = time.monotonic()
    next_round = began
    sent = 0
    for sock, data in datagrams:
        if time.monotonic() - began > max_seconds:
            break
        try:
            sock.send(data)
            sent += 1
        except BlockingIOError:
            time.sleep(0.001)
        except OSError:
            pass
        if sent % 100 == 0:
            time.sleep(0.01)  # at most 10,000/s: about what the gateway drains
        if time.monotonic() >= next_round:
            device.round()
            next_round = time.monotonic() + 0.5
    flood_seconds = time.monotonic() - began
    time.sleep(1.0)
    failures_before = len(device.failures)
    device.round()
    stop.set()
    sampler.join()
    for sock in _OPEN:
        sock.close()
    _OPEN.clear()
    return {
        "flood": name, "datagrams": sent, "seconds": round(flood_seconds, 1),
        "rss_start_mb": round(start, 1), "rss_peak_mb": round(max(samples), 1),
        "rss_end_mb": round(rss_mb(pid), 1), "bound_mb": FLOOD_BOUND_MB[name],
        "legit_rounds": device.rounds, "legit_failures": list(device.failures),
        "after_ok": len(device.failures) == failures_before,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Gateway memory under hostile floods (loopback)")
    p.add_argument("--max-seconds", type=float, default=20.0, help="per flood")
    p.add_argument("--slack-mb", type=float, default=24.0,
                   help="RSS growth allowed over a flood's bound (allocator, caches)")
    p.add_argument("--json", default=None, metavar="FILE")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="memory-bounds-") as tmp:
        gateway = Gateway(Path(tmp))
        try:
            gateway.create_device("legit", LEGIT)
            gateway.create_device("hostile", HOSTILE)
            device = Device(gateway.coap_port)
            device.round()
            results = [run_flood(name, build, gateway, device, args.max_seconds)
                       for name, build in (("transfers", transfers), ("observe", observe),
                                           ("dedup", dedup))]
            alive = gateway.proc.poll() is None
            log = gateway.output.text
        finally:
            gateway.stop()
    print("| flood | datagrams | s | RSS start → peak → end MB | bound MB | legit rounds |")
    print("|---|---|---|---|---|---|")
    ok = alive and "Traceback" not in log
    for r in results:
        grown = r["rss_peak_mb"] - r["rss_start_mb"]
        within = grown <= r["bound_mb"] + args.slack_mb
        ok = ok and within and not r["legit_failures"] and r["after_ok"]
        print(f"| {r['flood']} | {r['datagrams']:,} | {r['seconds']} | {r['rss_start_mb']} → "
              f"{r['rss_peak_mb']} → {r['rss_end_mb']} (+{grown:.1f}) | {r['bound_mb']:.0f} | "
              f"{r['legit_rounds']} ({len(r['legit_failures'])} failed) |")
        for failure in r["legit_failures"]:
            print(f"  legitimate device: {failure}")
    print(f"gateway alive: {alive}; tracebacks in its log: {log.count('Traceback')}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
