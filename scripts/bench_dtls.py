#!/usr/bin/env python3
"""
The DTLS rows of ``make bench`` (``bench.py`` runs them after the CoAP rows,
or alone with ``bench.py --only dtls``).

The server is ``bench_servers.py gateway-dtls`` on core 0: our engine's
/telemetry behind the DTLS transport, and the same engine on a plain UDP
port.  The clients are ``dtls_client.MemoryClient`` (pyOpenSSL memory BIOs)
on loopback sockets, driven by one selector loop on core 1.  Server cost is
its own CPU time (``/proc/<pid>/stat``) over the operations completed, so it
does not depend on the client's speed; capacity per core is its inverse.

 - full handshakes per second per core: PSK, ECDHE-ECDSA one-way (the client
   checks the server's certificate), ECDHE-ECDSA mutual (a registered client
   certificate); each handshake includes the cookie round trip and the
   close_notify, 8 in flight;
 - CPU per request: CON POST /telemetry at 8,000 requests/s over 8
   established PSK sessions, beside the same POSTs at the same rate in plain
   CoAP to the same engine; the difference is what DTLS adds;
 - RSS per established PSK session: server RSS with 5,000 sessions open
   minus RSS with none, over 5,000.

Targets (issue 8): PSK >= 1,500 handshakes/s per core, <= 15 us added per
request, <= 80 KB per session.
"""

from __future__ import annotations

import os
import selectors
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Optional

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench  # noqa: E402
import bench_servers  # noqa: E402
from dtls_client import MemoryClient  # noqa: E402

from gateway.dtls import certs  # noqa: E402

__all__ = ["run_dtls", "render_dtls", "TARGETS"]

TARGETS = {"psk_handshakes_per_core": 1500, "added_us_per_request": 15.0, "kb_per_session": 80.0}
SESSIONS = 5_000
IN_FLIGHT = 8
#: Requests per second for the CPU-per-request rows (both at the same load).
RATE = 8_000.0

#: CON POST /telemetry, token of 4 bytes; MID at [2:4], token at [4:8].
_POST = bytearray(bytes([0x44, 0x02, 0, 0]) + bytes(4) + bytes([0xB9]) + b"telemetry"
                  + bytes([0x11, 50, 0xFF]) + b'{"t":21.5,"h":40}')


def _pki(directory: Path) -> dict[str, bytes]:
    ca = certs.make_ca()
    server = certs.make_server(ca)
    device = certs.make_device("bench-device")
    certs.write_pem(directory / "server.pem", certs.cert_pem(server.cert, ca.cert))
    certs.write_pem(directory / "server.key", certs.key_pem(server.key), private=True)
    certs.write_pem(directory / "device.pem", certs.cert_pem(device.cert))
    return {"ca": certs.cert_pem(ca.cert), "cert": certs.cert_pem(device.cert),
            "key": certs.key_pem(device.key)}


def _clients(pki: dict[str, bytes]) -> dict[str, Callable[[], MemoryClient]]:
    psk = (bench_servers.DTLS_PSK_IDENTITY, bench_servers.DTLS_PSK_KEY)
    return {
        "psk": lambda: MemoryClient(psk=psk),
        "ecdsa one-way": lambda: MemoryClient(ca=pki["ca"]),
        "ecdsa mutual": lambda: MemoryClient(certificate=(pki["cert"], pki["key"]), ca=pki["ca"]),
    }


class _Flow:
    __slots__ = ("sock", "client", "since")

    def __init__(self, port: int, client: MemoryClient) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.connect(("127.0.0.1", port))
        self.sock.setblocking(False)
        self.client = client
        self.since = time.monotonic()

    def send(self, datagrams: list[bytes]) -> None:
        for data in datagrams:
            try:
                self.sock.send(data)
            except BlockingIOError:
                pass


def handshakes(port: int, make: Callable[[], MemoryClient], *, count: int = 0,
               duration: float = 0.0, keep_open: bool = False,
               in_flight: int = IN_FLIGHT) -> tuple[int, int, list[_Flow]]:
    """
    Full handshakes, C{in_flight} at a time, until C{count} are done or
    C{duration} has passed; (done, failed, the flows kept open).
    """
    sel = selectors.DefaultSelector()
    deadline = time.monotonic() + duration if duration else float("inf")
    done = failed = started = 0
    kept: list[_Flow] = []

    def start() -> None:
        nonlocal started
        flow = _Flow(port, make())
        sel.register(flow.sock, selectors.EVENT_READ, flow)
        flow.send(flow.client.start())
        started += 1

    def wanted() -> bool:
        return (not count or started < count) and time.monotonic() < deadline

    for _ in range(in_flight):
        if wanted():
            start()
    while sel.get_map():
        for key, _ in sel.select(timeout=0.2):
            flow: _Flow = key.data
            try:
                data = flow.sock.recv(65536)
            except BlockingIOError:
                continue
            flow.since = time.monotonic()
            flow.send(flow.client.receive(data))
            if flow.client.established or flow.client.failed is not None:
                sel.unregister(flow.sock)
                if flow.client.established:
                    done += 1
                    if keep_open:
                        kept.append(flow)
                    else:
                        flow.send(flow.client.close())
                        flow.sock.close()
                else:
                    failed += 1
                    flow.sock.close()
                if wanted():
                    start()
        now = time.monotonic()
        for key in list(sel.get_map().values()):
            flow = key.data
            if now - flow.since > 5.0:
                sel.unregister(flow.sock)
                flow.sock.close()
                failed += 1
                if wanted():
                    start()
            elif now - flow.since > 1.0:
                flow.since = now
                flow.send(flow.client.retransmit())
    return done, failed, kept


def requests(port: int, flows: Optional[list[_Flow]], duration: float,
             rate: float = RATE, lanes: int = 8) -> int:
    """
    CON POSTs sent at a fixed C{rate} for C{duration}, round robin over the
    DTLS C{flows} or (None) over C{lanes} plain sockets; the responses
    counted.  A fixed rate, not a window: per-request CPU depends on the
    load (wake-ups are shared by the datagrams a read finds), so plain CoAP
    and DTLS are compared at the same one.
    """
    sel = selectors.DefaultSelector()
    plain = flows is None
    lanes_ = [_Flow(port, None) for _ in range(lanes)] if flows is None else flows
    for flow in lanes_:
        sel.register(flow.sock, selectors.EVENT_READ, flow)
    message = bytearray(_POST)
    sent = responses = 0
    batch = max(1, int(rate / 1000))
    start = time.monotonic()
    deadline = start + duration
    next_send = start
    while True:
        now = time.monotonic()
        if now >= deadline + 0.2:
            break
        while now < deadline and now >= next_send:
            for _ in range(batch):
                sent += 1
                message[2:4] = (sent & 0xFFFF).to_bytes(2, "big")
                message[4:8] = sent.to_bytes(4, "big")
                flow = lanes_[sent % len(lanes_)]
                flow.send([bytes(message)] if plain else flow.client.send(bytes(message)))
            next_send += batch / rate
        for key, _ in sel.select(timeout=max(0.0, min(next_send, deadline + 0.2) - now)):
            flow = key.data
            try:
                data = flow.sock.recv(65536)
            except BlockingIOError:
                continue
            if plain:
                responses += 1
            else:
                flow.client.receive(data)
                responses += len(flow.client.received)
                flow.client.received.clear()
    for key in list(sel.get_map().values()):
        sel.unregister(key.fileobj)
    if plain:
        for flow in lanes_:
            flow.sock.close()
    return responses


def run_dtls(duration: float, warmup: float, sessions: int = SESSIONS) -> dict[str, Any]:
    """Every DTLS row; each on a fresh server process."""
    bench.pin_generator()
    workdir = Path(tempfile.mkdtemp(prefix="bench-dtls-"))
    pki = _pki(workdir)
    server = bench.Server(
        "gateway-dtls",
        lambda port: [sys.executable, str(HERE / "bench_servers.py"), "gateway-dtls", "--port",
                      str(port), "--pki", str(workdir)],
        note="our engine behind the DTLS transport (memory credentials)",
    )
    out: dict[str, Any] = {"handshakes": {}, "requests": {}, "memory": {}}
    for mode, make in _clients(pki).items():
        srv = bench.Running(server)
        try:
            handshakes(srv.port, make, duration=warmup)
            meter = bench.Meter(srv)
            t0 = time.monotonic()
            done, failed, _ = handshakes(srv.port, make, duration=duration)
            seconds = time.monotonic() - t0
            figures = meter.figures(done)
            us = figures["server_us_per_req"]
            out["handshakes"][mode] = {
                "done": done, "failed": failed, "per_s": round(done / seconds, 1),
                "server_us_per_handshake": us,
                "per_core": round(1e6 / us) if us else None,
                **{k: figures[k] for k in ("server_cpu_pct", "generator_cpu_pct",
                                           "disturbance_pct", "steal_pct")},
            }
        finally:
            srv.stop()
    srv = bench.Running(server)
    try:
        assert srv.plain_port is not None, "gateway-dtls printed no PLAIN port"
        make = _clients(pki)["psk"]
        _, _, flows = handshakes(srv.port, make, count=8, keep_open=True)
        for name, port, lanes in (("coap", srv.plain_port, None), ("dtls psk", srv.port, flows)):
            requests(port, lanes, warmup)
            meter = bench.Meter(srv)
            t0 = time.monotonic()
            responses = requests(port, lanes, duration)
            figures = meter.figures(responses)
            out["requests"][name] = {
                "responses": responses,
                "per_s": round(responses / (time.monotonic() - t0)),
                "server_us_per_request": figures["server_us_per_req"],
                "disturbance_pct": figures["disturbance_pct"],
            }
        coap = out["requests"]["coap"]["server_us_per_request"]
        psk = out["requests"]["dtls psk"]["server_us_per_request"]
        out["requests"]["added_us"] = round(psk - coap, 1) if coap and psk else None
    finally:
        srv.stop()
    srv = bench.Running(server)
    try:
        make = _clients(pki)["psk"]
        handshakes(srv.port, make, count=50)  # warm: first-use allocations
        time.sleep(0.5)
        rss0 = srv.rss_mb()
        t0 = time.monotonic()
        done, failed, flows = handshakes(srv.port, make, count=sessions, keep_open=True)
        seconds = time.monotonic() - t0
        time.sleep(0.5)
        rss1 = srv.rss_mb()
        out["memory"] = {
            "sessions": done, "failed": failed, "rss_before_mb": round(rss0, 1),
            "rss_after_mb": round(rss1, 1),
            "kb_per_session": round((rss1 - rss0) * 1024 / done, 1) if done else None,
            "handshake_s": round(seconds, 1),
        }
        for flow in flows:
            flow.sock.close()
    finally:
        srv.stop()
    return out


def render_dtls(results: dict[str, Any]) -> str:
    """The DTLS rows as a markdown table, with the targets."""
    lines = ["| DTLS | figure | target |", "|---|---|---|"]
    for mode, r in results.get("handshakes", {}).items():
        target = f">= {TARGETS['psk_handshakes_per_core']:,}/s" if mode == "psk" else ""
        flag = " ⚠ disturbed" if r["disturbance_pct"] > bench.MAX_FOREIGN_PCT else ""
        lines.append(
            f"| full handshakes, {mode} | **{r['per_core']:,}/s per core** "
            f"({r['server_us_per_handshake']} µs server CPU each; {r['per_s']:,.0f}/s end to "
            f"end, {r['failed']} failed){flag} | {target} |")
    req = results.get("requests", {})
    if req:
        lines.append(
            f"| CPU per request, CON POST, established PSK session vs plain CoAP | "
            f"**{req['dtls psk']['server_us_per_request']} µs** vs "
            f"{req['coap']['server_us_per_request']} µs: **+{req['added_us']} µs** | "
            f"<= +{TARGETS['added_us_per_request']:g} µs |")
    mem = results.get("memory", {})
    if mem:
        lines.append(
            f"| RSS per established PSK session ({mem['sessions']:,} open) | "
            f"**{mem['kb_per_session']} KB** ({mem['rss_before_mb']} → {mem['rss_after_mb']} MB)"
            f" | <= {TARGETS['kb_per_session']:g} KB |")
    return "\n".join(lines)


if __name__ == "__main__":
    import json

    found = run_dtls(float(os.environ.get("DURATION", 3)), 1.0)
    print(json.dumps(found, indent=2))
    print(render_dtls(found))
