"""
CoAP over DTLS end to end: the real gateway (C{twistd -n coap-gateway}, DTLS
on by default with its own test CA) against Debian's C{coap-client-openssl}
and C{coap-client-gnutls}, over IPv4 and IPv6, with ThingsBoard's own
commands.  These clients exit 0 even when DTLS fails, so every check reads
what they print; each failure must also leave no session behind.
"""

from __future__ import annotations

import itertools
import json
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest

from tests.interop.gateway_process import (
    CLIENT_TIMEOUT,
    RESPONSE_LINE,
    VENV_BIN,
    GatewayProcess,
    clean_environ,
)
from tests.interop.peers import find_peer
from tests.interop.watch import OutputWatcher

#: Short deadlines, so a failed handshake is seen to leave nothing within seconds.
#: Debug logging: a closed session logs a line, which L{Dtls.wait_no_sessions} wakes on.
CONFIG = '[dtls]\nhandshake_timeout = 4.0\nsweep_interval = 0.25\n[log]\nlevel = "debug"\n'
HOSTS = ("127.0.0.1", "::1")
CLIENTS = ("coap-client-openssl", "coap-client-gnutls")
#: GnuTLS drops every cipher but AES-128-CCM-8 here, whatever priority string
#: libcoap asks for (libcoap sets OpenSSL's list itself, so only GnuTLS can).
CCM8_ONLY = "[overrides]\n" + "".join(
    f"tls-disabled-cipher = {cipher}\n"
    for cipher in (
        "AES-256-GCM", "AES-128-GCM", "AES-256-CBC", "AES-128-CBC", "AES-256-CCM", "AES-128-CCM",
        "AES-256-CCM-8", "CHACHA20-POLY1305", "CAMELLIA-256-GCM", "CAMELLIA-128-GCM",
        "CAMELLIA-256-CBC", "CAMELLIA-128-CBC", "3DES-CBC",
    )
)
_serial = itertools.count(1)


def unique(prefix: str) -> str:
    return f"{prefix}-{next(_serial)}-{time.monotonic_ns() % 1_000_000}"


@attrs.frozen
class Run:
    """What one client run printed: its CoAP response codes and the whole log."""

    codes: list[str]
    payloads: list[str]
    log: str


def coaps(client: str, *args: str, env: dict[str, str] | None = None) -> Run:
    """One run of C{client} (the last argument is the URI); never trusts its exit status."""
    done = subprocess.run(
        [client, *args], capture_output=True, timeout=CLIENT_TIMEOUT, check=False,
        env={**clean_environ(), **(env or {})},
    )
    log = (done.stdout + done.stderr).decode("utf-8", "replace")
    found = [m for m in RESPONSE_LINE.finditer(log) if m["code"] != "0.00"]
    return Run([m["code"] for m in found], [m["payload"] or "" for m in found], log)


def host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


@attrs.define
class Dtls:
    """The gateway under test and what every test needs of it."""

    gw: GatewayProcess
    ca: Path
    openssl_bin: str

    def uri(self, path: str, host: str = "127.0.0.1") -> str:
        return f"coaps://{host_port(host, self.gw.dtls_port)}/{path.lstrip('/')}"

    def status(self) -> dict[str, Any]:
        found: dict[str, Any] = self.gw.api_ok("GET", "/api/v1/dtls")
        return found

    def sessions(self) -> int:
        sessions = self.status()["sessions"]
        return int(sessions["open"] + sessions["handshaking"])

    def wait_no_sessions(self, seconds: float = 8.0) -> int:
        """The session count once it is 0, or whatever it is after C{seconds}."""
        # Wakes on the gateway's output: a closed session logs a line.
        try:
            self.gw.output.wait_until(lambda _: self.sessions() == 0, seconds, "sessions left")
        except TimeoutError:
            pass
        return self.sessions()

    def latest(self, device_id: str) -> dict[str, Any]:
        found: dict[str, Any] = self.gw.api_ok(
            "GET", f"/api/v1/devices/{device_id}/telemetry/latest")
        return found

    def ctl(self, *args: str) -> Any:
        done = subprocess.run(
            [str(VENV_BIN / "gatewayctl"), "--url", self.gw.api_url, "--key", self.gw.api_key,
             *args], capture_output=True, timeout=CLIENT_TIMEOUT, check=False,
            env=clean_environ(),
        )
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    def psk_device(self, key: bytes = b"secretkey") -> tuple[str, str]:
        """A device with a PSK (and no token); its (id, identity)."""
        identity = unique("psk")
        device = self.ctl("device", "create", unique("psk-dev"), "--psk-identity", identity,
                          "--psk-key", key.hex())
        return device["id"], identity


@pytest.fixture(scope="module")
def dtls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dtls]:
    """The real gateway with its default DTLS listener (test CA), shorter deadlines."""
    openssl_bin = find_peer("openssl")
    for client in CLIENTS:
        find_peer(client)
    gw = GatewayProcess.start(tmp_path_factory.mktemp("dtls"), config=CONFIG)
    try:
        assert gw.dtls_port, gw.log()
        match = re.search(r"DTLS uses the test CA (\S+) \(made now\)", gw.log())
        assert match is not None, gw.log()
        assert f"coap-client-openssl -R {match[1]}" in gw.log()
        yield Dtls(gw, Path(match[1]), openssl_bin)
    finally:
        gw.stop()
    log = gw.log()
    assert "Traceback" not in log and "Unhandled" not in log, log


@pytest.fixture
def ca_root(dtls: Dtls, tmp_path: Path) -> Path:
    """The gateway's test CA under the name ThingsBoard's guide gives it."""
    path = tmp_path / "ca-root.pem"
    shutil.copy(dtls.ca, path)
    return path


def self_signed(dtls: Dtls, tmp_path: Path) -> tuple[Path, Path]:
    """ThingsBoard's two commands for a device's self-signed certificate, as its guide has them."""
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run([dtls.openssl_bin, "ecparam", "-out", str(key), "-name", "secp256r1",
                    "-genkey"], check=True, capture_output=True, timeout=CLIENT_TIMEOUT)
    # The guide's command asks for the subject: Enter through every question.
    subprocess.run([dtls.openssl_bin, "req", "-new", "-key", str(key), "-x509", "-nodes",
                    "-days", "365", "-out", str(cert)], input=b"\n" * 10, check=True,
                   capture_output=True, timeout=CLIENT_TIMEOUT)
    return cert, key


# -- ThingsBoard's commands ------------------------------------------------------


@pytest.mark.parametrize("host", HOSTS)
@pytest.mark.parametrize("client", CLIENTS)
def test_one_way_with_access_token(dtls: Dtls, ca_root: Path, client: str, host: str) -> None:
    """ThingsBoard's one-way command: server checked against the CA, token in the URL, 2.01."""
    device = dtls.gw.api_ok("POST", "/api/v1/devices", {"name": unique("tok")})
    token = device["access_token"]
    run = coaps(find_peer(client), "-v", "6", "-m", "POST", "-R", str(ca_root), "-t",
                "application/json", "-e", '{"temperature":25}',
                dtls.uri(f"api/v1/{token}/telemetry", host))
    assert run.codes == ["2.01"], run.log
    assert dtls.latest(device["id"])["temperature"]["value"] == 25
    assert dtls.wait_no_sessions() == 0  # the client said close_notify


@pytest.mark.parametrize("host", HOSTS)
@pytest.mark.parametrize("client", CLIENTS)
def test_mutual_self_signed_certificate(
    dtls: Dtls, tmp_path: Path, client: str, host: str
) -> None:
    """ThingsBoard's X.509 commands: a self-signed certificate registered with gatewayctl."""
    cert, key = self_signed(dtls, tmp_path)
    device = dtls.ctl("device", "create", unique("x509"), "--x509", str(cert))
    run = coaps(find_peer(client), "-v", "6", "-c", str(cert), "-j", str(key), "-m", "POST",
                "-t", "application/json", "-e", '{"temperature":25}',
                dtls.uri("api/v1/telemetry", host))
    assert run.codes == ["2.01"], run.log
    assert dtls.latest(device["id"])["temperature"]["value"] == 25


@pytest.mark.parametrize("host", HOSTS)
@pytest.mark.parametrize("client", CLIENTS)
def test_psk_on_tokenless_routes(dtls: Dtls, tmp_path: Path, client: str, host: str) -> None:
    """A PSK device uses -u/-k on the token-less telemetry, attributes and claim routes."""
    device_id, identity = dtls.psk_device()
    psk = ["-u", identity, "-k", "secretkey"]
    binary = find_peer(client)
    telemetry = coaps(binary, "-v", "6", *psk, "-m", "POST", "-e", '{"t":1}',
                      dtls.uri("api/v1/telemetry", host))
    attributes = coaps(binary, "-v", "6", *psk, "-m", "POST", "-e", '{"fw":"v1"}',
                       dtls.uri("api/v1/attributes", host))
    read = coaps(binary, "-v", "6", *psk, "-m", "GET", dtls.uri("api/v1/attributes", host))
    claim = coaps(binary, "-v", "6", *psk, "-m", "POST", dtls.uri("api/v1/claim", host))
    assert (telemetry.codes, attributes.codes, claim.codes) == (["2.01"],) * 3, telemetry.log
    assert read.codes == ["2.05"] and json.loads(read.payloads[-1]) == {"client": {"fw": "v1"}}
    assert dtls.latest(device_id)["t"]["value"] == 1


def test_tokenless_route_needs_a_client_identity(dtls: Dtls, ca_root: Path) -> None:
    """A one-way session (no client identity) gets 4.01 on the token-less routes."""
    run = coaps(find_peer("coap-client-openssl"), "-v", "6", "-R", str(ca_root), "-m", "POST",
                "-e", '{"t":1}', dtls.uri("api/v1/telemetry"))
    assert run.codes == ["4.01"], run.log


def test_ccm8_when_it_is_the_only_offer(dtls: Dtls, ca_root: Path, tmp_path: Path) -> None:
    """A client offering only CCM8 negotiates PSK-AES128-CCM8 and ECDHE-ECDSA-AES128-CCM8."""
    priorities = tmp_path / "ccm8-only.conf"
    priorities.write_text(CCM8_ONLY)
    env = {"GNUTLS_SYSTEM_PRIORITY_FILE": str(priorities)}
    gnutls = find_peer("coap-client-gnutls")
    device_id, identity = dtls.psk_device()
    psk = coaps(gnutls, "-v", "9", "-u", identity, "-k", "secretkey", "-m", "POST", "-e",
                '{"ccm8":1}', dtls.uri("api/v1/telemetry"), env=env)
    assert psk.codes == ["2.01"], psk.log
    assert "Selected cipher suite: GNUTLS_PSK_AES_128_CCM_8" in psk.log
    assert "Keeping ciphersuite c0.a4" not in psk.log  # PSK-AES128-CCM was not offered
    token = dtls.gw.api_ok("POST", "/api/v1/devices", {"name": unique("ccm8")})["access_token"]
    ecdsa = coaps(gnutls, "-v", "9", "-R", str(ca_root), "-m", "POST", "-e", '{"ccm8":2}',
                  dtls.uri(f"api/v1/{token}/telemetry"), env=env)
    assert ecdsa.codes == ["2.01"], ecdsa.log
    assert "Selected cipher suite: GNUTLS_ECDHE_ECDSA_AES_128_CCM_8" in ecdsa.log
    assert dtls.latest(device_id)["ccm8"]["value"] == 1


# -- block-wise and observe ------------------------------------------------------


@pytest.mark.parametrize("client", CLIENTS)
def test_blockwise_both_ways(dtls: Dtls, tmp_path: Path, client: str) -> None:
    """Over DTLS a 1.2 KB upload goes in Block1 pieces and a 1.2 KB read comes in Block2."""
    device_id, identity = dtls.psk_device()
    body = {f"k{i}": "v" * 20 for i in range(40)}
    upload = tmp_path / "big.json"
    upload.write_text(json.dumps(body))
    psk = ["-u", identity, "-k", "secretkey", "-b", "64"]
    posted = coaps(find_peer(client), "-v", "6", *psk, "-m", "POST", "-f", str(upload),
                   dtls.uri("api/v1/telemetry"))
    assert posted.codes[-1:] == ["2.01"] and "Block1:19/_/64" in posted.log, posted.log
    assert {k: v["value"] for k, v in dtls.latest(device_id).items()} == body
    dtls.gw.api_ok("POST", f"/api/v1/devices/{device_id}/attributes/shared", body)
    out = tmp_path / "read.json"
    read = coaps(find_peer(client), "-v", "6", *psk, "-m", "GET", "-o", str(out),
                 dtls.uri("api/v1/attributes?sharedKeys=" + ",".join(body)))
    assert "Block2:1/M/64" in read.log, read.log
    assert json.loads(out.read_text()) == {"shared": body}


@pytest.mark.parametrize("client", CLIENTS)
def test_observe_over_dtls(dtls: Dtls, tmp_path: Path, client: str) -> None:
    """A PSK device observing its attributes gets the state, then a notification per change."""
    device_id, identity = dtls.psk_device()
    shared = f"/api/v1/devices/{device_id}/attributes/shared"
    dtls.gw.api_ok("POST", shared, {"c": 3})
    out = tmp_path / "observe.out"
    # stdbuf: libcoap's log is stdio, fully buffered on a pipe otherwise.
    proc = subprocess.Popen(
        [find_peer("stdbuf"), "-oL", find_peer(client), "-v", "6", "-s", "8", "-u", identity,
         "-k", "secretkey", "-m", "get", "-o", str(out), dtls.uri("api/v1/attributes")],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    assert proc.stdout is not None
    log = OutputWatcher(proc.stdout)

    def received(payload: str) -> Callable[[str], bool]:
        return lambda text: any(m["payload"] == payload for m in RESPONSE_LINE.finditer(text))

    try:
        log.wait_until(received('{"c":3}'), 10, "no first observe response")
        dtls.gw.api_ok("POST", shared, {"led": 1})
        log.wait_until(received('{"led":1}'), 10, "no notification")
        proc.wait(timeout=CLIENT_TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert out.read_text() == '{"c":3}{"led":1}'
    assert dtls.wait_no_sessions() == 0


# -- what must fail, and leave no session behind ----------------------------------


def _refused(run: Run) -> None:
    assert run.codes == [], run.log


@pytest.mark.parametrize("client", CLIENTS)
def test_rogue_ca_fails(dtls: Dtls, tmp_path: Path, client: str) -> None:
    """A client trusting another CA refuses the server's certificate; nothing is kept."""
    rogue = tmp_path / "rogue-ca.pem"
    subprocess.run([dtls.openssl_bin, "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", str(tmp_path / "rogue.key"),
                    "-subj", "/CN=rogue CA", "-days", "2", "-out", str(rogue)],
                   check=True, capture_output=True, timeout=CLIENT_TIMEOUT)
    token = dtls.gw.api_ok("POST", "/api/v1/devices", {"name": unique("rogue")})["access_token"]
    run = coaps(find_peer(client), "-v", "6", "-B", "5", "-m", "POST", "-R", str(rogue), "-e",
                "{}", dtls.uri(f"api/v1/{token}/telemetry"))
    _refused(run)
    # openssl: "alert write:fatal:unknown CA"; gnutls: "The peer certificate's CA is unknown".
    assert re.search(r"unknown CA|CA is unknown", run.log), run.log
    assert dtls.wait_no_sessions() == 0


@pytest.mark.parametrize("client", CLIENTS)
def test_unregistered_client_certificate_fails(dtls: Dtls, tmp_path: Path, client: str) -> None:
    """A self-signed client certificate nobody registered is refused in the handshake."""
    cert, key = self_signed(dtls, tmp_path)
    before = dtls.status()["handshakes"]["x509"]["failed"]
    run = coaps(find_peer(client), "-v", "6", "-B", "5", "-c", str(cert), "-j", str(key), "-m",
                "POST", "-e", "{}", dtls.uri("api/v1/telemetry"))
    _refused(run)
    assert dtls.wait_no_sessions() == 0
    assert dtls.status()["handshakes"]["x509"]["failed"] == before + 1


@pytest.mark.parametrize("client", CLIENTS)
def test_unknown_psk_identity_fails(dtls: Dtls, client: str) -> None:
    """An identity no device holds gets an alert; nothing is kept."""
    run = coaps(find_peer(client), "-v", "6", "-B", "5", "-u", unique("nobody"), "-k",
                "secretkey", "-m", "POST", "-e", "{}", dtls.uri("api/v1/telemetry"))
    _refused(run)
    assert dtls.wait_no_sessions() == 0


@pytest.mark.parametrize("client", CLIENTS)
def test_wrong_psk_key_fails(dtls: Dtls, client: str) -> None:
    """A known identity with a wrong key stalls (no alert in DTLS), dropped at the deadline."""
    _, identity = dtls.psk_device()
    before = dtls.status()["handshakes"]["psk"]["timeout"]
    run = coaps(find_peer(client), "-v", "6", "-B", "3", "-u", identity, "-k", "wrong key",
                "-m", "POST", "-e", "{}", dtls.uri("api/v1/telemetry"))
    _refused(run)
    assert dtls.wait_no_sessions() == 0
    assert dtls.status()["handshakes"]["psk"]["timeout"] == before + 1
    assert f"PSK identity '{identity}' was found" in dtls.gw.log()


@pytest.mark.parametrize("client", CLIENTS)
def test_token_on_a_psk_session_fails(dtls: Dtls, client: str) -> None:
    """A valid access token in the URL of a PSK session is 4.01: the session is its device's."""
    token = dtls.gw.api_ok("POST", "/api/v1/devices", {"name": unique("tok")})["access_token"]
    _, identity = dtls.psk_device()
    run = coaps(find_peer(client), "-v", "6", "-u", identity, "-k", "secretkey", "-m", "POST",
                "-e", '{"t":1}', dtls.uri(f"api/v1/{token}/telemetry"))
    assert run.codes == ["4.01"], run.log
    assert dtls.wait_no_sessions() == 0


def test_status_counts_by_mode(dtls: Dtls) -> None:
    """gatewayctl dtls status shows the handshakes of every mode this module made."""
    status = dtls.ctl("dtls", "status")
    assert status["enabled"] is True
    for mode in ("psk", "x509", "one_way"):
        assert status["handshakes"][mode]["ok"] >= 1, status
    assert status["hello_verify_requests"] >= status["handshakes"]["psk"]["ok"]
