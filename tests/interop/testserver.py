"""
A test resource tree on the gateway's CoAP engine, for the interop suite.

Run as C{python -m tests.interop.testserver [--interface ::]}: it binds UDP
port 0 (a dual-stack socket on C{::} unless told otherwise), prints the bound
port as the first line on stdout, and runs the real reactor until killed.

Resources:
  - C{/echo}: GET/POST/PUT/DELETE answer C{"<METHOD> q=<queries> p=<payload>"}.
  - C{/big}: GET serves L{big_payload} (block-wise); PUT answers
    C{"<length> <sha256>"} of the uploaded body; no DELETE (4.05).
  - C{/slow}: GET answers after L{SLOW_DELAY} seconds (separate response).
  - C{/opt}: understands the critical option 4209 and echoes its value.
  - C{/obs}: observable, C{"state <n>\\n"}; PUT sets the state (and notifies).
  - C{/ctl/notify}: POST bumps C{/obs}'s state by one (and notifies).
  - C{/ctl/observers}: GET answers C{/obs}'s live observer count as text;
    with C{?count=N&wait=S} it answers once the count is N, or after S
    seconds with whatever it is then (so tests wait on an event, not a poll).
"""

from __future__ import annotations

import argparse
import hashlib
import socket
import sys
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from txthings import coap as tx

from gateway.coap import errors
from gateway.coap.layer import MessageLayer
from gateway.coap.resource import Resource
from gateway.coap.udp import UDPTransport

#: Size of C{/big}'s payload.
BIG_SIZE = 100 * 1024
#: Seconds C{/slow} takes to answer.
SLOW_DELAY = 0.5
#: The non-standard critical option C{/opt} understands.
OPTION = 4209


def big_payload(size: int = BIG_SIZE) -> bytes:
    """A deterministic payload that does not repeat on any block boundary."""
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(counter.to_bytes(4, "big")).digest()
        counter += 1
    return bytes(out[:size])


def _text(code: int, text: str) -> Any:
    response = tx.Message(code=code, payload=text.encode("utf-8"))
    response.opt.content_format = 0
    return response


class Echo(Resource):
    _codes = {"GET": tx.CONTENT, "POST": tx.CHANGED, "PUT": tx.CHANGED, "DELETE": tx.DELETED}

    def _echo(self, request: Any) -> Any:
        method = tx.requests[request.code]
        queries = "&".join(q.decode("utf-8", "replace") for q in request.opt.uri_query)
        payload = request.payload.decode("utf-8", "replace")
        return _text(self._codes[method], f"{method} q={queries} p={payload}")

    render_GET = render_POST = render_PUT = render_DELETE = _echo


class Big(Resource):
    def __init__(self) -> None:
        super().__init__()
        self.payload = big_payload()

    def render_GET(self, request: Any) -> Any:
        response = tx.Message(code=tx.CONTENT, payload=self.payload)
        response.opt.content_format = 42  # application/octet-stream
        return response

    def render_PUT(self, request: Any) -> Any:
        body = request.payload
        return _text(tx.CHANGED, f"{len(body)} {hashlib.sha256(body).hexdigest()}")


class Slow(Resource):
    def __init__(self, clock: IReactorTime) -> None:
        super().__init__()
        self._clock = clock

    def render_GET(self, request: Any) -> Deferred[Any]:
        d: Deferred[Any] = Deferred()
        self._clock.callLater(SLOW_DELAY, d.callback, _text(tx.CONTENT, "slow"))
        return d


class Opt(Resource):
    understood_options = frozenset({OPTION})

    def render_GET(self, request: Any) -> Any:
        option = request.opt.getOption(OPTION)
        if not option:
            raise errors.BadRequest(f"option {OPTION} missing")
        return _text(tx.CONTENT, "4209=" + bytes(option[0].value).decode("utf-8", "replace"))


class _WatchedObservers(dict[Any, Any]):
    """The engine's observer table of C{/obs}, calling C{changed} on every change."""

    def __init__(self, changed: Any) -> None:
        super().__init__()
        self._changed = changed

    def __setitem__(self, key: Any, value: Any) -> None:
        super().__setitem__(key, value)
        self._changed()

    def pop(self, key: Any, *default: Any) -> Any:
        value = super().pop(key, *default)
        self._changed()
        return value


class Obs(Resource):
    observable = True

    def __init__(self) -> None:
        super().__init__()
        self.state = 0
        self.waiters: list[tuple[int, Deferred[Any]]] = []
        self.observers = _WatchedObservers(self._observers_changed)

    def _observers_changed(self) -> None:
        count = len(self.observers)
        ready = [d for wanted, d in self.waiters if wanted == count]
        self.waiters = [(w, d) for w, d in self.waiters if w != count]
        for d in ready:
            d.callback(count)

    def render_GET(self, request: Any) -> Any:
        return _text(tx.CONTENT, f"state {self.state}\n")

    def render_PUT(self, request: Any) -> Any:
        try:
            self.state = int(request.payload)
        except ValueError:
            raise errors.BadRequest("state must be an integer") from None
        self.updatedState()
        return _text(tx.CHANGED, f"state {self.state}")


class Notify(Resource):
    def __init__(self, obs: Obs) -> None:
        super().__init__()
        self._obs = obs

    def render_POST(self, request: Any) -> Any:
        self._obs.state += 1
        self._obs.updatedState()
        return _text(tx.CHANGED, f"state {self._obs.state}")


class Observers(Resource):
    def __init__(self, obs: Obs, clock: IReactorTime) -> None:
        super().__init__()
        self._obs = obs
        self._clock = clock

    def render_GET(self, request: Any) -> Any:
        query = dict(q.decode().partition("=")[::2] for q in request.opt.uri_query)
        count = len(self._obs.observers)
        if "count" not in query or int(query["count"]) == count:
            return _text(tx.CONTENT, str(count))
        d: Deferred[Any] = Deferred()
        waiter = (int(query["count"]), d)
        self._obs.waiters.append(waiter)

        def give_up() -> None:
            self._obs.waiters.remove(waiter)
            d.callback(None)

        timer = self._clock.callLater(float(query.get("wait", "5")), give_up)
        d.addBoth(lambda _: timer.cancel() if timer.active() else None)
        return d.addCallback(lambda _: _text(tx.CONTENT, str(len(self._obs.observers))))


def build_root(clock: IReactorTime) -> Resource:
    """The test resource tree (C{/.well-known/core} is the engine's)."""
    root = Resource()
    obs = Obs()
    root.putChild(b"echo", Echo())
    root.putChild(b"big", Big())
    root.putChild(b"slow", Slow(clock))
    root.putChild(b"opt", Opt())
    root.putChild(b"obs", obs)
    ctl = Resource()
    ctl.putChild(b"notify", Notify(obs))
    ctl.putChild(b"observers", Observers(obs, clock))
    root.putChild(b"ctl", ctl)
    return root


def _bind(interface: str) -> socket.socket:
    if ":" in interface:
        sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        # Dual stack whatever net.ipv6.bindv6only says.
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    else:
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((interface, 0))
    sock.setblocking(False)
    return sock


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--interface", default="::", help="address to bind (default ::)")
    options = parser.parse_args(argv)

    from twisted.internet import reactor

    sock = _bind(options.interface)
    server = UDPTransport(MessageLayer(build_root(reactor), reactor))
    reactor.adoptDatagramPort(  # type: ignore[attr-defined]
        sock.fileno(), sock.family, server, maxPacketSize=server.max_packet_size
    )
    sock.close()  # the reactor holds its own duplicate of the descriptor
    print(server.transport.getHost().port, flush=True)
    reactor.run()  # type: ignore[attr-defined]


if __name__ == "__main__":
    sys.exit(main())
