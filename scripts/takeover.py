#!/usr/bin/env python3
"""
Figures of outbox failover on PostgreSQL: how long a surviving node takes
to take over a dead node's partitions, loopback only (a throw-away cluster
on a Unix socket, as the tests start it).

Each round, in a fresh schema: node A (a child process) appends C{--events}
events for 64 devices, peeks them (it owns every partition and has them in
flight) and waits; node B (this process) joins and finds nothing free;
then A is SIGKILLed and B peeks every C{--poll} seconds until it holds
every event.  Prints JSON: the takeover time of each round (ms, from the
kill to B's peek returning all of A's events) and their median and max.

    .venv/bin/python scripts/takeover.py --rounds 5
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import psycopg  # noqa: E402
from twisted.internet import defer, task  # noqa: E402

from gateway.store.postgres import open_postgres_store  # noqa: E402
from gateway.store.unit import AppendEvent, UnitOfWork  # noqa: E402
from tests.pgcluster import INSTALL_HINT, Cluster, find_bindir  # noqa: E402

#: Seconds B may take to take over before the round fails.
TAKEOVER_LIMIT = 30.0


async def _hold(reactor: Any, dsn: str, events: int) -> None:
    """Node A: append the events, peek them all, say so, and wait to be killed."""
    store = await open_postgres_store(reactor, dsn)
    await store.commit(UnitOfWork(tuple(
        AppendEvent(f"dev-{i % 64}", f"e-{i}", "t", i, i, "{}") for i in range(events)
    )))
    held = await store.peek(events + 1)
    print(json.dumps({"holding": len(held)}), flush=True)
    await defer.Deferred()  # until SIGKILL


async def _round(reactor: Any, base_dsn: str, events: int, poll: float) -> float:
    schema = f"takeover_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(base_dsn, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    dsn = f"{base_dsn} options=-csearch_path={schema}"
    node_a = subprocess.Popen(
        [sys.executable, __file__, "hold", "--dsn", dsn, "--events", str(events)],
        stdout=subprocess.PIPE, text=True,
    )
    b = None
    try:
        assert node_a.stdout is not None
        line = node_a.stdout.readline()  # blocks: nothing else runs meanwhile
        if json.loads(line)["holding"] != events:
            raise SystemExit(f"node A holds {line!r}, not {events} events")
        b = await open_postgres_store(reactor, dsn)
        if await b.peek(events + 1):
            raise SystemExit("node B got events while node A held every partition")
        os.kill(node_a.pid, signal.SIGKILL)
        killed = time.monotonic()
        node_a.wait()
        while True:
            got = await b.peek(events + 1)
            if len(got) == events:
                return (time.monotonic() - killed) * 1000
            if time.monotonic() - killed > TAKEOVER_LIMIT:
                raise SystemExit(f"node B holds {len(got)} of {events} events")
            await task.deferLater(reactor, poll, lambda: None)
    finally:
        if node_a.poll() is None:
            node_a.kill()
            node_a.wait()
        if b is not None:
            await b.close()
        with psycopg.connect(base_dsn, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


async def _measure(reactor: Any, args: argparse.Namespace) -> None:
    bindir = find_bindir()
    if bindir is None:
        raise SystemExit(INSTALL_HINT)
    cluster = Cluster(bindir)
    cluster.start()
    try:
        rounds = [
            await _round(reactor, cluster.dsn, args.events, args.poll) for _ in range(args.rounds)
        ]
    finally:
        cluster.stop()
    print(json.dumps({
        "events": args.events,
        "poll_s": args.poll,
        "takeover_ms": [round(r, 1) for r in rounds],
        "median_ms": round(statistics.median(rounds), 1),
        "max_ms": round(max(rounds), 1),
    }, indent=2))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Outbox takeover time between two nodes")
    sub = p.add_subparsers(dest="command")
    hold = sub.add_parser("hold", help="(internal) node A")
    hold.add_argument("--dsn", required=True)
    hold.add_argument("--events", type=int, required=True)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--events", type=int, default=640, help="events node A holds")
    p.add_argument("--poll", type=float, default=0.01, help="seconds between B's peeks")
    args = p.parse_args(argv)
    if args.command == "hold":
        task.react(lambda reactor: defer.ensureDeferred(_hold(reactor, args.dsn, args.events)))
    else:
        task.react(lambda reactor: defer.ensureDeferred(_measure(reactor, args)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
