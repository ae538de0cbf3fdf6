"""
A small blocking CoAP client for the hostile-input table: it sends from a
chosen loopback address (each hostile sender its own, so the per-address
budget of one never touches another), with any options, raw datagrams
included, and times each round trip.
"""

from __future__ import annotations

import random
import socket
import statistics
import time
from collections.abc import Sequence
from typing import Any, Optional

from txthings import coap as tx

from gateway.coap import codec
from gateway.coap import numbers as n

#: One option: its number and value (bytes, int, or a Block (num, more, szx)).
Option = tuple[int, Any]


def build(
    code: int,
    path: Sequence[bytes],
    payload: bytes = b"",
    options: Sequence[Option] = (),
    mtype: int = n.CON,
    mid: Optional[int] = None,
    token: Optional[bytes] = None,
) -> Any:
    """A request message; the path is a list of raw Uri-Path segments."""
    message = tx.Message(
        mtype=mtype,
        mid=random.getrandbits(16) if mid is None else mid,
        code=code,
        payload=payload,
    )
    message.token = random.getrandbits(32).to_bytes(4, "big") if token is None else token
    for segment in path:
        message.opt.addOption(tx.OpaqueOption(n.URI_PATH, segment))
    for number, value in options:
        if number in (n.BLOCK1, n.BLOCK2):
            message.opt.addOption(tx.BlockOption(number, value))
        elif isinstance(value, int):
            message.opt.addOption(tx.UintOption(number, value))
        else:
            message.opt.addOption(tx.OpaqueOption(number, value))
    return message


def segments(path: str) -> list[bytes]:
    return [s.encode() for s in path.strip("/").split("/") if s]


def option(message: Any, number: int) -> Any:
    found = message.opt.getOption(number)
    return found[0].value if found else None


class Client:
    """A UDP socket bound to C{host} (port picked by the kernel) talking to the gateway."""

    def __init__(self, port: int, host: str = "127.0.0.1") -> None:
        self._port = port
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind((host, 0))
        self._sock.connect(("127.0.0.1", port))

    def close(self) -> None:
        self._sock.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def send(self, data: bytes) -> None:
        """One datagram, no answer awaited."""
        self._sock.send(data)

    def exchange(self, data: bytes, token: bytes, timeout: float = 5.0) -> Any:
        """Send C{data} (resent every 0.5 s) until the response carrying C{token} arrives."""
        deadline = time.monotonic() + timeout
        while True:
            self._sock.send(data)
            resend = min(time.monotonic() + 0.5, deadline)
            while (left := resend - time.monotonic()) > 0:
                self._sock.settimeout(left)
                try:
                    message = codec.decode(self._sock.recv(65536))
                except socket.timeout:
                    break
                if message.mtype == n.CON:
                    self._sock.send(codec.empty(n.ACK, message.mid))
                if message.code != n.EMPTY and message.token == token:
                    return message
            if time.monotonic() >= deadline:
                raise TimeoutError("no response within the deadline")

    def request(self, code: int, path: str | Sequence[bytes], payload: bytes = b"",
                options: Sequence[Option] = (), **kwargs: Any) -> Any:
        """One CON request and its response."""
        message = build(code, segments(path) if isinstance(path, str) else path,
                        payload, options, **kwargs)
        return self.exchange(codec.encode(message), message.token)

    def post(self, path: str, payload: bytes, options: Sequence[Option] = ()) -> Any:
        return self.request(n.POST, path, payload, options)

    def upload(self, path: str, payload: bytes, szx: int = 6,
               options: Sequence[Option] = ()) -> Any:
        """A Block1 upload in blocks of 2**(szx+4) bytes; the final response."""
        size = 2 ** (szx + 4)
        count = max(1, -(-len(payload) // size))
        for num in range(count):
            more = num < count - 1
            block = payload[num * size:(num + 1) * size]
            response = self.post(path, block, [*options, (n.BLOCK1, (num, more, szx))])
            if more and response.code != n.CONTINUE:
                return response
        return response

    def round_trip(self, path: str, payload: bytes) -> float:
        """Seconds one POST takes to be answered 2.01."""
        start = time.perf_counter()
        response = self.post(path, payload)
        elapsed = time.perf_counter() - start
        assert response.code == n.CREATED, (response.code, response.payload)
        return elapsed

    def median_round_trip(self, path: str, count: int = 7) -> float:
        return statistics.median(
            self.round_trip(path, b'{"probe":%d}' % i) for i in range(count)
        )
