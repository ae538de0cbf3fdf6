"""
Fixtures for the interop suite: one test server subprocess per session, the
client binaries, and a tiny blocking CoAP client for the control resources.
"""

from __future__ import annotations

import os
import random
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
from txthings import coap as tx

from gateway.coap import codec
from tests.interop.peers import find_peer

REPO = Path(__file__).resolve().parents[2]
#: Seconds the test server gets to print its port.
STARTUP_TIMEOUT = 15.0


@attrs.frozen
class TestServer:
    """The running test server: its port and the URIs to reach it."""

    __test__ = False  # not a test class, despite the name

    port: int

    def uri(self, path: str, host: str = "127.0.0.1") -> str:
        """C{coap://host:port/path}, with IPv6 literals bracketed."""
        if ":" in host:
            host = f"[{host}]"
        return f"coap://{host}:{self.port}/{path.lstrip('/')}"


def _read_port(proc: subprocess.Popen[bytes]) -> int:
    assert proc.stdout is not None
    # readline() blocks; the deadline is enforced by killing the process,
    # which ends the read with EOF.
    timer = _Deadline(proc, STARTUP_TIMEOUT)
    try:
        line = proc.stdout.readline()
    finally:
        timer.cancel()
    if not line.strip().isdigit():
        stderr = proc.stderr.read().decode("utf-8", "replace") if proc.stderr else ""
        raise RuntimeError(f"test server did not print its port: {line!r}\n{stderr}")
    return int(line)


class _Deadline:
    """Kill C{proc} if still running after C{seconds} (a watchdog thread)."""

    def __init__(self, proc: subprocess.Popen[bytes], seconds: float) -> None:
        import threading

        self._timer = threading.Timer(seconds, self._fire, (proc,))
        self._timer.daemon = True
        self._timer.start()

    @staticmethod
    def _fire(proc: subprocess.Popen[bytes]) -> None:
        if proc.poll() is None:
            proc.kill()

    def cancel(self) -> None:
        self._timer.cancel()


@pytest.fixture(scope="session")
def server() -> Iterator[TestServer]:
    """Start C{tests/interop/testserver.py} once; kill it at the end of the session."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.interop.testserver", "--interface", "::"],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        port = _read_port(proc)
        yield TestServer(port)
    finally:
        proc.kill()
        proc.wait(timeout=10)
        if proc.stdout:
            proc.stdout.close()
        if proc.stderr:
            stderr = proc.stderr.read().decode("utf-8", "replace")
            proc.stderr.close()
            # An engine traceback during the session is worth seeing.
            if "Traceback" in stderr:
                sys.stderr.write("test server stderr:\n" + stderr)


@pytest.fixture(scope="session")
def coap_client() -> str:
    """Path of libcoap's C{coap-client-notls}; the test fails when it is missing."""
    return find_peer("coap-client-notls")


@pytest.fixture(scope="session")
def aiocoap_client() -> str:
    """Path of C{aiocoap-client} (the venv's first); the test fails when it is missing."""
    return find_peer("aiocoap-client", Path(sys.executable).parent / "aiocoap-client")


# -- control channel ------------------------------------------------------


def coap_request(
    port: int,
    path: str,
    code: int = tx.GET,
    payload: bytes = b"",
    host: str = "127.0.0.1",
    timeout: float = 5.0,
) -> Any:
    """
    One CON request over a blocking socket, retransmitted every 0.5 s until
    C{timeout}; returns the decoded piggybacked (or separate) response.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    request = tx.Message(mtype=tx.CON, mid=random.getrandbits(16), code=code, payload=payload)
    request.token = random.getrandbits(32).to_bytes(4, "big")
    path, _, query = path.partition("?")
    request.opt.uri_path = [segment.encode() for segment in path.strip("/").split("/")]
    request.opt.uri_query = [q.encode() for q in query.split("&") if q]
    data = codec.encode(request)
    deadline = time.monotonic() + timeout
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.connect((host, port))
        while True:
            sock.send(data)
            resend = min(time.monotonic() + 0.5, deadline)
            while (left := resend - time.monotonic()) > 0:
                sock.settimeout(left)
                try:
                    message = codec.decode(sock.recv(2048))
                except socket.timeout:
                    break
                if message.mtype == tx.CON:
                    sock.send(codec.empty(tx.ACK, message.mid))
                if message.code != tx.EMPTY and message.token == request.token:
                    return message
            if time.monotonic() >= deadline:
                raise TimeoutError(f"no response to {path} within {timeout} s")


@attrs.define
class Control:
    """Drives the test server's C{/obs} resource and reads its observer count."""

    port: int

    def notify(self) -> int:
        """Bump C{/obs}'s state (notifying its observers); returns the new state."""
        response = coap_request(self.port, "ctl/notify", tx.POST)
        assert response.code == tx.CHANGED, response.payload
        return int(response.payload.split()[1])

    def state(self) -> int:
        response = coap_request(self.port, "obs")
        return int(response.payload.split()[1])

    def observers(self) -> int:
        response = coap_request(self.port, "ctl/observers")
        assert response.code == tx.CONTENT, response.payload
        return int(response.payload)

    def wait_observers(self, expected: int, timeout: float = 10.0) -> int:
        """The observer count once it is C{expected}, or whatever it is after C{timeout}."""
        response = coap_request(
            self.port, f"ctl/observers?count={expected}&wait={timeout}", timeout=timeout + 5
        )
        assert response.code == tx.CONTENT, response.payload
        return int(response.payload)


@pytest.fixture
def control(server: TestServer) -> Control:
    return Control(server.port)
