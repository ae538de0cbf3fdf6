#!/usr/bin/env python3
"""
A bounded flood of spoofed ClientHellos at the real gateway's DTLS port
(loopback only), while real PSK devices handshake and post beside it.

"Spoofed" here: each ClientHello comes from a fresh source (one of 200
loopback addresses 127.42.x.y, a new port each time) that never answers the
HelloVerifyRequest, as a sender forging its address cannot; a share carries a
forged cookie.  The gateway must keep no state for any of them, stay flat in
memory and keep serving the real devices.

    .venv/bin/python scripts/dtls_flood.py                     # 150k hellos at 10k/s, at most 30 s
    .venv/bin/python scripts/dtls_flood.py --count 50000 --max-seconds 10 --json out.json

Prints the counts (sent, HelloVerifyRequests and cookie rejections the gateway
counted, sessions left), RSS start/peak/end, the gateway's CPU per
ClientHello, and the real devices' handshakes and posts during the flood.
The gateway runs on core 0, the flood and the devices on core 1.  Exit
status is non-zero if a flood source got past the cookie check, a real device
failed more than --max-failures of its attempts, or RSS grew by more than
--slack-mb.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "scripts"))

from dtls_client import MemoryClient, handshake  # noqa: E402
from txthings import coap as tx  # noqa: E402

from gateway.coap import codec  # noqa: E402
from gateway.coap import numbers as n  # noqa: E402
from tests.interop.gateway_process import GatewayProcess  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")
#: A short handshake deadline: a real device's handshake lost in the flood is gone by the end.
CONFIG = "[dtls]\nbind = \"127.0.0.1\"\nhandshake_timeout = 5.0\n"


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def hellos(count: int) -> list[bytes]:
    """Distinct first ClientHellos (a new random each), a quarter with a forged cookie."""
    out = []
    for i in range(count):
        hello = MemoryClient(psk=("flood", b"k")).start()[0]
        if i % 4 == 0:
            hello = _with_cookie(hello, os.urandom(16))
        out.append(hello)
    return out


def _with_cookie(hello: bytes, cookie: bytes) -> bytes:
    # record(13) + handshake header(12) + version(2) + random(32) + session id
    at = 13 + 12 + 2 + 32
    at += 1 + hello[at]
    assert hello[at] == 0, "a first ClientHello has no cookie"
    body = hello[13 + 12 :]
    start = at - 25
    body = body[:start] + bytes([len(cookie)]) + cookie + body[start + 1 :]
    length = len(body).to_bytes(3, "big")
    handshake_header = hello[13:14] + length + hello[17:19] + b"\0\0\0" + length
    record = handshake_header + body
    return hello[:11] + len(record).to_bytes(2, "big") + record


class Devices(threading.Thread):
    """Real PSK devices: handshake, POST telemetry, close; again, until stopped."""

    def __init__(self, port: int, identity: str, key: bytes) -> None:
        super().__init__(daemon=True)
        self.port, self.identity, self.key = port, identity, key
        self.stopping = threading.Event()
        self.attempts = self.handshakes = self.posts = 0
        #: Response codes other than 2.01, e.g. "4.29" (CoAP's own answers).
        self.refused: dict[str, int] = {}
        self.latencies: list[float] = []

    def run(self) -> None:
        while not self.stopping.is_set():
            self.attempts += 1
            started = time.monotonic()
            if self._once():
                self.latencies.append(time.monotonic() - started)
            self.stopping.wait(0.2)

    def _once(self) -> bool:
        client = MemoryClient(psk=(self.identity, self.key))
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.connect(("127.0.0.1", self.port))
            if not handshake(client, sock, timeout=10.0):
                return False
            self.handshakes += 1
            try:
                return self._post(client, sock)
            finally:
                for data in client.close():
                    sock.send(data)

    def _post(self, client: MemoryClient, sock: socket.socket) -> bool:
        message = tx.Message(mtype=n.CON, mid=random.getrandbits(16), code=n.POST,
                             payload=b'{"flood":1}')
        message.token = os.urandom(4)
        for segment in ("api", "v1", "telemetry"):
            message.opt.addOption(tx.StringOption(n.URI_PATH, segment.encode()))
        request = client.send(codec.encode(message))
        # A CON retransmitted as RFC 7252 has it: 2 s, then doubling.  An empty
        # ACK means the answer follows as a separate CON (a slow commit).
        acked = False
        for wait in (2.0, 4.0, 8.0, 16.0, 32.0):
            if not acked:
                for data in request:
                    sock.send(data)
            sock.settimeout(wait)
            try:
                while True:
                    for data in client.receive(sock.recv(65536)):
                        sock.send(data)
                    while client.received:
                        answer = codec.decode(client.received.pop(0))
                        if answer.code == 0:
                            acked = True
                            continue
                        if answer.mtype == n.CON:
                            for data in client.send(codec.empty(n.ACK, answer.mid)):
                                sock.send(data)
                        if answer.code != n.CREATED:
                            name = f"{answer.code >> 5}.{answer.code & 31:02d}"
                            self.refused[name] = self.refused.get(name, 0) + 1
                            return False
                        self.posts += 1
                        return True
            except socket.timeout:
                continue
        return False


def flood(port: int, count: int, max_seconds: float, rate: float) -> tuple[int, float]:
    """Send up to C{count} ClientHellos within C{max_seconds}; (sent, seconds)."""
    templates = hellos(64)
    sockets = []
    for i in range(200):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.bind((f"127.42.{i // 100}.{i % 100 + 1}", 0))
        sock.setblocking(False)
        sockets.append(sock)
    target = ("127.0.0.1", port)
    started = time.monotonic()
    deadline = started + max_seconds
    sent = 0
    try:
        while sent < count and time.monotonic() < deadline:
            sock = sockets[sent % len(sockets)]
            if sent % len(sockets) == len(sockets) - 1:
                # A new source port for the next round: the old one is gone.
                host = sock.getsockname()[0]
                sock.close()
                sock = sockets[sent % len(sockets)] = socket.socket(
                    socket.AF_INET, socket.SOCK_DGRAM)
                sock.bind((host, 0))
                sock.setblocking(False)
            try:
                sock.sendto(templates[sent % len(templates)], target)
            except BlockingIOError:
                time.sleep(0.0005)
                continue
            sent += 1
            if rate and sent % 100 == 0:
                ahead = sent / rate - (time.monotonic() - started)
                if ahead > 0:
                    time.sleep(ahead)
    finally:
        for sock in sockets:
            sock.close()
    return sent, time.monotonic() - started


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="bounded spoofed-ClientHello flood (loopback)")
    p.add_argument("--count", type=int, default=150_000, help="ClientHellos to send at most")
    p.add_argument("--max-seconds", type=float, default=30.0, help="flood for at most this long")
    p.add_argument("--rate", type=float, default=10_000,
                   help="hellos per second (0 = as fast as the sender can)")
    p.add_argument("--settle", type=float, default=6.0,
                   help="seconds to watch after the flood (past the 5 s handshake deadline)")
    p.add_argument("--max-failures", type=float, default=0.1,
                   help="largest share of real device attempts allowed to fail")
    p.add_argument("--slack-mb", type=float, default=10.0)
    p.add_argument("--json", default=None, metavar="FILE")
    args = p.parse_args(argv)

    workdir = Path(tempfile.mkdtemp(prefix="dtls-flood-"))
    gateway = GatewayProcess.start(workdir, config=CONFIG)
    pid = gateway.proc.pid
    pinned = hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) >= 2
    own_cpus = os.sched_getaffinity(0) if pinned else set()
    try:
        if pinned:
            os.sched_setaffinity(pid, {0})
            os.sched_setaffinity(0, {1})
        key = b"flood-device-key"
        gateway.api_ok("POST", "/api/v1/devices", {
            "name": "flood-device",
            "credentials": {"type": "psk", "identity": "flood-device", "key": key.hex()},
        })
        devices = Devices(gateway.dtls_port, "flood-device", key)
        devices.start()
        time.sleep(1.0)  # a few handshakes before the flood, and a warm process
        quiet = (devices.attempts, devices.posts)
        before = gateway.api_ok("GET", "/api/v1/dtls")
        rss_start = rss_mb(pid)
        cpu_start = cpu_seconds(pid)
        peak = rss_start
        sampling = threading.Event()

        def sample() -> None:
            nonlocal peak
            while not sampling.wait(0.1):
                peak = max(peak, rss_mb(pid))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        attempts0, posts0 = devices.attempts, devices.posts
        sent, seconds = flood(gateway.dtls_port, args.count, args.max_seconds, args.rate)
        during = (devices.attempts - attempts0, devices.posts - posts0)
        time.sleep(args.settle)
        cpu = cpu_seconds(pid) - cpu_start
        devices.stopping.set()
        devices.join(15)
        sampling.set()
        sampler.join()
        after = gateway.api_ok("GET", "/api/v1/dtls")
        rss_end = rss_mb(pid)
    finally:
        gateway.stop()
        if pinned:
            os.sched_setaffinity(0, own_cpus)
    verify = after["hello_verify_requests"] - before["hello_verify_requests"]
    rejected = after["cookie_rejections"] - before["cookie_rejections"]
    real_handshakes = after["handshakes"]["psk"]["ok"] - before["handshakes"]["psk"]["ok"]
    failed = after["handshakes"]["psk"]["failed"] - before["handshakes"]["psk"]["failed"]
    report: dict[str, Any] = {
        "sent": sent,
        "seconds": round(seconds, 2),
        "sent_per_second": round(sent / seconds) if seconds else 0,
        "gateway_hello_verify_requests": verify,
        "gateway_cookie_rejections": rejected,
        "gateway_not_client_hello": after["not_client_hello"] - before["not_client_hello"],
        "gateway_handshakes_ok": real_handshakes,
        # Only a flood hello that passed the cookie check could fail a handshake
        # (its identity is unknown): so this must be 0.
        "gateway_handshakes_failed": failed,
        # Real devices' sessions whose close_notify the flood made the kernel drop
        # (they end at the inactivity timeout); none handshaking.
        "sessions_after": after["sessions"],
        # Each real device attempt had its own HelloVerifyRequest too.
        "flood_hellos_unanswered": max(0, sent - (verify - devices.attempts)),
        "gateway_cpu_us_per_hello": round(cpu / max(verify + real_handshakes, 1) * 1e6, 1),
        "rss_mb": {"start": round(rss_start, 1), "peak": round(peak, 1), "end": round(rss_end, 1)},
        "real_devices": {
            "before_flood": {"attempts": quiet[0], "posts_ok": quiet[1]},
            "during_flood": {"attempts": during[0], "posts_ok": during[1]},
            "total": {"attempts": devices.attempts, "handshakes": devices.handshakes,
                      "posts_ok": devices.posts},
            "max_latency_s": round(max(devices.latencies), 3) if devices.latencies else None,
            "refused": devices.refused,
        },
    }
    print(json.dumps(report, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))
    failures = devices.attempts - devices.posts
    ok = (
        failed == 0
        and after["sessions"]["handshaking"] == 0
        and failures <= args.max_failures * max(devices.attempts, 1)
        and during[1] > 0
        and rss_end - rss_start <= args.slack_mb
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
