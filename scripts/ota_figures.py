#!/usr/bin/env python3
"""
Figures of the OTA download path, bounded by size, count and time, loopback only.

 - C{throughput}: the real gateway (C{twistd -n coap-gateway}, SQLite) and
   aiocoap's file server (C{aiocoap-fileserver}) serving the same random
   file of C{--size} bytes, in one run; the same client
   (C{coap-client-notls -b N}) downloads it whole from each at every block
   size (64, 128, 256, 512, 1024 by default), checked byte for byte.  Prints
   KiB/s for each server and block size.
 - C{memory}: the real gateway with C{--devices} devices (token each) and one
   package of C{--size} bytes assigned to their profile; this process plays
   every device from its own UDP source port, all downloading at once
   (Block2 of 1024, one request in flight per device) until each has
   C{--blocks} blocks, so every device holds a live transfer of the package
   at the same time.  Prints the gateway's RSS before and at its peak, and
   what one copy of the package per device would have cost.

    .venv/bin/python scripts/ota_figures.py throughput --size 262144
    .venv/bin/python scripts/ota_figures.py memory --devices 1000 --size 1048576
"""

from __future__ import annotations

import argparse
import json
import os
import re
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any, Iterator

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from txthings import coap as tx  # noqa: E402

from gateway.coap import codec  # noqa: E402

BIN = REPO / ".venv" / "bin"
#: Seconds any one phase may take before it gives up.
PHASE_LIMIT = 300.0
BLOCK_SIZES = (64, 128, 256, 512, 1024)


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}


class Gateway:
    """The real gateway in a temporary directory (SQLite, default settings)."""

    def __init__(self, work: Path) -> None:
        argv = [str(BIN / "twistd"), "-n", "--pidfile=", "coap-gateway", "--coap-port", "0",
                "--api-port", "0", "--dtls-port", "0", "--data-dir", str(work / "data")]
        self._log = open(work / "gateway.log", "w")  # noqa: SIM115 (closed in stop)
        self.proc = subprocess.Popen(argv, cwd=work, env=_clean_env(), stdout=self._log,
                                     stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        pattern = re.compile(r"CoAP on udp \[[^\]]*\]:(\d+).*API on http://[^:]+:(\d+)")
        while not (found := pattern.search((work / "gateway.log").read_text())):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("the gateway did not start")
            time.sleep(0.1)
        self.coap_port, self.api_port = int(found[1]), int(found[2])
        self.key = (work / "data" / "api-key").read_text().strip()

    def api(self, method: str, path: str, body: Any = None, raw: bytes | None = None) -> Any:
        data = raw if raw is not None else None if body is None else json.dumps(body).encode()
        kind = "application/octet-stream" if raw is not None else "application/json"
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.api_port}{path}", data=data, method=method,
            headers={"Authorization": f"Bearer {self.key}", "Content-Type": kind},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            text = response.read()
        return json.loads(text) if text else None

    def upload(self, body: bytes, title: str = "fw") -> None:
        self.api("POST", f"/api/v1/ota/packages?title={title}&version=1", raw=body)

    def rss_kib(self) -> int:
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self._log.close()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _client(block: int, out: Path, uri: str) -> float:
    """Seconds C{coap-client-notls -b block} takes to fetch C{uri} into C{out}."""
    start = time.perf_counter()
    subprocess.run([shutil.which("coap-client-notls") or "coap-client-notls", "-m", "get",
                    "-b", str(block), "-o", str(out), uri],
                   capture_output=True, timeout=PHASE_LIMIT, check=True)
    return time.perf_counter() - start


def throughput(args: argparse.Namespace) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="ota-figures-"))
    body = os.urandom(args.size)
    served = work / "files"
    served.mkdir()
    (served / "fw.bin").write_bytes(body)
    gateway = Gateway(work)
    port = _free_port()
    fileserver = subprocess.Popen(
        [str(BIN / "aiocoap-fileserver"), "--bind", f"127.0.0.1:{port}", str(served)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    rows = []
    try:
        device = gateway.api("POST", "/api/v1/devices", {"name": "bench"})
        gateway.upload(body)
        gateway.api("PUT", f"/api/v1/devices/{device['id']}/ota/firmware",
                    {"title": "fw", "version": "1"})
        uris = {
            "gateway": f"coap://127.0.0.1:{gateway.coap_port}/fw/{device['access_token']}",
            "aiocoap-fileserver": f"coap://127.0.0.1:{port}/fw.bin",
        }
        _wait_for(uris["aiocoap-fileserver"], work / "probe.bin")
        for block in args.blocks:
            row: dict[str, Any] = {"block": block}
            for name, uri in uris.items():
                out = work / f"{name}-{block}.bin"
                seconds = _client(block, out, uri)
                if out.read_bytes() != body:
                    raise SystemExit(f"{name} at block size {block}: the body differs")
                row[name] = round(args.size / 1024 / seconds, 1)
            rows.append(row)
    finally:
        fileserver.send_signal(signal.SIGTERM)
        fileserver.wait(timeout=10)
        gateway.stop()
        shutil.rmtree(work, ignore_errors=True)
    return {"figure": f"download KiB/s of one {args.size}-byte file, coap-client-notls -b N",
            "rows": rows}


def _wait_for(uri: str, out: Path) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            _client(1024, out, uri)
        except subprocess.CalledProcessError:
            pass
        if out.exists() and out.stat().st_size:
            return
        time.sleep(0.2)
    raise SystemExit("aiocoap-fileserver did not answer")


# -- memory: many devices at once ----------------------------------------------------


class _Device:
    """One device on its own socket, fetching Block2 blocks one after the other."""

    def __init__(self, port: int, token: str) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setblocking(False)
        self.sock.connect(("127.0.0.1", port))
        self.path = [b"fw", token.encode()]
        self.mid = int.from_bytes(os.urandom(2), "big")
        self.num = 0
        self.sent_at = 0.0
        self.done = False

    def send(self) -> None:
        self.mid = (self.mid + 1) & 0xFFFF
        m = tx.Message(mtype=tx.CON, mid=self.mid, code=tx.GET, token=b"ota")
        m.opt.uri_path = self.path
        m.opt.block2 = (self.num, False, 6)
        self.sock.send(codec.encode(m))
        self.sent_at = time.monotonic()

    def received(self, blocks: int) -> None:
        m = codec.decode(self.sock.recv(2048))
        if m.mid != self.mid or m.code != tx.CONTENT:
            return
        self.num += 1
        more = m.opt.block2[1]
        if self.num >= blocks or not more:
            self.done = True
        else:
            self.send()


def _batches(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def memory(args: argparse.Namespace) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="ota-figures-"))
    gateway = Gateway(work)
    devices: list[_Device] = []
    try:
        tokens = [gateway.api("POST", "/api/v1/devices", {"name": f"d{i}"})["access_token"]
                  for i in range(args.devices)]
        gateway.upload(os.urandom(args.size))
        gateway.api("PUT", "/api/v1/profiles/default/ota/firmware",
                    {"title": "fw", "version": "1"})
        before = gateway.rss_kib()
        selector = selectors.DefaultSelector()
        devices = [_Device(gateway.coap_port, token) for token in tokens]
        for device in devices:
            selector.register(device.sock, selectors.EVENT_READ, device)
        for batch in _batches(devices, 100):
            for device in batch:
                device.send()
        peak = before
        deadline = time.monotonic() + PHASE_LIMIT
        last_sample = 0.0
        while not all(d.done for d in devices):
            if time.monotonic() > deadline:
                raise SystemExit("the downloads did not finish in time")
            for key, _ in selector.select(timeout=0.2):
                key.data.received(args.blocks)
            now = time.monotonic()
            for device in devices:  # a lost datagram: ask again (no CON retransmit here)
                if not device.done and now - device.sent_at > 2.0:
                    device.send()
            if now - last_sample > 0.1:
                peak, last_sample = max(peak, gateway.rss_kib()), now
        peak = max(peak, gateway.rss_kib())
    finally:
        for device in devices:
            device.sock.close()
        gateway.stop()
        shutil.rmtree(work, ignore_errors=True)
    return {
        "figure": f"gateway RSS, {args.devices} devices downloading one {args.size}-byte"
                  f" package at once ({args.blocks} Block2 blocks of 1024 each)",
        "rss_before_kib": before,
        "rss_peak_kib": peak,
        "growth_kib": peak - before,
        "one_copy_per_device_would_be_kib": args.devices * args.size // 1024,
    }


def _table(result: dict[str, Any]) -> str:
    lines = [result["figure"]]
    if "rows" in result:
        names = [k for k in result["rows"][0] if k != "block"]
        lines.append("block  " + "  ".join(f"{n:>20}" for n in names))
        for row in result["rows"]:
            lines.append(f"{row['block']:>5}  " + "  ".join(f"{row[n]:>20}" for n in names))
    else:
        lines += [f"  {k}: {v}" for k, v in result.items() if k != "figure"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    output = argparse.ArgumentParser(add_help=False)
    output.add_argument("--json", action="store_true", help="print JSON instead of a table")
    sub = parser.add_subparsers(dest="figure", required=True)
    t = sub.add_parser("throughput", help="KiB/s at each block size, beside aiocoap",
                       parents=[output])
    t.add_argument("--size", type=int, default=256 * 1024, help="file size in bytes")
    t.add_argument("--blocks", type=int, nargs="+", default=list(BLOCK_SIZES),
                   help="block sizes")
    m = sub.add_parser("memory", help="gateway RSS while many devices download at once",
                       parents=[output])
    m.add_argument("--devices", type=int, default=1000)
    m.add_argument("--size", type=int, default=1024 * 1024, help="package size in bytes")
    m.add_argument("--blocks", type=int, default=8, help="blocks each device fetches")
    args = parser.parse_args(argv)
    result = throughput(args) if args.figure == "throughput" else memory(args)
    print(json.dumps(result) if args.json else _table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
