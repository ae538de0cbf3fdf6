"""
libcoap's C{coap-client-notls} against the engine, over real loopback UDP.

libcoap prints a success payload on stdout (followed by a newline) and an
error response as C{"<code> <diagnostic>"} on stderr.  C{-v 7} logs every PDU,
warnings included, on stdout, which is how these tests see message types and
block sizes; the payload then goes to a file with C{-o}.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
from pathlib import Path

import pytest

from .conftest import Control, TestServer
from .testserver import BIG_SIZE, big_payload

HOSTS = ["127.0.0.1", "::1"]


def run(client: str, *args: str, timeout: float = 20.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [client, *args], capture_output=True, text=True, errors="replace", timeout=timeout
    )


def run_logged(client: str, out: Path, *args: str) -> tuple[str, bytes]:
    """Run with C{-v 7 -o out}: returns (the PDU log, the payload written to C{out})."""
    result = run(client, "-v", "7", "-o", str(out), *args)
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-3000:]
    assert "malformed" not in log.lower(), log[-3000:]
    return log, out.read_bytes()


@pytest.mark.parametrize("host", HOSTS)
def test_get_with_query(coap_client: str, server: TestServer, host: str) -> None:
    """A CON GET with two Uri-Query options is answered with both queries echoed."""
    result = run(coap_client, "-m", "get", server.uri("echo?a=1&b=2", host))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "GET q=a=1&b=2 p="


@pytest.mark.parametrize("host", HOSTS)
@pytest.mark.parametrize("method", ["post", "put", "delete"])
def test_methods(coap_client: str, server: TestServer, host: str, method: str) -> None:
    """POST, PUT and DELETE reach their render method with the request payload."""
    result = run(coap_client, "-m", method, "-e", "hello", server.uri("echo", host))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"{method.upper()} q= p=hello"


@pytest.mark.parametrize("host", HOSTS)
def test_non_request(coap_client: str, server: TestServer, tmp_path: Path, host: str) -> None:
    """A NON request gets a NON response carrying the answer."""
    log, payload = run_logged(
        coap_client, tmp_path / "out", "-N", "-m", "put", "-e", "x", server.uri("echo", host)
    )
    assert payload == b"PUT q= p=x"
    assert re.search(r"t:NON c:2\.04", log), log


def test_declared_critical_option(coap_client: str, server: TestServer) -> None:
    """Critical option 4209 is accepted by the resource that declares it and reaches it."""
    result = run(coap_client, "-O", "4209,abc", server.uri("opt"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "4209=abc"


def test_elective_option_ignored(coap_client: str, server: TestServer) -> None:
    """An unknown elective (even-numbered) option beside 4209 is silently ignored."""
    result = run(coap_client, "-O", "4209,abc", "-O", "4210,0x0102", server.uri("opt"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "4209=abc"


def test_other_critical_option_on_declaring_resource(coap_client: str, server: TestServer) -> None:
    """A resource declaring 4209 still gets 4.02 for another unknown critical option."""
    result = run(coap_client, "-O", "4209,abc", "-O", "4211,x", server.uri("opt"))
    assert result.stderr.startswith("4.02 unknown critical option 4211"), result.stderr


def test_undeclared_critical_option(coap_client: str, server: TestServer) -> None:
    """Critical option 4209 on a resource that doesn't declare it gets 4.02 Bad Option."""
    result = run(coap_client, "-O", "4209,abc", server.uri("echo"))
    assert result.stdout.strip() == ""
    assert result.stderr.startswith("4.02"), result.stderr


def test_not_found(coap_client: str, server: TestServer) -> None:
    """An unknown path gets 4.04 Not Found with a diagnostic payload."""
    result = run(coap_client, server.uri("no/such/thing"))
    assert result.stderr.startswith("4.04 not found"), result.stderr


def test_method_not_allowed(coap_client: str, server: TestServer) -> None:
    """DELETE on a resource without render_DELETE gets 4.05 Method Not Allowed."""
    result = run(coap_client, "-m", "delete", server.uri("big"))
    assert result.stderr.startswith("4.05"), result.stderr


def test_well_known_core(coap_client: str, server: TestServer, tmp_path: Path) -> None:
    """/.well-known/core lists the test resources in link format, /obs marked observable."""
    log, payload = run_logged(coap_client, tmp_path / "core", server.uri(".well-known/core"))
    assert "Content-Format:application/link-format" in log
    links = payload.decode().split(",")
    for link in ["</echo>", "</big>", "</slow>", "</opt>", "</obs>;obs", "</ctl/observers>"]:
        assert link in links, links


@pytest.mark.parametrize("size", [16, 32, 64, 128, 256, 512, 1024])
def test_blockwise_get(coap_client: str, server: TestServer, tmp_path: Path, size: int) -> None:
    """A 100 KiB GET arrives intact in Block2 blocks of exactly the size the client asked for."""
    log, body = run_logged(coap_client, tmp_path / "big", "-b", str(size), server.uri("big"))
    assert len(body) == BIG_SIZE
    assert hashlib.sha256(body).hexdigest() == hashlib.sha256(big_payload()).hexdigest()
    # libcoap logs the last block twice (as received, then as handed to the app).
    blocks = re.findall(r"t:ACK c:2\.05 .*Block2:(\d+)/[M_]/(\d+)", log)
    assert {int(szx) for _, szx in blocks} == {size}
    assert {int(num) for num, _ in blocks} == set(range(-(-BIG_SIZE // size)))


@pytest.mark.parametrize("host", HOSTS)
@pytest.mark.parametrize("block", [None, 64])
def test_blockwise_put(
    coap_client: str, server: TestServer, tmp_path: Path, host: str, block: int | None
) -> None:
    """A 10 KiB PUT is reassembled from Block1 blocks and answered with its length and sha256."""
    body = big_payload(10 * 1024)[::-1]
    upload = tmp_path / "upload"
    upload.write_bytes(body)
    args = ["-m", "put", "-f", str(upload)]
    if block is not None:
        args += ["-b", str(block)]
    result = run(coap_client, *args, server.uri("big", host))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"{len(body)} {hashlib.sha256(body).hexdigest()}"


def test_concurrent_blockwise_gets(coap_client: str, server: TestServer, tmp_path: Path) -> None:
    """Four clients downloading /big at once, each with its own block size, all get it intact."""
    expected = hashlib.sha256(big_payload()).hexdigest()
    sizes = [32, 64, 256, 1024]
    procs = [
        subprocess.Popen(
            [coap_client, "-b", str(size), "-o", str(tmp_path / str(size)), server.uri("big")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for size in sizes
    ]
    try:
        codes = [proc.wait(timeout=30) for proc in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert codes == [0] * len(sizes)
    for size in sizes:
        assert hashlib.sha256((tmp_path / str(size)).read_bytes()).hexdigest() == expected, size


def test_upload_too_large(coap_client: str, server: TestServer, tmp_path: Path) -> None:
    """An upload over the engine's 1 MiB body limit is refused with 4.13."""
    upload = tmp_path / "huge"
    upload.write_bytes(bytes(1024 * 1024 + 1024))
    result = run(coap_client, "-m", "put", "-f", str(upload), server.uri("big"))
    assert result.stdout.strip() == ""
    assert result.stderr.startswith("4.13"), result.stderr


@pytest.mark.parametrize("non", [False, True])
def test_separate_response(coap_client: str, server: TestServer, tmp_path: Path, non: bool) -> None:
    """A slow handler's answer follows an empty ACK (CON) or comes as NON, and libcoap
    discards nothing as malformed."""
    args = ["-N"] if non else []
    log, payload = run_logged(coap_client, tmp_path / "out", *args, server.uri("slow"))
    assert payload == b"slow"
    assert "discard" not in log.lower(), log
    if non:
        assert re.search(r"t:NON c:2\.05", log), log
    else:
        assert re.search(r"t:ACK c:0\.00 i:\w+ \{\}", log), log
        assert re.search(r"t:CON c:2\.05", log), log


@pytest.mark.parametrize("non", [False, True])
def test_observe(
    coap_client: str, server: TestServer, control: Control, tmp_path: Path, non: bool
) -> None:
    """An observer registered with -s sees every change made while it runs, in order,
    and the engine drops it once the client exits."""
    baseline = control.observers()
    args = ["-s", "3", "-m", "get"] + (["-N"] if non else [])
    stdout = (tmp_path / "stdout").open("w+")
    stderr = (tmp_path / "stderr").open("w+")
    proc = subprocess.Popen([coap_client, *args, server.uri("obs")], stdout=stdout, stderr=stderr)
    try:
        assert control.wait_observers(baseline + 1) == baseline + 1
        states = [control.notify() for _ in range(3)]
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    stdout.seek(0)
    seen = [int(line.split()[1]) for line in stdout.read().split("\n") if line.startswith("state")]
    stderr.seek(0)
    assert seen[-1] == states[-1], (seen, states, stderr.read())
    assert seen == sorted(set(seen)) and len(seen) >= 2, seen
    # The client deregistered on exit; one more change must not revive it.
    control.notify()
    assert control.wait_observers(baseline) == baseline
