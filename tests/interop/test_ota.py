"""
OTA downloads end to end: the real gateway, packages uploaded and assigned
with C{gatewayctl ota}, and libcoap's clients as devices: a 1 MiB firmware
by plain Block2 over UDP (C{coap-client-notls -b 1024}) and over DTLS with
a PSK (C{coap-client-openssl}), chunks by C{size}/C{chunk}, an X.509
device, and the refusals with their codes and reasons.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.interop.gateway_process import GatewayProcess, clean_environ
from tests.interop.peers import find_peer
from tests.interop.test_dtls import Dtls, coaps, self_signed, unique

MIB = 1024 * 1024
#: Seconds a whole 1 MiB download may take (1,024 round trips on a loaded machine).
DOWNLOAD_TIMEOUT = 120.0


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dtls]:
    """The real gateway with its default DTLS listener (test CA)."""
    openssl_bin = find_peer("openssl")
    gateway = GatewayProcess.start(tmp_path_factory.mktemp("ota"))
    try:
        match = re.search(r"DTLS uses the test CA (\S+) \(made now\)", gateway.log())
        assert match is not None, gateway.log()
        yield Dtls(gateway, Path(match[1]), openssl_bin)
    finally:
        gateway.stop()
    log = gateway.log()
    assert "Traceback" not in log and "Unhandled" not in log, log


def _package(gw: Dtls, tmp_path: Path, size: int, kind: str = "firmware") -> tuple[str, bytes]:
    """Upload C{size} random bytes as a new package with C{gatewayctl}; its (title, body)."""
    body = os.urandom(size)
    path = tmp_path / "package.bin"
    path.write_bytes(body)
    title = unique("fw")
    uploaded = gw.ctl("ota", "upload", str(path), "--title", title, "--version", "1.0",
                      "--type", kind)
    assert uploaded["checksum"] == hashlib.sha256(body).hexdigest()
    return title, body


def _assign(gw: Dtls, device: str, title: str, kind: str = "firmware") -> None:
    gw.ctl("ota", "assign", device, "--title", title, "--version", "1.0", "--type", kind)


def _download(client: str, out: Path, *args: str) -> str:
    """Run C{client} writing the body to C{out}; its output (it exits 0 on errors too)."""
    done = subprocess.run(
        [client, "-m", "get", "-o", str(out), *args], capture_output=True,
        timeout=DOWNLOAD_TIMEOUT, check=False, env=clean_environ(),
    )
    return (done.stdout + done.stderr).decode("utf-8", "replace")


def _token_device(gw: Dtls) -> dict[str, Any]:
    device: dict[str, Any] = gw.gw.api_ok("POST", "/api/v1/devices", {"name": unique("ota")})
    return device


def test_one_mib_firmware_over_udp_with_block2(
    gw: Dtls, coap_client: str, tmp_path: Path
) -> None:
    """coap-client-notls -b 1024 gets 1 MiB by Block2; its SHA-256 is the fw_checksum pushed."""
    title, body = _package(gw, tmp_path, MIB)
    device = _token_device(gw)
    token = device["access_token"]
    _assign(gw, device["id"], title)
    shared = gw.gw.coap(coap_client, tmp_path, "get",
                        f"api/v1/{token}/attributes?sharedKeys=fw_checksum,fw_size,fw_title")
    assert shared.json() == {"shared": {
        "fw_checksum": hashlib.sha256(body).hexdigest(), "fw_size": MIB, "fw_title": title,
    }}
    out = tmp_path / "fw.bin"
    log = _download(coap_client, out, "-b", "1024", gw.gw.uri(f"fw/{token}"))
    assert out.read_bytes() == body, log[-2000:]
    reported = gw.gw.coap(coap_client, tmp_path, "post", f"api/v1/{token}/telemetry",
                          b'{"fw_state":"DOWNLOADED"}')
    assert reported.code == "2.01"
    events = gw.gw.api_ok("GET", "/api/v1/events", device=device["id"])["events"]
    (event,) = [e["event"] for e in events]
    assert event["type"] == "io.coap-gateway.telemetry.v1"
    assert [r["values"] for r in event["data"]] == [{"fw_state": "DOWNLOADED"}], event
    status = gw.ctl("ota", "status", device["id"])
    assert status["firmware"]["package"]["title"] == title
    assert status["firmware"]["state"] == "DOWNLOADED"


def test_one_mib_firmware_over_dtls_with_psk(gw: Dtls, tmp_path: Path) -> None:
    """coap-client-openssl with a PSK downloads 1 MiB from the token-less GET /fw, intact."""
    title, body = _package(gw, tmp_path, MIB)
    device_id, identity = gw.psk_device()
    _assign(gw, device_id, title)
    out = tmp_path / "fw.bin"
    log = _download(find_peer("coap-client-openssl"), out, "-u", identity, "-k", "secretkey",
                    "-b", "1024", gw.uri("fw"))
    assert hashlib.sha256(out.read_bytes()).hexdigest() == hashlib.sha256(body).hexdigest(), (
        log[-2000:]
    )


def test_x509_device_downloads_software(gw: Dtls, tmp_path: Path) -> None:
    """An X.509 device downloads its software from GET /sw on its DTLS session."""
    title, body = _package(gw, tmp_path, 64 * 1024, "software")
    cert, key = self_signed(gw, tmp_path)
    device = gw.ctl("device", "create", unique("x509"), "--x509", str(cert))
    _assign(gw, device["id"], title, "software")
    out = tmp_path / "sw.bin"
    log = _download(find_peer("coap-client-openssl"), out, "-c", str(cert), "-j", str(key),
                    "-b", "1024", gw.uri("sw"))
    assert out.read_bytes() == body, log[-2000:]


def test_chunks_by_size_and_chunk(gw: Dtls, coap_client: str, tmp_path: Path) -> None:
    """size/chunk select [size*chunk, size*chunk+size), on /fw and on the documented URL."""
    title, body = _package(gw, tmp_path, 5000)
    device = _token_device(gw)
    token = device["access_token"]
    _assign(gw, device["id"], title)
    for chunk, path in ((0, f"fw/{token}"), (2, f"api/v1/{token}/firmware"),
                        (4, f"fw/{token}")):
        out = tmp_path / f"chunk{chunk}.bin"
        query = f"?title={title}&version=1.0&size=1024&chunk={chunk}"
        log = _download(coap_client, out, gw.gw.uri(path + query))
        assert out.read_bytes() == body[1024 * chunk : 1024 * chunk + 1024], log


def test_refusals_have_codes_and_reasons(gw: Dtls, coap_client: str, tmp_path: Path) -> None:
    """Past-the-end chunks and wrong titles are 4.00, nothing assigned 4.04, each with a reason."""
    title, _ = _package(gw, tmp_path, 5000)
    device = _token_device(gw)
    token = device["access_token"]
    unassigned = gw.gw.coap(coap_client, tmp_path, "get", f"fw/{token}")
    assert (unassigned.code, unassigned.payload) == ("4.04", "no firmware assigned")
    _assign(gw, device["id"], title)
    past = gw.gw.coap(coap_client, tmp_path, "get", f"fw/{token}?size=1024&chunk=5")
    assert past.code == "4.00" and "past the end" in past.payload, past.log
    wrong = gw.gw.coap(coap_client, tmp_path, "get", f"api/v1/{token}/firmware?title=other")
    assert wrong.code == "4.00" and f"'{title}'" in wrong.payload, wrong.log
    version = gw.gw.coap(coap_client, tmp_path, "get", f"fw/{token}?version=9")
    assert version.code == "4.00" and "version" in version.payload, version.log
    nobody = gw.gw.coap(coap_client, tmp_path, "get", f"fw/{token}/extra")
    assert nobody.code == "4.01", nobody.log
    no_session = coaps(find_peer("coap-client-openssl"), "-v", "6", "-R", str(gw.ca),
                       "-m", "GET", gw.uri("fw"))
    assert no_session.codes == ["4.01"], no_session.log
