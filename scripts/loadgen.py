#!/usr/bin/env python3
"""
A fast CoAP-over-UDP load generator for loopback benchmarks.

Plain Python, no CoAP library: every request is pre-encoded once and only the
message ID and the 4-byte token change per send.  Non-blocking connected UDP
sockets are driven by one ``epoll`` loop, so a single core sends and checks
well over 60,000 requests per second.

Every response is validated (message type, MID for piggy-backed responses,
token, response code); anything else counts as a mismatch.  A request with no
answer after ``timeout`` seconds is retransmitted with the same MID (binary
exponential back-off, at most ``max_retransmit`` times) and counted.

Library use::

    from loadgen import LoadSpec, run
    result = run(LoadSpec(port=5683, window=16, duration=5))

CLI use (prints one JSON object)::

    python scripts/loadgen.py --port 5683 --path telemetry --window 16 --duration 5
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import select
import socket
import struct
import sys
import time
from dataclasses import dataclass, field
from typing import Any

# Message types and codes (RFC 7252 §3, §12.1).
CON, NON, ACK, RST = 0, 1, 2, 3
METHODS = {"GET": 1, "POST": 2, "PUT": 3, "DELETE": 4}
TOKEN_LEN = 4
_MID_TOKEN = struct.Struct("!HI")
_HEADER = struct.Struct("!BBHI")  # ver/type/tkl, code, MID, 4-byte token


def parse_code(text: str) -> int:
    """``"2.05"`` -> 69."""
    cls, _, detail = text.partition(".")
    return int(cls) << 5 | int(detail)


def format_code(code: int) -> str:
    return f"{code >> 5}.{code & 31:02d}"


def _option(delta: int, value: bytes) -> bytes:
    """Encode one option with its delta from the previous option number."""

    def nib(n: int) -> tuple[int, bytes]:
        if n < 13:
            return n, b""
        if n < 269:
            return 13, bytes([n - 13])
        return 14, struct.pack("!H", n - 269)

    d, dext = nib(delta)
    ln, lext = nib(len(value))
    return bytes([d << 4 | ln]) + dext + lext + value


def encode_options(options: list[tuple[int, bytes]]) -> bytes:
    out = b""
    last = 0
    for number, value in sorted(options, key=lambda o: o[0]):
        out += _option(number - last, value)
        last = number
    return out


def uint_bytes(n: int) -> bytes:
    return n.to_bytes((n.bit_length() + 7) // 8, "big") if n else b""


def build_template(
    method: str, path: str, payload: bytes, confirmable: bool,
    content_format: int | None = None, query: list[str] | None = None,
    extra: list[tuple[int, bytes]] | None = None,
) -> tuple[bytes, bytes]:
    """
    Return (prefix, suffix) so that ``prefix + pack("!HI", mid, token) + suffix``
    is a complete request.
    """
    mtype = CON if confirmable else NON
    code = METHODS[method.upper()]
    options: list[tuple[int, bytes]] = []
    for seg in [s for s in path.strip("/").split("/") if s]:
        options.append((11, seg.encode()))
    if payload and content_format is not None:
        options.append((12, uint_bytes(content_format)))
    for q in query or []:
        options.append((15, q.encode()))
    options.extend(extra or [])
    options.sort(key=lambda o: o[0])  # stable: repeated options keep their order
    prefix = bytes([0x40 | mtype << 4 | TOKEN_LEN, code])
    suffix = encode_options(options)
    if payload:
        suffix += b"\xff" + payload
    return prefix, suffix


@dataclass
class LoadSpec:
    host: str = "127.0.0.1"
    port: int = 5683
    path: str = "telemetry"
    method: str = "GET"
    payload: bytes = b""
    content_format: int | None = None
    #: More options (number, value), e.g. Drogue's credentials (4209).
    options: list[tuple[int, bytes]] = field(default_factory=list)
    confirmable: bool = True
    clients: int = 100
    window: int = 16
    duration: float = 5.0
    warmup: float = 0.0
    #: Accepted response codes, e.g. ["2.05"], or ["2.04", "2.01"] for POST.
    expect: list[str] = field(default_factory=list)
    timeout: float = 2.0
    max_retransmit: int = 4
    #: Re-open every client socket (new source port) after this many seconds.
    fresh_ports_every: float | None = None
    #: Upper bound on requests sent (0 = unbounded; duration still applies).
    max_requests: int = 0
    #: Seconds to wait for outstanding responses after the measured period.
    drain: float = 1.0
    #: Called about every ``tick_every`` seconds with (elapsed, stats) during
    #: the measured period; used by the soak test to sample server RSS.
    tick: Any = None
    tick_every: float = 2.0

    def expected_codes(self) -> set[int]:
        if self.expect:
            return {parse_code(c) for c in self.expect}
        m = self.method.upper()
        if m == "GET":
            return {parse_code("2.05")}
        if m == "POST":
            return {parse_code("2.04"), parse_code("2.01")}
        if m == "PUT":
            return {parse_code("2.04"), parse_code("2.01")}
        return {parse_code("2.02")}


def _percentile(sorted_values: list[float], p: float) -> float:
    if not sorted_values:
        return 0.0
    k = min(len(sorted_values) - 1, max(0, int(round(p / 100.0 * len(sorted_values) + 0.5)) - 1))
    return sorted_values[k]


class _Client:
    __slots__ = ("sock", "fd", "mid", "pending", "opened")

    def __init__(self, sock: socket.socket, mid: int, opened: float) -> None:
        self.sock = sock
        self.fd = sock.fileno()
        self.mid = mid
        self.pending = 0
        self.opened = opened


def _open_socket(host: str, port: int, family: int) -> socket.socket:
    s = socket.socket(family, socket.SOCK_DGRAM)
    s.setblocking(False)
    try:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    except OSError:
        pass
    s.connect((host, port))
    return s


def run(spec: LoadSpec) -> dict[str, Any]:
    """
    Run one load test and return its figures as a dict.

    ``requests_per_s`` counts valid responses completed during the measured
    period (after warm-up) divided by its length.
    """
    if spec.window < 1 or spec.clients < 1:
        raise ValueError("window and clients must be >= 1")
    family = socket.AF_INET6 if ":" in spec.host else socket.AF_INET
    prefix, suffix = build_template(
        spec.method, spec.path, spec.payload, spec.confirmable, spec.content_format,
        extra=spec.options,
    )
    pack = _MID_TOKEN.pack
    unpack_header = _HEADER.unpack_from
    expected = spec.expected_codes()
    want_type = ACK if spec.confirmable else NON
    confirmable = spec.confirmable
    perf = time.perf_counter
    rand = int.from_bytes(os.urandom(4), "big")

    ep = select.epoll()
    clients: list[_Client] = []
    by_fd: dict[int, _Client] = {}
    t0 = perf()
    for i in range(spec.clients):
        # Stagger the sockets' ages so that they are re-opened gradually.
        opened = t0 - (spec.fresh_ports_every or 0) * i / spec.clients
        c = _Client(_open_socket(spec.host, spec.port, family), (rand + i * 977) & 0xFFFF, opened)
        clients.append(c)
        by_fd[c.fd] = c
        ep.register(c.fd, select.EPOLLIN)

    # token -> [last_send, first_send, client, mid, data, tries]
    pending: dict[int, list[Any]] = {}
    token = rand
    rr = 0  # round-robin client index
    nclients = len(clients)

    st = {
        "sent": 0, "retransmissions": 0, "timeouts": 0, "lost": 0,
        "responses": 0, "mismatches": 0, "unexpected": 0, "rst": 0,
        "separate": 0, "send_errors": 0, "ports_reopened": 0, "ports_skipped": 0,
    }
    mismatch_samples: list[str] = []
    latencies: list[float] = []

    start = t0
    measure_start = start + spec.warmup
    measure_end = measure_start + spec.duration
    measuring = spec.warmup <= 0
    if measuring:
        measure_start = start
    sending = True
    next_timeout_check = start + 0.05
    next_tick = measure_start + spec.tick_every
    timeout = spec.timeout
    max_rt = spec.max_retransmit
    max_requests = spec.max_requests
    fresh = spec.fresh_ports_every
    window = spec.window
    # Deadline for the drain phase; set when sending stops.
    hard_end = measure_end + spec.drain

    # Source ports used so far.  A re-opened socket must look like a new
    # device: the kernel readily hands out a port used a few seconds earlier,
    # and a server that still remembers (port, MID) from the previous owner
    # would answer with a stale cached response (a real hazard, but not what
    # a memory soak measures).  So such a port is given back, and each new
    # socket starts at a random MID.
    used_ports = {c.sock.getsockname()[1] for c in clients}

    def reopen(c: _Client, now: float) -> None:
        ep.unregister(c.fd)
        del by_fd[c.fd]
        old = c.sock
        sock = _open_socket(spec.host, spec.port, family)
        for _ in range(8):
            if sock.getsockname()[1] not in used_ports:
                break
            st["ports_skipped"] += 1
            retry = _open_socket(spec.host, spec.port, family)
            sock.close()
            sock = retry
        old.close()
        used_ports.add(sock.getsockname()[1])
        c.sock = sock
        c.fd = sock.fileno()
        c.opened = now
        c.mid = int.from_bytes(os.urandom(2), "big")
        by_fd[c.fd] = c
        ep.register(c.fd, select.EPOLLIN)
        st["ports_reopened"] += 1

    def send_new(now: float) -> bool:
        nonlocal rr, token
        c = clients[rr]
        rr += 1
        if rr == nclients:
            rr = 0
        if fresh is not None and now - c.opened >= fresh:
            # Due for a new source port: let it drain, use the next client.
            for _ in range(nclients):
                if c.pending == 0:
                    if now - c.opened >= fresh:
                        reopen(c, now)
                    break
                if now - c.opened < fresh:
                    break
                c = clients[rr]
                rr += 1
                if rr == nclients:
                    rr = 0
        mid = c.mid = (c.mid + 1) & 0xFFFF
        token = (token + 1) & 0xFFFFFFFF
        data = prefix + pack(mid, token) + suffix
        try:
            c.sock.send(data)
        except OSError as e:
            if e.errno not in (errno.EAGAIN, errno.ENOBUFS, errno.ECONNREFUSED):
                raise
            st["send_errors"] += 1
        pending[token] = [now, now, c, mid, data, 0]
        c.pending += 1
        st["sent"] += 1
        return True

    try:
        while True:
            now = perf()
            if sending:
                if not measuring and now >= measure_start:
                    measuring = True
                    for k in st:
                        if not k.startswith("ports_"):
                            st[k] = 0
                    latencies.clear()
                    mismatch_samples.clear()
                if now >= measure_end or (max_requests and st["sent"] >= max_requests):
                    sending = False
                    measure_end = min(measure_end, now)
                    hard_end = now + spec.drain
                else:
                    while len(pending) < window:
                        send_new(now)
                        if max_requests and st["sent"] >= max_requests:
                            break
            elif not pending or now >= hard_end:
                break

            events = ep.poll(0.01)
            for fd, _ev in events:
                c = by_fd.get(fd)
                if c is None:
                    continue
                sock = c.sock
                while True:
                    try:
                        data = sock.recv(2048)
                    except BlockingIOError:
                        break
                    except ConnectionRefusedError:
                        st["send_errors"] += 1
                        break
                    t = perf()
                    if len(data) < 4:
                        st["unexpected"] += 1
                        continue
                    b0 = data[0]
                    mtype = (b0 >> 4) & 3
                    tkl = b0 & 15
                    if tkl != TOKEN_LEN or len(data) < 4 + TOKEN_LEN:
                        # Empty ACK (separate response follows) or RST.
                        if mtype == RST:
                            st["rst"] += 1
                        elif mtype == ACK and data[1] == 0:
                            st["separate"] += 1
                        else:
                            st["unexpected"] += 1
                        continue
                    _b0, code, mid, tok = unpack_header(data)
                    e = pending.pop(tok, None)
                    if e is None:
                        # Late duplicate answer to a retransmission, or junk.
                        st["unexpected"] += 1
                        if mtype == CON:
                            sock.send(bytes([0x60, 0]) + data[2:4])
                        continue
                    ec = e[2]
                    ec.pending -= 1
                    ok = True
                    if mtype == CON:
                        # Separate response: acknowledge it.
                        sock.send(bytes([0x60, 0]) + data[2:4])
                        ok = code in expected and ec is c
                    elif mtype != want_type or ec is not c or code not in expected:
                        ok = False
                    elif confirmable and mid != e[3]:
                        ok = False
                    if ok:
                        if t <= measure_end:
                            latencies.append(t - e[1])
                            st["responses"] += 1
                    else:
                        st["mismatches"] += 1
                        if len(mismatch_samples) < 10:
                            mismatch_samples.append(
                                f"type={mtype} code={format_code(code)} mid={mid} "
                                f"want_mid={e[3]} same_socket={ec is c}"
                            )
                    if sending and len(pending) < window:
                        send_new(t)
                        if c.sock is not sock:  # re-opened for a new port
                            break

            now = perf()
            if now >= next_timeout_check:
                next_timeout_check = now + 0.05
                expired = []
                for tok, e in pending.items():
                    if now - e[0] < timeout * (1 << e[5]):
                        # Not strictly ordered after back-off, but close enough
                        # to stop scanning: entries are in last-send order.
                        if e[5] == 0:
                            break
                        continue
                    expired.append(tok)
                for tok in expired:
                    e = pending.pop(tok)
                    st["timeouts"] += 1
                    if e[5] >= max_rt or not sending:
                        st["lost"] += 1
                        e[2].pending -= 1
                        continue
                    e[5] += 1
                    e[0] = now
                    st["retransmissions"] += 1
                    try:
                        e[2].sock.send(e[4])
                    except OSError:
                        st["send_errors"] += 1
                    pending[tok] = e
            if measuring and spec.tick is not None and now >= next_tick and sending:
                next_tick = now + spec.tick_every
                spec.tick(now - measure_start, dict(st))
    finally:
        for c in clients:
            try:
                ep.unregister(c.fd)
            except (OSError, ValueError):
                pass
            c.sock.close()
        ep.close()

    elapsed = max(1e-9, measure_end - measure_start)
    latencies.sort()
    ms = 1000.0
    result: dict[str, Any] = {
        "target": f"{spec.host}:{spec.port}/{spec.path.strip('/')}",
        "method": spec.method.upper(),
        "type": "CON" if spec.confirmable else "NON",
        "clients": spec.clients,
        "window": spec.window,
        "duration_s": round(elapsed, 3),
        "requests_per_s": round(st["responses"] / elapsed, 1),
        "p50_ms": round(_percentile(latencies, 50) * ms, 3),
        "p90_ms": round(_percentile(latencies, 90) * ms, 3),
        "p99_ms": round(_percentile(latencies, 99) * ms, 3),
        "max_ms": round((latencies[-1] if latencies else 0.0) * ms, 3),
        "outstanding_at_end": len(pending),
    }
    result.update(st)
    result["mismatch_samples"] = mismatch_samples
    return result


def spec_from_args(argv: list[str] | None = None) -> LoadSpec:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=5683)
    p.add_argument("--path", default="telemetry")
    p.add_argument("--method", default="GET", choices=sorted(METHODS))
    p.add_argument("--payload", default="", help="request body (text)")
    p.add_argument("--content-format", type=int, default=None)
    p.add_argument("--non", action="store_true", help="send NON instead of CON")
    p.add_argument("--clients", type=int, default=100, help="client sockets")
    p.add_argument("--window", type=int, default=16, help="outstanding requests in total")
    p.add_argument("--duration", type=float, default=5.0)
    p.add_argument("--warmup", type=float, default=1.0)
    p.add_argument("--expect", default="", help="accepted codes, comma separated, e.g. 2.04,2.01")
    p.add_argument("--timeout", type=float, default=2.0)
    p.add_argument("--max-retransmit", type=int, default=4)
    p.add_argument("--fresh-ports-every", type=float, default=None, metavar="SECONDS")
    p.add_argument("--max-requests", type=int, default=0)
    p.add_argument("--cpu", type=int, default=None, help="pin the generator to this core")
    a = p.parse_args(argv)
    if a.cpu is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {a.cpu})
    return LoadSpec(
        host=a.host, port=a.port, path=a.path, method=a.method,
        payload=a.payload.encode(), content_format=a.content_format,
        confirmable=not a.non, clients=a.clients, window=a.window,
        duration=a.duration, warmup=a.warmup,
        expect=[c for c in a.expect.split(",") if c],
        timeout=a.timeout, max_retransmit=a.max_retransmit,
        fresh_ports_every=a.fresh_ports_every, max_requests=a.max_requests,
    )


def main(argv: list[str] | None = None) -> int:
    spec = spec_from_args(argv)
    result = run(spec)
    json.dump(result, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 1 if result["mismatches"] else 0


if __name__ == "__main__":
    sys.exit(main())
