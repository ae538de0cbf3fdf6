#!/usr/bin/env python3
"""
How many Drogue publishes waiting for a command (``ct``) one gateway holds,
and what each costs in memory.

The whole gateway (SQLite store, in a temporary data directory) runs in this
process.  ``--parked`` devices of one application each publish once with
``ct=60`` from their own address, through one gateway device (``as``):
pre-encoded CON POSTs handed straight to the UDP protocol, answers counted,
not sent.  Once every one has its empty ACK, the RSS growth over the parked
requests is divided by their number.  Then a command is sent to every
device through the RPC queue and the 2.05 answers are counted, so the
figure is of requests that really wait.

    .venv/bin/python scripts/drogue_parked.py --parked 10000

Loopback only (nothing leaves the process); bounded by ``--max-seconds``.
"""

from __future__ import annotations

import argparse
import base64
import gc
import struct
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import loadgen  # noqa: E402
from path_cpu import _rss_mb, in_process  # noqa: E402

_MID_TOKEN = struct.Struct("!HI")
#: Response codes as the first bytes of a datagram's code field.
_EMPTY, _CONTENT = 0x00, 0x45


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].strip())
    p.add_argument("--parked", type=int, default=10_000)
    p.add_argument("--max-seconds", type=float, default=300.0)
    a = p.parse_args(argv)

    from twisted.internet import reactor
    from twisted.internet.defer import ensureDeferred
    from twisted.internet.task import deferLater

    from gateway.application.compose import build_service
    from gateway.config import load_config

    overrides = in_process("drogue_parked", durability="process-crash")
    gateway = build_service(load_config(None, {}, overrides), reactor)
    codes: dict[int, int] = {}
    report: dict[str, Any] = {}
    deadline = time.monotonic() + a.max_seconds

    seen: set[tuple[int, Any]] = set()

    def answered(data: bytes, addr: Any) -> None:
        if (data[1], addr) not in seen:  # a separate response is resent until ACKed
            seen.add((data[1], addr))
            codes[data[1]] = codes.get(data[1], 0) + 1

    async def until(code: int, count: int, what: str) -> None:
        while codes.get(code, 0) < count:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{what}: {codes.get(code, 0)} of {count} "
                                   f"within {a.max_seconds} s")
            await deferLater(reactor, 0.01, lambda: None)

    async def measure() -> None:
        await gateway.whenListening()
        services = gateway.service_layer
        assert services is not None
        n = a.parked
        # One gateway device publishes for all (as=): one password, so one
        # scrypt check and then the remembered one.
        gw = await services.registry.create_device("gw", application="bench-app")
        await services.registry.set_basic(gw.device.id, "gw", "pw")
        ids = []
        for i in range(n):
            created = await services.registry.create_device(
                f"d{i}", application="bench-app", generate_token=False, gateways=["gw"]
            )
            ids.append(created.device.id)
        auth = b"Basic " + base64.b64encode(b"gw@bench-app:pw")
        protocol = gateway.coap.transport.protocol  # type: ignore[union-attr]
        protocol._sendto = answered
        receive = protocol.datagramReceived
        gc.collect()
        rss0 = _rss_mb()
        started = time.perf_counter()
        for i in range(n):
            prefix, suffix = loadgen.build_template(
                "POST", "v1/wait", b'{"a":1}', True, 50, query=["ct=60", f"as=d{i}"],
                extra=[(4209, auth)],
            )
            receive(prefix + _MID_TOKEN.pack(i & 0xFFFF, i) + suffix, ("127.0.0.1", 10_000 + i))
            if i % 200 == 199:
                await deferLater(reactor, 0, lambda: None)
        await until(_EMPTY, n, "empty ACKs")
        parked_in = time.perf_counter() - started
        gc.collect()
        rss1 = _rss_mb()
        for device_id in ids:
            await services.rpc.enqueue(device_id, "go", "now", oneway=True)
        await until(_CONTENT, n, "commands answered")
        report.update({
            "parked": n, "seconds_to_park": round(parked_in, 2),
            "rss_mb": [rss0, rss1],
            "kb_per_parked": round((rss1 - rss0) * 1024 / n, 2),
            "answered_2_05": codes.get(_CONTENT, 0),
        })

    def done(_: object) -> None:
        reactor.stop()

    def failed(failure: Any) -> None:
        report["error"] = failure.getErrorMessage()
        reactor.stop()

    gateway.startService()
    ensureDeferred(measure()).addCallbacks(done, failed)
    reactor.run()
    if "error" in report:
        print(f"drogue_parked: {report['error']}", file=sys.stderr)
        return 1
    print(f"{report['parked']:,} publishes parked with ct=60 in {report['seconds_to_park']} s; "
          f"RSS {report['rss_mb'][0]} -> {report['rss_mb'][1]} MB: "
          f"{report['kb_per_parked']} KB per parked request; "
          f"{report['answered_2_05']:,} answered 2.05 by their command")
    return 0


if __name__ == "__main__":
    sys.exit(main())
