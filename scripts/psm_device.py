#!/usr/bin/env python3
"""
A ThingsBoard device in PSM, simulated against a real gateway over loopback.

It observes C{/api/v1/TOKEN/rpc} once (CON; that uplink opens the window
of cycle 0), then for each later cycle: wakes, posts telemetry (the uplink
that opens its window), and in every window listens for its
activity timer (ACKing each RPC notification and, with C{--reply},
answering two-way ones on C{/rpc/{id}}), and sleeps: its radio is off, so
anything arriving then is neither ACKed nor counted as received, only
reported as C{late}.  A notification that arrives within C{--grace}
seconds after the timer ran out still counts as in its window (the
gateway's timer starts when the uplink arrives, a little after it left).

Every event is one JSON line on stdout, with C{t} (seconds since start):
C{subscribed}, C{awake} (cycle), C{rpc} (cycle, id, method), C{late}
(cycle, id), C{asleep} (cycle), C{done}.  Bounded: C{--cycles} cycles,
and 10 s at most for the subscription.

    .venv/bin/python scripts/psm_device.py --port 5683 --token TOKEN \\
        --awake 1.5 --asleep 2 --cycles 3 --reply
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from typing import Any, Optional

from twisted.internet import reactor as _reactor
from twisted.internet.protocol import DatagramProtocol
from txthings import coap as tx

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from gateway.coap import codec  # noqa: E402

reactor: Any = _reactor


class PSMDevice(DatagramProtocol):
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.server = (args.host, args.port)
        self.start = time.monotonic()
        self.mid = random.getrandbits(16)
        self.cycle = 0
        self.awake = True
        self.pending: dict[bytes, Any] = {}  # token -> (data, retransmit call)
        self.subscribed = False
        self.seen: set[int] = set()

    # -- output ----------------------------------------------------------------

    def emit(self, event: str, **fields: Any) -> None:
        line = {"event": event, "t": round(time.monotonic() - self.start, 4), **fields}
        sys.stdout.write(json.dumps(line) + "\n")
        sys.stdout.flush()

    # -- requests --------------------------------------------------------------

    def request(self, code: int, path: str, payload: bytes = b"", observe: bool = False) -> bytes:
        self.mid = (self.mid + 1) & 0xFFFF
        token = os.urandom(4)
        message = tx.Message(mtype=tx.CON, mid=self.mid, code=code, token=token, payload=payload)
        message.opt.uri_path = [s.encode() for s in path.strip("/").split("/")]
        if observe:
            message.opt.observe = 0
        data = codec.encode(message)
        self.send(token, data, 0)
        return token

    def send(self, token: bytes, data: bytes, attempt: int) -> None:
        assert self.transport is not None
        self.transport.write(data, self.server)
        if attempt < 4:
            call = reactor.callLater(2.0 * 2**attempt, self.send, token, data, attempt + 1)
            self.pending[token] = call

    def path(self, feature: str) -> str:
        return f"api/v1/{self.args.token}/{feature}"

    # -- the cycle ---------------------------------------------------------------

    def startProtocol(self) -> None:
        self.emit("awake", cycle=0)
        self.rpc_token = self.request(tx.GET, self.path("rpc"), observe=True)
        self.window = reactor.callLater(self.args.awake + self.args.grace, self.sleep)
        reactor.callLater(10, self.give_up)

    def give_up(self) -> None:
        if not self.subscribed:
            self.emit("error", reason="no answer to the subscription")
            reactor.stop()

    def wake(self) -> None:
        self.cycle += 1
        if self.cycle >= self.args.cycles:
            self.emit("done")
            reactor.stop()
            return
        self.awake = True
        self.emit("awake", cycle=self.cycle)
        self.request(tx.POST, self.path("telemetry"), json.dumps({"cycle": self.cycle}).encode())
        reactor.callLater(self.args.awake + self.args.grace, self.sleep)

    def sleep(self) -> None:
        if not self.subscribed:
            return
        self.awake = False
        for call in self.pending.values():
            if call.active():
                call.cancel()
        self.pending.clear()
        self.emit("asleep", cycle=self.cycle)
        reactor.callLater(self.args.asleep, self.wake)

    # -- what arrives --------------------------------------------------------------

    def datagramReceived(self, data: bytes, addr: Any) -> None:
        try:
            message = codec.decode(data)
        except Exception:
            return
        if not self.awake:
            if message.code == tx.CONTENT and message.token == self.rpc_token:
                self.emit("late", cycle=self.cycle, id=json.loads(message.payload).get("id"))
            return
        assert self.transport is not None
        if message.mtype == tx.CON:
            self.transport.write(codec.empty(tx.ACK, message.mid), addr)
        call = self.pending.pop(message.token, None) if message.code != tx.EMPTY else None
        if call is not None and call.active():
            call.cancel()
        if message.token == self.rpc_token:
            if message.code == tx.VALID and not self.subscribed:
                self.subscribed = True
                self.emit("subscribed")
            elif message.code == tx.CONTENT:
                rpc = json.loads(message.payload)
                if rpc["id"] in self.seen:  # a retransmission we already took
                    return
                self.seen.add(rpc["id"])
                self.emit("rpc", cycle=self.cycle, id=rpc["id"], method=rpc["method"])
                if self.args.reply:
                    reply = json.dumps({"ok": True, "id": rpc["id"]}).encode()
                    self.request(tx.POST, self.path(f"rpc/{rpc['id']}"), reply)


def main(argv: Optional[list[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--token", required=True)
    p.add_argument("--awake", type=float, default=1.5, help="the activity timer, seconds")
    p.add_argument("--asleep", type=float, default=2.0, help="seconds asleep per cycle")
    p.add_argument("--grace", type=float, default=0.3, help="seconds the radio stays on after")
    p.add_argument("--cycles", type=int, default=3)
    p.add_argument("--reply", action="store_true", help="answer two-way RPCs")
    args = p.parse_args(argv)
    if args.cycles > 1000 or args.awake + args.asleep > 600:
        p.error("keep it bounded: at most 1000 cycles of 600 s")
    device = PSMDevice(args)
    reactor.listenUDP(0, device, interface=args.host)
    reactor.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
