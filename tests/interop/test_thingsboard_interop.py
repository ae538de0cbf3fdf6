"""
The ThingsBoard dialect against real clients (libcoap's coap-client-notls,
aiocoap-client), served by L{tests.dialects.tbserver} over SQLite.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import attrs
import pytest

REPO = Path(__file__).resolve().parents[2]
TOKEN = "A1_TEST_TOKEN"


@attrs.frozen
class TBServer:
    port: int
    pid: int

    def uri(self, path: str) -> str:
        return f"coap://127.0.0.1:{self.port}/{path}"


@pytest.fixture(scope="module")
def tb_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TBServer]:
    data = tmp_path_factory.mktemp("tbdata")
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.dialects.tbserver", str(data)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if not line.strip().isdigit():
            proc.kill()
            raise RuntimeError(f"tbserver did not start: {line!r} {proc.stderr.read()!r}")
        yield TBServer(int(line), proc.pid)
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture(scope="module")
def libcoap() -> str:
    path = shutil.which("coap-client-notls")
    if path is None:
        pytest.skip("coap-client-notls is not installed (Debian: libcoap3-bin)")
    return path


def run(*argv: str, timeout: float = 20) -> str:
    done = subprocess.run(argv, capture_output=True, timeout=timeout, check=False)
    return (done.stdout + done.stderr).decode("utf-8", "replace")


def test_telemetry_piggybacked_created(tb_server: TBServer, libcoap: str) -> None:
    """libcoap's JSON telemetry POST is answered with a piggybacked 2.01 ACK."""
    out = run(libcoap, "-v", "6", "-m", "post", "-t", "json", "-e", '{"temperature":25}',
              tb_server.uri(f"api/v1/{TOKEN}/telemetry"))
    assert "t:ACK c:2.01" in out


def test_attributes_round_trip(tb_server: TBServer, libcoap: str) -> None:
    """Client attributes posted with libcoap read back through GET with clientKeys."""
    run(libcoap, "-m", "post", "-t", "json", "-e", '{"model":"x1","big":123456789012345678901}',
        tb_server.uri(f"api/v1/{TOKEN}/attributes"))
    query = f"api/v1/{TOKEN}/attributes?clientKeys=model,big"
    out = run(libcoap, "-m", "get", tb_server.uri(query))
    assert json.loads(out.strip()) == {"client": {"model": "x1", "big": 123456789012345678901}}


def test_errors(tb_server: TBServer, libcoap: str) -> None:
    """An unknown token is 4.01 and malformed JSON 4.00, as libcoap reports them."""
    assert "4.01" in run(libcoap, "-m", "post", "-e", "{}", tb_server.uri("api/v1/NOPE/telemetry"))
    assert "4.00" in run(libcoap, "-m", "post", "-e", "{x",
                         tb_server.uri(f"api/v1/{TOKEN}/telemetry"))


def test_provision_and_use_token(tb_server: TBServer, libcoap: str) -> None:
    """A device provisioned with libcoap can post telemetry with the returned token."""
    body = '{"provisionDeviceKey":"prov-key","provisionDeviceSecret":"prov-secret",' \
           '"deviceName":"interop-1"}'
    answer = json.loads(run(libcoap, "-m", "post", "-e", body, tb_server.uri("api/v1/provision")))
    assert answer["status"] == "SUCCESS"
    out = run(libcoap, "-v", "6", "-m", "post", "-e", '{"a":1}',
              tb_server.uri(f"api/v1/{answer['credentialsValue']}/telemetry"))
    assert "c:2.01" in out


def test_observe_shared_attributes(tb_server: TBServer, libcoap: str) -> None:
    """libcoap observing attributes receives the shared state and then each change."""
    client = subprocess.Popen(
        [libcoap, "-s", "4", "-m", "get", tb_server.uri(f"api/v1/{TOKEN}/attributes")],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        time.sleep(1.0)
        os.kill(tb_server.pid, signal.SIGUSR1)
        time.sleep(0.5)
        os.kill(tb_server.pid, signal.SIGUSR1)
        out, _ = client.communicate(timeout=15)
    finally:
        if client.poll() is None:
            client.kill()
    text = out.decode()
    assert '{"led":1}' in text and '{"led":2}' in text


def test_aiocoap_client_telemetry(tb_server: TBServer) -> None:
    """aiocoap-client's telemetry POST is answered 2.01."""
    client = REPO / ".venv" / "bin" / "aiocoap-client"
    if not client.exists():
        pytest.skip("aiocoap-client is not installed")
    out = run(str(client), "-m", "POST", "--content-format", "application/json",
              "--payload", '{"h":40}', "-v", tb_server.uri(f"api/v1/{TOKEN}/telemetry"))
    assert "2.01" in out or "Created" in out, out
