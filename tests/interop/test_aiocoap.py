"""
aiocoap (0.4.17) against the engine, over real loopback UDP.

Requests go through the C{aiocoap-client} script, which writes a success
payload to stdout as is and an error as C{"<code> <reason>"} plus the
diagnostic payload to stderr, exiting 1.

Observation goes through aiocoap's library API in a child process instead:
C{aiocoap-client --observe} 0.4.17 cancels its observation as soon as the
first response arrives (the C{finally:} after C{await requester.response} in
C{aiocoap/cli/client.py}) yet keeps ACKing the notifications, so it prints
none of them; the same happens against aiocoap's own server.
"""

from __future__ import annotations

import hashlib
import importlib.util
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from .conftest import Control, TestServer
from .testserver import big_payload

HOSTS = ["127.0.0.1", "::1"]


def run(client: str, *args: str, timeout: float = 30.0) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([client, *args], capture_output=True, timeout=timeout)


@pytest.mark.parametrize("host", HOSTS)
def test_get_with_query(aiocoap_client: str, server: TestServer, host: str) -> None:
    """A CON GET with two Uri-Query options is answered with both queries echoed."""
    result = run(aiocoap_client, server.uri("echo?a=1&b=2", host))
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"GET q=a=1&b=2 p="


@pytest.mark.parametrize("host", HOSTS)
@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE"])
def test_methods(aiocoap_client: str, server: TestServer, host: str, method: str) -> None:
    """POST, PUT and DELETE reach their render method with the request payload."""
    result = run(aiocoap_client, "-m", method, "--payload", "hello", server.uri("echo", host))
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{method} q= p=hello".encode()


@pytest.mark.parametrize("host", HOSTS)
def test_non_request(aiocoap_client: str, server: TestServer, host: str) -> None:
    """A NON request is answered (with a NON response aiocoap matches by token)."""
    result = run(aiocoap_client, "--non", "-m", "POST", "--payload", "x", server.uri("echo", host))
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"POST q= p=x"


def test_not_found(aiocoap_client: str, server: TestServer) -> None:
    """An unknown path gets 4.04 Not Found with a diagnostic payload."""
    result = run(aiocoap_client, server.uri("no/such/thing"))
    assert result.returncode == 1
    assert result.stderr.startswith(b"4.04 Not Found\nnot found"), result.stderr


def test_method_not_allowed(aiocoap_client: str, server: TestServer) -> None:
    """DELETE on a resource without render_DELETE gets 4.05 Method Not Allowed."""
    result = run(aiocoap_client, "-m", "DELETE", server.uri("big"))
    assert result.returncode == 1
    assert result.stderr.startswith(b"4.05 Method Not Allowed"), result.stderr


def test_well_known_core(aiocoap_client: str, server: TestServer) -> None:
    """/.well-known/core lists the test resources in link format, /obs marked observable."""
    result = run(aiocoap_client, server.uri(".well-known/core"))
    assert result.returncode == 0, result.stderr
    links = result.stdout.decode().split(",")
    for link in ["</echo>", "</big>", "</slow>", "</opt>", "</obs>;obs"]:
        assert link in links, links


@pytest.mark.parametrize("host", HOSTS)
def test_blockwise_get(aiocoap_client: str, server: TestServer, host: str) -> None:
    """A 100 KiB GET is reassembled by aiocoap from Block2 blocks, byte for byte."""
    result = run(aiocoap_client, server.uri("big", host))
    assert result.returncode == 0, result.stderr
    assert hashlib.sha256(result.stdout).hexdigest() == hashlib.sha256(big_payload()).hexdigest()


@pytest.mark.parametrize("host", HOSTS)
@pytest.mark.parametrize("szx", [None, 2])
def test_blockwise_put(
    aiocoap_client: str, server: TestServer, tmp_path: Path, host: str, szx: int | None
) -> None:
    """A 50 KiB PUT (1024-byte or 64-byte Block1 blocks) is reassembled and its sha256 echoed."""
    body = big_payload(50 * 1024)[::-1]
    upload = tmp_path / "upload"
    upload.write_bytes(body)
    args = ["-m", "PUT", "--payload", f"@{upload}"]
    if szx is not None:
        args += ["--payload-initial-szx", str(szx)]
    result = run(aiocoap_client, *args, server.uri("big", host))
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{len(body)} {hashlib.sha256(body).hexdigest()}".encode()


@pytest.mark.parametrize("non", [False, True])
def test_separate_response(aiocoap_client: str, server: TestServer, non: bool) -> None:
    """A slow handler's answer reaches aiocoap after an empty ACK (CON) or as NON."""
    result = run(aiocoap_client, *(["--non"] if non else []), server.uri("slow"))
    assert result.returncode == 0, result.stderr
    assert result.stdout == b"slow"


#: An observer on aiocoap's API (CON registration): prints the first response
#: and each notification, cancels after N of them, then stays alive (so later
#: notifications are answered with RST) until stdin closes.  Only CON: aiocoap
#: ignores an unmatched NON notification instead of resetting it (RFC 7641
#: §3.6 lets it), so a NON observer it forgets lingers until the engine's
#: daily CON notification.
OBSERVER = """
import asyncio, sys
import aiocoap

async def main(uri, count):
    context = await aiocoap.Context.create_client_context()
    request = aiocoap.Message(code=aiocoap.GET, uri=uri, observe=0)
    requester = context.request(request)
    first = await requester.response
    print("response", first.payload.decode().strip(), flush=True)
    seen = 0
    async for notification in requester.observation:
        print("notification", notification.payload.decode().strip(), flush=True)
        seen += 1
        if seen == count:
            break
    requester.observation.cancel()
    print("cancelled", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)
    await context.shutdown()

asyncio.run(main(sys.argv[1], int(sys.argv[2])))
"""


class _Lines:
    """The lines a child prints on stdout, read by a thread, taken with a deadline."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self._queue: queue.Queue[str] = queue.Queue()
        assert proc.stdout is not None
        stdout = proc.stdout
        threading.Thread(target=self._pump, args=(stdout,), daemon=True).start()

    def _pump(self, stdout: object) -> None:
        for line in stdout:  # type: ignore[attr-defined]
            self._queue.put(line.strip())
        self._queue.put("EOF")

    def next(self, timeout: float = 10.0) -> str:
        try:
            return self._queue.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no output from the observer within {timeout} s") from None


def test_observe(server: TestServer, control: Control, tmp_path: Path) -> None:
    """An aiocoap observer sees each change in order, and once it has cancelled, its RST
    to a later notification makes the engine drop it."""
    assert importlib.util.find_spec("aiocoap"), "aiocoap comes with the test extra"
    baseline = control.observers()
    stderr = (tmp_path / "stderr").open("w+")
    proc = subprocess.Popen(
        [sys.executable, "-c", OBSERVER, server.uri("obs"), "3"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
    )
    lines = _Lines(proc)
    try:
        first = lines.next()
        assert first.startswith("response state "), first
        assert control.wait_observers(baseline + 1) == baseline + 1
        for _ in range(3):
            state = control.notify()
            assert lines.next() == f"notification state {state}"
        assert lines.next() == "cancelled"
        # aiocoap 0.4.17 still ACKs the first notification after cancel() (its
        # token stays matched until the observation sees one more event) and
        # answers the one after with RST.
        started = time.monotonic()
        control.notify()
        control.notify()
        assert control.wait_observers(baseline) == baseline
        assert time.monotonic() - started < 5  # the RST, not a CON retransmission timeout
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        try:
            proc.wait(timeout=10)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            stderr.seek(0)
            errors = stderr.read()
            stderr.close()
    assert proc.returncode == 0, errors
