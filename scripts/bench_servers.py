#!/usr/bin/env python3
"""
Trivial CoAP servers for the benchmark and the fuzzer, one per process.

Every server offers the same resource::

    /telemetry  GET  -> 2.05 {"t":21.5}  Content-Format 50
                POST -> 2.04

Usage::

    python scripts/bench_servers.py {aiocoap,txthings,gateway,gateway-tb,...,rawecho}
        [--host 127.0.0.1] [--port 0] [--log FILE] [--cpu N] [--sink-cpu N]

The server binds, then prints ``PORT <n>`` on stdout (one line, flushed) and
serves until killed.  ``--port 0`` picks an ephemeral port.  ``gateway`` runs
our engine (``gateway.coap.udp.UDPTransport`` over ``MessageLayer``) and logs with
``twisted.logger`` to ``--log`` (default: stderr) so the fuzzer can count
errors in it.  ``rawecho`` is a plain-socket loop that turns each CON into a
piggy-backed 2.05: it is the ceiling of the load generator, not a CoAP server.
``gateway-tb`` is the whole gateway on its ThingsBoard route (events stay in
the outbox), ``gateway-tb-crash`` the same with ``durability =
"process-crash"``; ``gateway-up`` and ``gateway-up-crash`` also forward the
events to a child ``upstream_sink.py`` and print ``SINK <port> <pid>`` first.
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import select
import signal
import socket
import subprocess
import sys
from pathlib import Path

PAYLOAD = b'{"t":21.5}'
CONTENT_FORMAT_JSON = 50


def _announce(port: int) -> None:
    sys.stdout.write(f"PORT {port}\n")
    sys.stdout.flush()


def _free_port(host: str) -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def serve_aiocoap(host: str, port: int, log: str | None) -> None:
    import asyncio

    import aiocoap
    import aiocoap.resource as ar

    class Telemetry(ar.Resource):
        async def render_get(self, request: aiocoap.Message) -> aiocoap.Message:
            return aiocoap.Message(
                code=aiocoap.CONTENT, payload=PAYLOAD, content_format=CONTENT_FORMAT_JSON
            )

        async def render_post(self, request: aiocoap.Message) -> aiocoap.Message:
            return aiocoap.Message(code=aiocoap.CHANGED)

    async def main() -> None:
        site = ar.Site()
        site.add_resource(["telemetry"], Telemetry())
        p = port or _free_port(host)
        await aiocoap.Context.create_server_context(site, bind=(host, p))
        _announce(p)
        await asyncio.get_running_loop().create_future()

    asyncio.run(main())


def serve_txthings(host: str, port: int, log: str | None) -> None:
    from twisted.internet import defer, reactor
    from txthings import coap, resource

    class Telemetry(resource.CoAPResource):
        def __init__(self) -> None:
            resource.CoAPResource.__init__(self)
            self.visible = True

        def render_GET(self, request):  # type: ignore[no-untyped-def]
            msg = coap.Message(code=coap.CONTENT, payload=PAYLOAD)
            msg.opt.content_format = CONTENT_FORMAT_JSON
            return defer.succeed(msg)

        def render_POST(self, request):  # type: ignore[no-untyped-def]
            return defer.succeed(coap.Message(code=coap.CHANGED, payload=b""))

    if log:
        # Only for the fuzzer: txThings logs every datagram, so the bench
        # runs it without an observer (its log.msg calls still cost CPU).
        from twisted.python import log as legacy_log

        legacy_log.startLogging(open(log, "a", encoding="utf-8"), setStdout=False)
    root = resource.CoAPResource()
    root.putChild(b"telemetry", Telemetry())
    proto = coap.Coap(resource.Endpoint(root))
    lp = reactor.listenUDP(port, proto, interface=host)  # type: ignore[attr-defined]
    _announce(lp.getHost().port)
    reactor.run()  # type: ignore[attr-defined]


def serve_gateway(host: str, port: int, log: str | None) -> None:
    from twisted.internet import reactor

    from gateway.coap.layer import MessageLayer
    from gateway.coap.udp import UDPTransport

    _log_to(log)
    server = UDPTransport(MessageLayer(_telemetry_root(), reactor))
    lp = reactor.listenUDP(  # type: ignore[attr-defined]
        port, server, interface=host, maxPacketSize=server.max_packet_size
    )
    _announce(lp.getHost().port)
    reactor.run()  # type: ignore[attr-defined]


def _log_to(log: str | None) -> None:
    from twisted.logger import (
        FileLogObserver,
        Logger,
        formatEventAsClassicLogText,
        globalLogBeginner,
    )

    if log:
        stream = open(log, "a", encoding="utf-8")  # noqa: SIM115 - lives as long as the process
    else:
        stream = sys.stderr
    observer = FileLogObserver(stream, lambda e: (formatEventAsClassicLogText(e) or ""))
    globalLogBeginner.beginLoggingTo([observer], redirectStandardIO=False)
    Logger(namespace="bench").info("bench gateway server starting")


def _telemetry_root():  # type: ignore[no-untyped-def]
    """Our engine's resource tree with the bench's /telemetry."""
    from twisted.internet import defer
    from txthings import coap

    from gateway.coap.resource import Resource

    class Telemetry(Resource):
        isLeaf = True

        def render_GET(self, request):  # type: ignore[no-untyped-def]
            msg = coap.Message(code=coap.CONTENT, payload=PAYLOAD)
            msg.opt.content_format = CONTENT_FORMAT_JSON
            return msg

        def render_POST(self, request):  # type: ignore[no-untyped-def]
            return defer.succeed(coap.Message(code=coap.CHANGED, payload=b""))

    root = Resource()
    root.putChild(b"telemetry", Telemetry())
    return root


#: The DTLS bench's PSK device (``gateway-dtls``).
DTLS_PSK_IDENTITY = "bench"
DTLS_PSK_KEY = b"bench-psk-key-16"


def serve_gateway_dtls(host: str, port: int, log: str | None) -> None:
    """
    Our engine's /telemetry behind the DTLS transport on C{port}, and the
    same engine on a plain UDP port (printed first as C{PLAIN <port>}), so
    CPU per request is compared on one process.  The certificates come from
    C{--pki} (C{scripts/certs.py} layout: server.pem/.key, and device.pem,
    registered); the PSK device is L{DTLS_PSK_IDENTITY}.  No per-source
    handshake limit: the bench handshakes from one address.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from twisted.internet import reactor

    from gateway.coap.layer import MessageLayer
    from gateway.coap.udp import UDPTransport
    from gateway.dtls.context import ServerCredentials
    from gateway.dtls.credentials import MemoryCredentials
    from gateway.dtls.settings import DTLSSettings
    from gateway.dtls.transport import DTLSTransport

    _log_to(log)
    pki = Path(_PKI)
    device = x509.load_pem_x509_certificate((pki / "device.pem").read_bytes())
    credentials = MemoryCredentials(
        psk={DTLS_PSK_IDENTITY: DTLS_PSK_KEY},
        certificates={device.fingerprint(hashes.SHA256()).hex()},
    )
    layer = MessageLayer(_telemetry_root(), reactor)
    plain = UDPTransport(layer)
    settings = DTLSSettings(max_sessions=50_000, handshakes_per_source=1_000_000)
    dtls = DTLSTransport(
        layer, ServerCredentials.load(str(pki / "server.pem"), str(pki / "server.key")),
        reactor, settings, credentials=credentials,
    )
    plain_port = reactor.listenUDP(0, plain, interface=host)  # type: ignore[attr-defined]
    sys.stdout.write(f"PLAIN {plain_port.getHost().port}\n")
    lp = reactor.listenUDP(port, dtls, interface=host)  # type: ignore[attr-defined]
    _announce(lp.getHost().port)
    reactor.run()  # type: ignore[attr-defined]


#: The certificates of C{gateway-dtls} (C{--pki}).
_PKI = ""


BENCH_TOKEN = "BENCH_TOKEN"


def _start_sink(cpu: int | None) -> tuple[subprocess.Popen[bytes], int]:
    """
    Start C{upstream_sink.py} on an ephemeral loopback port; return it and its port.

    The sink is pinned to C{cpu} (the bench passes the generator's core,
    1): left unpinned it would inherit this process's affinity (core 0) and
    take CPU from the gateway it is measuring; on the generator's core its
    CPU is visible to the bench, which reads it from C{/proc} and keeps it
    apart from the gateway's own (it is never part of CPU per request).
    """

    def pin() -> None:
        try:  # Linux: the sink gets SIGTERM if this process dies, even by SIGKILL
            import ctypes

            ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
        if cpu is not None and hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) > 1:
            os.sched_setaffinity(0, {cpu})

    sink = subprocess.Popen(
        [sys.executable, str(Path(__file__).resolve().parent / "upstream_sink.py"),
         "--port", "0", "--bind", "127.0.0.1", "--report", "3600"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, preexec_fn=pin,
    )
    assert sink.stdout is not None
    ready, _, _ = select.select([sink.stdout], [], [], 20.0)
    line = sink.stdout.readline() if ready else b""
    if not line:
        sink.kill()
        raise RuntimeError("upstream_sink.py did not announce its port")
    return sink, int(json.loads(line)["listening"])


def serve_gateway_tb(
    host: str, port: int, log: str | None, *, durability: str = "power-loss",
    upstream: bool = False, sink_cpu: int | None = None, postgres: bool = False,
) -> None:
    """
    The whole gateway (SQLite store in a temporary data dir, ThingsBoard
    dialect, API) with one device whose access token is C{BENCH_TOKEN}: a
    POST to /api/v1/BENCH_TOKEN/telemetry authenticates, parses the JSON and
    stores the telemetry and its CloudEvent (the outbox) before it is
    answered.  Without C{upstream} the events stay in the outbox; with it a
    child C{upstream_sink.py} receives them (batch mode), and its port and
    pid are printed as C{SINK <port> <pid>} before C{PORT <n>}.  With
    C{postgres} the store is a throw-away PostgreSQL cluster (the tests'
    L{tests.pgcluster}: a Unix socket, fsync and synchronous_commit off),
    whose server processes' CPU is not the gateway's.
    """
    import tempfile

    from twisted.internet import reactor
    from twisted.internet.defer import ensureDeferred

    from gateway.application.compose import build_service
    from gateway.config import Override, load_config

    data_dir = tempfile.mkdtemp(prefix="bench-gateway-")
    overrides = [
        Override("coap", "bind", host, "bench"),
        Override("coap", "port", str(port), "bench"),
        Override("api", "port", "0", "bench"),
        Override("dtls", "enabled", "false", "bench"),
        Override("storage", "data_dir", data_dir, "bench"),
        Override("storage", "durability", durability, "bench"),
        Override("log", "level", "warn", "bench"),
    ]
    cluster = None
    if postgres:
        from tests.pgcluster import INSTALL_HINT, Cluster, find_bindir

        bindir = find_bindir()
        if bindir is None:
            raise SystemExit(INSTALL_HINT)
        cluster = Cluster(bindir)
        cluster.start()
        overrides += [Override("storage", "backend", "postgresql", "bench"),
                      Override("storage", "dsn", cluster.dsn, "bench")]
    sink: subprocess.Popen[bytes] | None = None
    if upstream:
        sink, sink_port = _start_sink(sink_cpu)
        overrides.append(
            Override("upstream", "url", f"http://127.0.0.1:{sink_port}/events", "bench")
        )
        sys.stdout.write(f"SINK {sink_port} {sink.pid}\n")
    gateway = build_service(load_config(None, {}, overrides), reactor)

    def stop_sink() -> None:
        if cluster is not None:
            cluster.stop()
        if sink is not None and sink.poll() is None:
            sink.terminate()
            try:
                sink.wait(5)
            except subprocess.TimeoutExpired:
                sink.kill()

    async def start() -> None:
        await gateway.whenListening()
        services = gateway.service_layer
        assert services is not None
        await services.registry.create_device("bench-sensor", access_token=BENCH_TOKEN)
        # Drogue's documented device, for the Drogue publish scenario.
        drogue = await services.registry.create_device("device1", application="example-app")
        await services.registry.set_basic(drogue.device.id, "device1", "hey-rodney")
        transport = gateway.coap.transport
        assert transport is not None
        _announce(transport.getHost().port)

    # SIGTERM from the bench: stop the gateway, then the sink.
    reactor.addSystemEventTrigger("before", "shutdown", gateway.stopService)
    reactor.addSystemEventTrigger("after", "shutdown", stop_sink)
    atexit.register(stop_sink)
    gateway.startService()
    ensureDeferred(start()).addErrback(lambda f: (f.printTraceback(), reactor.stop()))
    reactor.run()  # type: ignore[attr-defined]


def serve_gateway_tb_crash(host: str, port: int, log: str | None) -> None:
    """C{gateway-tb} with C{durability = "process-crash"} (SQLite synchronous=NORMAL)."""
    serve_gateway_tb(host, port, log, durability="process-crash")


def serve_gateway_tb_pg(host: str, port: int, log: str | None) -> None:
    """C{gateway-tb} on the PostgreSQL backend."""
    serve_gateway_tb(host, port, log, postgres=True)


def serve_gateway_up(host: str, port: int, log: str | None) -> None:
    """C{gateway-tb} forwarding to a child C{upstream_sink.py}, durability power-loss."""
    serve_gateway_tb(host, port, log, upstream=True, sink_cpu=_SINK_CPU)


def serve_gateway_up_crash(host: str, port: int, log: str | None) -> None:
    """C{gateway-up} with C{durability = "process-crash"}."""
    serve_gateway_tb(host, port, log, durability="process-crash", upstream=True,
                     sink_cpu=_SINK_CPU)


#: The core the upstream sink is pinned to (C{--sink-cpu}; the bench's generator core).
_SINK_CPU: int | None = 1


def serve_rawecho(host: str, port: int, log: str | None) -> None:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    s = socket.socket(family, socket.SOCK_DGRAM)
    s.bind((host, port))
    _announce(s.getsockname()[1])
    recv, send = s.recvfrom, s.sendto
    while True:
        data, addr = recv(2048)
        if len(data) < 4:
            continue
        tkl = data[0] & 15
        code = 0x44 if data[1] == 2 else 0x45  # POST -> 2.04, else 2.05
        send(bytes([0x60 | tkl, code]) + data[2 : 4 + tkl], addr)


SERVERS = {
    "aiocoap": serve_aiocoap,
    "txthings": serve_txthings,
    "gateway": serve_gateway,
    "gateway-tb": serve_gateway_tb,
    "gateway-tb-crash": serve_gateway_tb_crash,
    "gateway-tb-pg": serve_gateway_tb_pg,
    "gateway-up": serve_gateway_up,
    "gateway-up-crash": serve_gateway_up_crash,
    "rawecho": serve_rawecho,
    "gateway-dtls": serve_gateway_dtls,
}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description="trivial /telemetry CoAP servers")
    p.add_argument("server", choices=sorted(SERVERS))
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--log", default=None, help="log file (gateway and txthings)")
    p.add_argument("--cpu", type=int, default=None, help="pin to this core")
    p.add_argument("--sink-cpu", type=int, default=1,
                   help="gateway-up*: pin the upstream sink to this core (-1: unpinned)")
    p.add_argument("--pki", default="", help="gateway-dtls: directory of its certificates")
    a = p.parse_args(argv)
    global _SINK_CPU, _PKI
    _PKI = a.pki
    _SINK_CPU = None if a.sink_cpu < 0 else a.sink_cpu
    if a.cpu is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {a.cpu})
    SERVERS[a.server](a.host, a.port, a.log)


if __name__ == "__main__":
    main()
