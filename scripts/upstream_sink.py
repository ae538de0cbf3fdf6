#!/usr/bin/env python3
"""
A small CloudEvents sink (twisted.web) for people and for the bench.

It takes POSTs in the HTTP binary mode (ce-* headers) and as
application/cloudevents-batch+json arrays, counts events, and checks them:
duplicates (an id seen before: at-least-once delivery allows them) and, per
device, that the sequence numbers grow by one (a gap or a step back is
counted).  It prints a JSON summary every --report seconds and at exit, and
serves it at GET /stats.

Failure on demand: --fail 503:20 answers the first 20 POSTs with 503
(with Retry-After: --retry-after), --fail 400:3 refuses 3 with 400,
--fail drop:5 drops the connection of 5 without answering.  Several --fail
apply in order.  --record FILE appends every batch-mode event to FILE, one
JSON object a line (the crash test reads it), and prints a "recorded" line
after each batch.

    python scripts/upstream_sink.py --port 9000
    GATEWAY_UPSTREAM_URL=http://127.0.0.1:9000/events make run
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from twisted.internet import reactor, task
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request, Site

BATCH = "application/cloudevents-batch+json"


class Stats:
    """What the sink has received."""

    def __init__(self) -> None:
        self.requests = 0
        self.events = 0
        self.unique = 0
        self.duplicates = 0
        self.gaps = 0
        self.out_of_order = 0
        self.refused = 0
        self.started = time.monotonic()
        self._ids: set[str] = set()
        self._last: dict[str, int] = {}

    def take(self, event_id: str, device: str, sequence: int) -> None:
        self.events += 1
        if event_id in self._ids:
            self.duplicates += 1
            return
        self._ids.add(event_id)
        self.unique += 1
        last = self._last.get(device, 0)
        if sequence > last + 1:
            self.gaps += 1
        elif sequence <= last:
            self.out_of_order += 1
        self._last[device] = max(last, sequence)

    def summary(self) -> dict[str, Any]:
        elapsed = time.monotonic() - self.started
        return {
            "requests": self.requests,
            "events": self.events,
            "unique": self.unique,
            "duplicates": self.duplicates,
            "gaps": self.gaps,
            "out_of_order": self.out_of_order,
            "refused": self.refused,
            "devices": len(self._last),
            "events_per_second": round(self.unique / elapsed, 1) if elapsed else 0.0,
        }


class Sink(Resource):
    isLeaf = True

    def __init__(
        self, stats: Stats, failures: list[list[Any]], retry_after: int, record: Any = None
    ) -> None:
        super().__init__()
        self.stats = stats
        self.failures = failures
        self.retry_after = retry_after
        self.record = record

    def render_GET(self, request: Request) -> bytes:
        request.setHeader("Content-Type", "application/json")
        return json.dumps(self.stats.summary()).encode()

    def render_POST(self, request: Request) -> Any:
        self.stats.requests += 1
        if self.failures:
            failure = self.failures[0]
            failure[1] -= 1
            if failure[1] <= 0:
                self.failures.pop(0)
            self.stats.refused += 1
            if failure[0] == "drop":
                assert request.transport is not None
                request.transport.abortConnection()
                return NOT_DONE_YET
            request.setResponseCode(int(failure[0]))
            if failure[0] in ("503", "429"):
                request.setHeader("Retry-After", str(self.retry_after))
            return b"refused on demand"
        body = request.content.read()
        content_type = (request.getHeader("content-type") or "").split(";")[0].strip()
        try:
            if content_type == BATCH:
                for event in json.loads(body):
                    self.stats.take(event["id"], event["deviceid"], int(event["sequence"]))
                    if self.record is not None:
                        self.record.write(json.dumps(event) + "\n")
                if self.record is not None:
                    self.record.flush()
                    # A line per recorded batch: what a waiting test wakes on.
                    print(json.dumps({"recorded": self.stats.events}), flush=True)
            else:
                self.stats.take(
                    request.getHeader("ce-id") or "",
                    request.getHeader("ce-deviceid") or "",
                    int(request.getHeader("ce-sequence") or 0),
                )
        except (ValueError, KeyError, TypeError) as e:
            request.setResponseCode(400)
            return f"not a CloudEvent: {e}".encode()
        request.setResponseCode(202)
        return b""


def _failure(text: str) -> list[Any]:
    kind, _, count = text.partition(":")
    if kind not in ("drop", "400", "429", "500", "503") or not count.isdigit():
        raise argparse.ArgumentTypeError("expected e.g. 503:20, 400:3 or drop:5")
    return [kind, int(count)]


def main(argv: list[str]) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--port", type=int, default=9000)
    p.add_argument("--bind", default="127.0.0.1")
    p.add_argument("--fail", type=_failure, action="append", default=[])
    p.add_argument("--retry-after", type=int, default=1)
    p.add_argument("--report", type=float, default=5.0, help="seconds between summaries")
    p.add_argument("--record", help="append each batch-mode event to this file, one JSON a line")
    args = p.parse_args(argv)
    stats = Stats()
    record = open(args.record, "a", encoding="utf-8") if args.record else None
    sink = Sink(stats, args.fail, args.retry_after, record)
    port = reactor.listenTCP(args.port, Site(sink), interface=args.bind)  # type: ignore[attr-defined]
    print(json.dumps({"listening": port.getHost().port}), flush=True)
    task.LoopingCall(lambda: print(json.dumps(stats.summary()), flush=True)).start(
        args.report, now=False
    )
    reactor.addSystemEventTrigger(  # type: ignore[attr-defined]
        "before", "shutdown", lambda: print(json.dumps(stats.summary()), flush=True)
    )
    reactor.run()  # type: ignore[attr-defined]


if __name__ == "__main__":
    main(sys.argv[1:])
