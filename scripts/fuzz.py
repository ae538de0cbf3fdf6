#!/usr/bin/env python3
"""
Network fuzzer for a running CoAP server (loopback only).

Sends random and mutated datagrams -- mutations of valid GET/POST/PUT/DELETE
requests with Observe, Block1/Block2, Uri-Query and option 4209, bit flips,
truncation, extension, option nibbles 13/14/15, TKL 9..15, random bytes,
hostile shapes (datagrams around and past 8,192 bytes, option floods,
block-wise and observe floods with fresh queries and tokens), and every
reproducer from the txThings audit (§5) -- from several source sockets.
Every 1,000 datagrams a liveness probe (a valid CON GET /telemetry, resent
with the same MID after 0.5 s and 1 s) must get its 2.05 within 2 s.  The
default pace (5,000/s) stays below what the engine handles; with ``--rate 0``
the kernel drops datagrams when the server's receive buffer is full, and the
report says how many (``kernel_rcvbuf_drops``, host-wide ``RcvbufErrors``).

By default it starts our engine (``bench_servers.py gateway``, logging with
``twisted.logger`` to a file) on core 0 and fuzzes it from core 1::

    python scripts/fuzz.py                       # 100,000 datagrams, <= 120 s
    python scripts/fuzz.py --count 20000 --seed 7
    python scripts/fuzz.py --target 127.0.0.1:5683 [--pid N] [--log FILE]

Exit status is non-zero when a probe failed, the server died, or its log has
a traceback.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import random
import re
import select
import socket
import struct
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench  # noqa: E402
from loadgen import encode_options, uint_bytes  # noqa: E402

# Option numbers used in the seeds.
OBSERVE, URI_PATH, CONTENT_FORMAT, URI_QUERY, ACCEPT = 6, 11, 12, 15, 17
BLOCK2, BLOCK1, SIZE2, SIZE1, ETAG, IF_MATCH, PROXY_URI = 23, 27, 28, 60, 4, 1, 35


def _msg(mtype: int, code: int, mid: int, token: bytes, options: list[tuple[int, bytes]],
         payload: bytes = b"") -> bytes:
    head = bytes([0x40 | mtype << 4 | len(token), code]) + struct.pack("!H", mid) + token
    body = encode_options(options)
    if payload:
        body += b"\xff" + payload
    return head + body


def _block(num: int, more: bool, szx: int) -> bytes:
    return uint_bytes(num << 4 | (8 if more else 0) | szx)


def seed_messages() -> list[bytes]:
    """About twenty valid messages that the mutators start from."""
    tel = [(URI_PATH, b"telemetry")]
    j = b'{"t":21.5,"h":40}'
    return [
        _msg(0, 1, 0x1001, b"\x01\x02", tel),                                     # CON GET
        _msg(1, 1, 0x1002, b"\x03", tel),                                         # NON GET
        _msg(0, 1, 0x1003, b"abcdefgh", tel + [(URI_QUERY, b"a=1"), (URI_QUERY, b"b=2")]),
        _msg(0, 1, 0x1004, b"\x05\x06", tel + [(OBSERVE, b"")]),                  # observe
        _msg(0, 1, 0x1005, b"\x05\x06", tel + [(OBSERVE, b"\x01")]),              # deregister
        _msg(0, 1, 0x1006, b"\x07", tel + [(BLOCK2, _block(0, False, 2))]),
        _msg(0, 1, 0x1007, b"\x07", tel + [(BLOCK2, _block(5, False, 6)), (SIZE2, b"")]),
        _msg(0, 2, 0x1008, b"\x08\x09", tel + [(CONTENT_FORMAT, b"\x32")], j),   # POST json
        _msg(0, 2, 0x1009, b"\x0a", tel + [(BLOCK1, _block(0, True, 0)), (SIZE1, b"\x40")],
             bytes(16)),
        _msg(0, 2, 0x100A, b"\x0a", tel + [(BLOCK1, _block(1, False, 0))], b"tail"),
        _msg(0, 3, 0x100B, b"\x0b", tel + [(CONTENT_FORMAT, b"")], b"21.5"),     # PUT
        _msg(0, 4, 0x100C, b"\x0c", tel),                                         # DELETE
        _msg(0, 1, 0x100D, b"\x0d", tel + [(4209, b"abc"), (4210, b"\x01\x02")]),
        _msg(0, 1, 0x100E, b"\x0e", [(URI_PATH, b".well-known"), (URI_PATH, b"core")]),
        _msg(0, 1, 0x100F, b"\x0f", tel + [(ACCEPT, b"\x32"), (ETAG, b"\x01\x02\x03\x04")]),
        _msg(0, 3, 0x1010, b"\x10", tel + [(IF_MATCH, b"\x01")], b"x"),
        _msg(0, 1, 0x1011, b"", [(PROXY_URI, b"coap://127.0.0.1/telemetry")]),
        _msg(0, 0, 0x1012, b"", []),                                              # ping
        _msg(2, 0, 0x1013, b"", []),                                              # empty ACK
        _msg(3, 0, 0x1014, b"", []),                                              # RST
        _msg(0, 2, 0x1015, b"\x11\x22\x33\x44", [(URI_PATH, b"api"), (URI_PATH, b"v1"),
                                                 (URI_PATH, b"tok"), (URI_PATH, b"telemetry")], j),
    ]


#: txthings-audit.md §5, single-datagram reproducers, plus a few from §2.
REPRODUCERS_SINGLE = [
    "", "400100", "00000000", "60000000f0", "400000001d", "40000000e0", "70040000",
    "4103000000b6000000000000d10310",
    "4101000000b6000000000000d5033600000000",
    "4103000101b675706c6f6164dd030001010101010101010101010101ff78",
    "4103515101b675706c6f6164d003ff616263",
    # §2: payload marker without payload, TKL 9 and 15, reserved classes, a
    # request inside an ACK, unknown critical options 9 / 4209 / 65001.
    "40010001ff", "4901000201020304050607080900", "4f010003" + "00" * 15,
    "40200004", "40c00005", "40e00006", "60010007b974656c656d65747279",
    "40010008" + "9100" + "29" + b"telemetry".hex(),
    "40010009b974656c656d65747279" + "e1" + struct.pack("!H", 4209 - 11 - 269).hex() + "61",
    "4001000ab974656c656d65747279" + "e1" + struct.pack("!H", 65001 - 11 - 269).hex() + "61",
    "4005000bb974656c656d65747279", "401f000cb974656c656d65747279",
]
#: §5 stateful reproducers: each group is sent in order from one socket.
REPRODUCERS_STATEFUL = [
    ["4101000101b56c61726765", "4101000201b56c61726765c152"],
    ["4101000101b56c61726765", "4101000202b56c61726765"],
    ["4103000101b675706c6f6164d10308ff30313233343536373839616263646566",
     "4103000201b675706c6f6164d10310"],
    # The same on /telemetry, which exists on the bench server.
    ["4101000101b974656c656d65747279c102", "4101000201b974656c656d65747279c152"],
    ["4102000101b974656c656d65747279d10308ff30313233343536373839616263646566",
     "4102000201b974656c656d65747279d10310"],
]


class Mutator:
    def __init__(self, rng: random.Random, seeds: list[bytes]) -> None:
        self.rng = rng
        self.seeds = seeds
        self.ops = [
            (self.bit_flip, 4), (self.byte_set, 3), (self.truncate, 2), (self.extend, 2),
            (self.option_nibble, 3), (self.bad_tkl, 2), (self.random_bytes, 2),
            (self.splice, 1), (self.header, 2), (self.valid, 1), (self.stack, 2),
            # Hostile shapes (issue 15): sizes and counts, not format errors.
            (self.large, 1), (self.option_flood, 1), (self.block_flood, 2),
            (self.observe_flood, 2),
        ]
        self.weights = [w for _, w in self.ops]
        self.counts: collections.Counter[str] = collections.Counter()

    def next(self) -> bytes:
        op = self.rng.choices(self.ops, self.weights)[0][0]
        self.counts[op.__name__] += 1
        base = self.rng.choice(self.seeds)
        return op(bytearray(base))

    def _r(self, n: int) -> int:
        return self.rng.randrange(n) if n > 0 else 0

    def valid(self, b: bytearray) -> bytes:
        b[2:4] = self._r(65536).to_bytes(2, "big")
        return bytes(b)

    def bit_flip(self, b: bytearray) -> bytes:
        for _ in range(1 + self._r(8)):
            if b:
                i = self._r(len(b))
                b[i] ^= 1 << self._r(8)
        return bytes(b)

    def byte_set(self, b: bytearray) -> bytes:
        for _ in range(1 + self._r(4)):
            if b:
                b[self._r(len(b))] = self.rng.choice((0, 0xFF, 0x0D, 0x0E, 0x0F, 0xD0, 0xE0,
                                                      0xF0, 0xFF, self._r(256)))
        return bytes(b)

    def truncate(self, b: bytearray) -> bytes:
        return bytes(b[: self._r(len(b) + 1)])

    def extend(self, b: bytearray) -> bytes:
        if self._r(2):
            tail = os.urandom(1 + self._r(64))
        else:
            tail = bytes([self._r(256)]) * (1 + self._r(300))
        return bytes(b) + tail

    def option_nibble(self, b: bytearray) -> bytes:
        """Insert an option byte with delta/length nibble 13, 14 or 15."""
        tkl = b[0] & 15 if b else 0
        at = min(len(b), 4 + min(tkl, 8))
        at += self._r(len(b) - at + 1)
        d = self.rng.choice((13, 14, 15, self._r(16)))
        ln = self.rng.choice((13, 14, 15, self._r(16)))
        ext = os.urandom(self._r(4))
        return bytes(b[:at]) + bytes([d << 4 | ln]) + ext + bytes(b[at:])

    def bad_tkl(self, b: bytearray) -> bytes:
        if b:
            b[0] = (b[0] & 0xF0) | (9 + self._r(7))
        return bytes(b)

    def random_bytes(self, b: bytearray) -> bytes:
        data = os.urandom(self._r(80))
        if data and self._r(2):
            # Mostly version 1, to get past the first check.
            data = bytes([0x40 | (data[0] & 0x3F)]) + data[1:]
        return data

    def splice(self, b: bytearray) -> bytes:
        other = self.rng.choice(self.seeds)
        return bytes(b[: self._r(len(b) + 1)]) + other[self._r(len(other) + 1):]

    def header(self, b: bytearray) -> bytes:
        if len(b) >= 2:
            if self._r(2):
                b[0] = (b[0] & 0xCF) | (self._r(4) << 4)  # message type
            else:
                b[1] = self._r(256)  # code
        return bytes(b)

    def large(self, b: bytearray) -> bytes:
        """A request padded to around the engine's 8,192-byte datagram limit, or past it."""
        size = self.rng.choice((8191, 8192, 8193, 9062, 16384, 65000))
        return bytes(b) + b"\xff" + bytes(max(1, size - len(b) - 1))

    def option_flood(self, b: bytearray) -> bytes:
        """Many empty (or tiny) Uri-Query options: around and far past max_options."""
        count = self.rng.choice((63, 64, 65, 500, 4000))
        token = os.urandom(self._r(9))
        return _msg(self._r(2), 1, self._r(65536), token,
                    [(URI_PATH, b"telemetry")] + [(URI_QUERY, b"")] * count)

    def block_flood(self, b: bytearray) -> bytes:
        """Block2 at SZX 0 with a fresh query, or a Block1 block 0: a new transfer each."""
        query = (URI_QUERY, b"q=%d" % self._r(1 << 30))
        path = self.rng.choice((b"telemetry", b".well-known"))
        options = [(URI_PATH, path), query]
        if self._r(2):
            return _msg(0, 1, self._r(65536), b"\x01", options + [(BLOCK2, _block(0, False, 0))])
        return _msg(0, 2, self._r(65536), b"\x02", options + [(BLOCK1, _block(0, True, 6))],
                    bytes(1024))

    def observe_flood(self, b: bytearray) -> bytes:
        """An Observe registration with a fresh token, sometimes with bulky queries."""
        options = [(OBSERVE, b""), (URI_PATH, b"telemetry")]
        if self._r(2):
            options += [(URI_QUERY, b"q" * 250)] * (1 + self._r(30))
        return _msg(self._r(2), 1, self._r(65536), os.urandom(1 + self._r(8)), options)

    def stack(self, b: bytearray) -> bytes:
        data = bytes(b)
        for _ in range(2 + self._r(3)):
            op = self.rng.choice(self.ops[:7])[0]
            data = op(bytearray(data))
        return data


class Probe:
    """A valid CON GET /telemetry that must be answered with 2.05 in time."""

    def __init__(self, host: str, port: int, family: int, path: str) -> None:
        self.sock = socket.socket(family, socket.SOCK_DGRAM)
        self.sock.connect((host, port))
        self.path = path
        self.mid = random.randrange(65536)
        self.ok = 0
        self.failed = 0
        self.failures: list[str] = []
        self.latencies: list[float] = []
        self.retransmissions = 0

    def check(self, timeout: float = 2.0) -> bool:
        """
        Send the GET (again, with the same MID, after 0.5 s and 1 s, as a
        client would) and wait up to C{timeout} for its 2.05.
        """
        self.mid = (self.mid + 1) & 0xFFFF
        token = os.urandom(4)
        req = _msg(0, 1, self.mid, token, [(URI_PATH, self.path.encode())])
        drops0 = udp_rcvbuf_errors()
        t0 = time.monotonic()
        self.sock.send(req)
        resend = [t0 + 0.5, t0 + 1.0]
        deadline = t0 + timeout
        why = "no answer in %.1f s" % timeout
        while True:
            now = time.monotonic()
            left = deadline - now
            if left <= 0:
                why += f" (kernel dropped {udp_rcvbuf_errors() - drops0} datagrams meanwhile)"
                break
            if resend and now >= resend[0]:
                resend.pop(0)
                self.retransmissions += 1
                self.sock.send(req)
            wait = min(left, resend[0] - now) if resend else left
            r, _, _ = select.select([self.sock], [], [], max(0.0, wait))
            if not r:
                continue
            try:
                data = self.sock.recv(4096)
            except ConnectionRefusedError:
                why = "connection refused (server gone?)"
                break
            if len(data) < 8:
                continue
            if data[0] >> 4 & 3 == 2 and data[2:4] == req[2:4] and data[4:8] == token:
                if data[1] == 0x45:
                    self.ok += 1
                    self.latencies.append(time.monotonic() - t0)
                    return True
                why = f"code {data[1] >> 5}.{data[1] & 31:02d}"
                break
        self.failed += 1
        self.failures.append(why)
        return False


def udp_rcvbuf_errors() -> int:
    """Datagrams the kernel dropped host-wide because a receive buffer was full."""
    try:
        with open("/proc/net/snmp") as f:
            rows = [line.split() for line in f if line.startswith("Udp:")]
        return int(rows[1][rows[0].index("RcvbufErrors")])
    except (OSError, IndexError, ValueError):
        return 0


def _count_log(path: str | None) -> dict[str, int]:
    counts = {"Unhandled": 0, "Traceback": 0, "error": 0, "lines": 0}
    if not path or not os.path.exists(path):
        return counts
    with open(path, errors="replace") as f:
        for line in f:
            counts["lines"] += 1
            if "Unhandled" in line:
                counts["Unhandled"] += 1
            if "Traceback" in line:
                counts["Traceback"] += 1
            if re.search(r"error", line, re.IGNORECASE):
                counts["error"] += 1
    return counts


def _rss_mb(pid: int | None) -> float | None:
    if pid is None:
        return None
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        return None
    return None


def run(host: str, port: int, pid: int | None, log: str | None, count: int,
        max_seconds: float, seed: int, sockets: int, rate: float, path: str,
        dump: str | None) -> dict[str, Any]:
    rng = random.Random(seed)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    socks = []
    for _ in range(sockets):
        s = socket.socket(family, socket.SOCK_DGRAM)
        s.setblocking(False)
        s.connect((host, port))
        socks.append(s)
    probe = Probe(host, port, family, path)
    mut = Mutator(rng, seed_messages())

    recent: collections.deque[str] = collections.deque(maxlen=1000)
    sent = received = send_errors = 0
    rss = [_rss_mb(pid)]
    drops0 = udp_rcvbuf_errors()
    start = time.monotonic()
    alive = probe.check()

    def send(sock: socket.socket, data: bytes) -> None:
        nonlocal sent, send_errors
        try:
            sock.send(data)
        except OSError:
            send_errors += 1
        sent += 1
        recent.append(data.hex())

    def drain() -> None:
        nonlocal received
        for s in socks:
            while True:
                try:
                    s.recv(4096)
                except (BlockingIOError, ConnectionRefusedError):
                    break
                received += 1

    # Reproducers first, then each again after every 10,000 datagrams.
    def reproducers() -> None:
        for h in REPRODUCERS_SINGLE:
            send(rng.choice(socks), bytes.fromhex(h))
        for group in REPRODUCERS_STATEFUL:
            s = rng.choice(socks)
            for h in group:
                send(s, bytes.fromhex(h))
        drain()

    reproducers()
    next_probe = 1000
    next_repro = 10000
    stopped_by = "count"
    while sent < count:
        now = time.monotonic()
        if now - start >= max_seconds:
            stopped_by = "time"
            break
        # Pace to ``rate`` datagrams per second, in bursts of up to 50.
        due = int((now - start) * rate) - sent if rate > 0 else 50
        if due <= 0:
            time.sleep(0.001)
            drain()
            continue
        for _ in range(min(due, 50, count - sent)):
            send(socks[sent % len(socks)], mut.next())
        drain()
        if sent >= next_probe:
            next_probe += 1000
            if not probe.check():
                print(f"# probe failed after {sent} datagrams: {probe.failures[-1]}",
                      file=sys.stderr)
                if dump:
                    Path(dump).write_text("\n".join(recent) + "\n")
            rss.append(_rss_mb(pid))
        if sent >= next_repro:
            next_repro += 10000
            reproducers()
    elapsed = time.monotonic() - start
    time.sleep(0.5)
    drain()
    final_ok = probe.check()
    rss.append(_rss_mb(pid))
    for s in socks:
        s.close()
    server_alive = True
    if pid is not None:
        server_alive = os.path.exists(f"/proc/{pid}") and _rss_mb(pid) is not None
    rss_known = [r for r in rss if r is not None]
    lat = sorted(probe.latencies)
    return {
        "target": f"{host}:{port}",
        "seed": seed,
        "datagrams_sent": sent,
        "send_errors": send_errors,
        "responses_received": received,
        "seconds": round(elapsed, 1),
        "datagrams_per_s": round(sent / max(elapsed, 1e-9)),
        "stopped_by": stopped_by,
        "probes_ok": probe.ok,
        "probes_failed": probe.failed,
        "probe_retransmissions": probe.retransmissions,
        "kernel_rcvbuf_drops": udp_rcvbuf_errors() - drops0,
        "probe_failures": probe.failures[:10],
        "probe_p50_ms": round(1000 * lat[len(lat) // 2], 2) if lat else None,
        "probe_max_ms": round(1000 * lat[-1], 2) if lat else None,
        "initial_probe_ok": alive,
        "final_probe_ok": final_ok,
        "server_alive": server_alive,
        "rss_start_mb": round(rss_known[0], 1) if rss_known else None,
        "rss_peak_mb": round(max(rss_known), 1) if rss_known else None,
        "rss_end_mb": round(rss_known[-1], 1) if rss_known else None,
        "log": log,
        "log_counts": _count_log(log),
        "mutations": dict(mut.counts),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="CoAP datagram fuzzer (loopback only)")
    p.add_argument("--target", default=None, help="host:port of a running server")
    p.add_argument("--pid", type=int, default=None, help="server pid (with --target), for RSS")
    p.add_argument("--log", default=None, help="server log file to count errors in")
    p.add_argument("--server", default="gateway",
                   help="bench server to start when no --target (default gateway)")
    p.add_argument("--count", type=int, default=100_000)
    p.add_argument("--max-seconds", type=float, default=120.0)
    p.add_argument("--rate", type=float, default=5000.0, help="datagrams/s (0 = flat out)")
    p.add_argument("--sockets", type=int, default=16)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--path", default="telemetry", help="resource for the liveness probe")
    p.add_argument("--dump", default=None,
                   help="write the last 1,000 datagrams (hex) here when a probe fails")
    p.add_argument("--json", default=None, metavar="FILE")
    a = p.parse_args(argv)
    seed = a.seed if a.seed is not None else random.randrange(1 << 31)

    bench.pin_generator()
    srv = None
    log = a.log
    if a.target:
        host, _, port_s = a.target.rpartition(":")
        host = host.strip("[]")
        if host not in ("127.0.0.1", "::1", "localhost"):
            p.error("loopback targets only")
        port, pid = int(port_s), a.pid
    else:
        server = {s.name: s for s in bench.SERVERS}[a.server]
        if not server.available():
            p.error(f"{a.server} is not available")
        if log is None:
            fd, log = tempfile.mkstemp(prefix=f"fuzz-{a.server}-", suffix=".log")
            os.close(fd)
        extra = ["--log", log] if a.server in ("gateway", "txthings") else []
        srv = bench.Running(server, log_path=None if extra else log, extra_args=extra)
        host, port, pid = "127.0.0.1", srv.port, srv.pid
    try:
        res = run(host, port, pid, log, a.count, a.max_seconds, seed, a.sockets, a.rate,
                  a.path, a.dump)
    finally:
        if srv is not None:
            srv.stop()
    if srv is not None:
        res["log_counts"] = _count_log(log)  # after shutdown, everything is flushed
    json.dump(res, sys.stdout, indent=2)
    sys.stdout.write("\n")
    if a.json:
        Path(a.json).write_text(json.dumps(res, indent=2))
    failed = (res["probes_failed"] > 0 or not res["final_probe_ok"] or not res["server_alive"]
              or res["log_counts"]["Traceback"] > 0)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
