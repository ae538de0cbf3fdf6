"""
The real gateway as an operator runs it (C{twistd -n coap-gateway}), for the
interop tests: start it on port 0, read its ports from the "listening" log
line and its API key from the data directory, talk to its HTTP API with the
bearer key, and drive devices with C{coap-client-notls}.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Optional, TypeVar
from urllib.parse import urlencode

import attrs

from tests.interop.watch import OutputWatcher

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = REPO / ".venv" / "bin"

#: Seconds the gateway gets to log that it listens.
STARTUP_TIMEOUT = 15.0
#: Seconds one client run may take.
CLIENT_TIMEOUT = 20.0

LISTENING = re.compile(
    r"coap-gateway listening: CoAP on udp \[(?P<coap_host>[^\]]*)\]:(?P<coap_port>\d+)"
    r".*?; API on http://(?P<api_host>[^:;\s]+):(?P<api_port>\d+)"
)
#: The DTLS part of the "listening" line, when DTLS is served.
DTLS_LISTENING = re.compile(r"CoAP over DTLS on udp \[(?P<host>[^\]]*)\]:(?P<port>\d+)")
#: A response line of C{coap-client-notls -v 6}: type, numeric code, payload.
RESPONSE_LINE = re.compile(
    r"^v:1 t:(?P<type>ACK|CON|NON|RST) c:(?P<code>\d\.\d\d) i:\S+ .*?(?: :: '(?P<payload>.*)')?$",
    re.MULTILINE,
)

T = TypeVar("T")


def clean_environ() -> dict[str, str]:
    """The environment without C{GATEWAY_*} settings that would change the gateway."""
    return {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}


@attrs.frozen
class HttpReply:
    status: int
    body: Any


@attrs.frozen
class CoapReply:
    """
    What C{coap-client-notls} got: the (last, non-empty) response code, the
    response payload and the whole C{-v 6} log.
    """

    code: str
    payload: str
    log: str
    #: The message type that carried it: "ACK" when piggybacked.
    type: str = ""
    #: The body as bytes, for a 2.xx response (what C{-o} wrote).
    raw: bytes = b""

    def json(self) -> Any:
        return json.loads(self.payload)


@attrs.define
class GatewayProcess:
    """A running C{twistd -n coap-gateway} and the ways to talk to it."""

    proc: subprocess.Popen[bytes]
    #: The gateway's log as it comes (also appended to C{gateway.log}).
    output: OutputWatcher
    data_dir: Path
    coap_port: int = 0
    #: 0 when DTLS is not served.
    dtls_port: int = 0
    api_port: int = 0
    api_key: str = ""
    #: The loopback address devices and the API reach it on.
    host: str = "127.0.0.1"

    @classmethod
    def start(
        cls,
        workdir: Path,
        config: str = "",
        umask: int = -1,
        relative_data_dir: bool = False,
        environ: Optional[dict[str, str]] = None,
        host: str = "127.0.0.1",
    ) -> "GatewayProcess":
        """
        Start the gateway in C{workdir} and wait until it listens; C{config}
        is TOML for C{--config} (none: the defaults), C{umask} is the
        gateway's, if given, C{--data-dir} is C{data} relative to C{workdir}
        with C{relative_data_dir}, else absolute (kept across starts), and
        C{environ} is added to a clean environment.  Another C{host} than
        the default binds the CoAP, DTLS and API listeners to that address.
        """
        data_dir = workdir / "data"
        log_path = workdir / "gateway.log"
        argv = [
            str(VENV_BIN / "twistd"), "-n", "--pidfile=", "coap-gateway",
            "--coap-port", "0", "--api-port", "0", "--dtls-port", "0",
            "--data-dir", "data" if relative_data_dir else str(data_dir),
        ]
        if config:
            (workdir / "gateway.toml").write_text(config)
            argv += ["--config", str(workdir / "gateway.toml")]
        env = {**clean_environ(), **(environ or {})}
        if host != "127.0.0.1":
            for section in ("COAP", "DTLS", "API"):
                env[f"GATEWAY_{section}_BIND"] = host
        proc = subprocess.Popen(
            argv, cwd=workdir, env=env,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, umask=umask,
        )
        assert proc.stdout is not None
        gateway = cls(proc, OutputWatcher(proc.stdout, log_path), data_dir, host=host)
        try:
            match = gateway.output.wait_until(
                LISTENING.search, STARTUP_TIMEOUT, "the gateway logged no 'listening' line"
            )
            gateway.coap_port = int(match["coap_port"])
            dtls = DTLS_LISTENING.search(match.string)
            gateway.dtls_port = int(dtls["port"]) if dtls else 0
            gateway.api_port = int(match["api_port"])
            gateway.api_key = (data_dir / "api-key").read_text().strip()
        except BaseException:
            gateway.stop()
            raise
        return gateway

    def log(self) -> str:
        return self.output.text

    def stop(self) -> Optional[int]:
        """SIGTERM, then wait (SIGKILL after 10 s); the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        return self.proc.returncode

    # -- northbound HTTP API ---------------------------------------------------

    @property
    def api_url(self) -> str:
        return f"http://{self.host}:{self.api_port}"

    def api(
        self,
        method: str,
        path: str,
        body: Any = None,
        query: Optional[dict[str, str]] = None,
    ) -> HttpReply:
        """One API call with the bearer key; JSON in and out."""
        url = self.api_url + path + ("?" + urlencode(query) if query else "")
        headers = {"Authorization": f"Bearer {self.api_key}"}
        data = None
        if body is not None:
            headers["Content-Type"] = "application/json"
            data = json.dumps(body).encode("utf-8")
        request = urllib.request.Request(url, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                status, raw = response.status, response.read()
        except urllib.error.HTTPError as e:
            status, raw = e.code, e.read()
        return HttpReply(status, json.loads(raw) if raw else None)

    def api_ok(self, method: str, path: str, body: Any = None, **query: str) -> Any:
        """An API call that must succeed (2xx); its JSON body."""
        reply = self.api(method, path, body, query or None)
        assert 200 <= reply.status < 300, (method, path, reply)
        return reply.body

    # -- devices over CoAP -----------------------------------------------------

    def uri(self, path: str) -> str:
        return f"coap://{self.host}:{self.coap_port}/{path.lstrip('/')}"

    def coap(
        self,
        client: str,
        tmp: Path,
        method: str,
        path: str,
        payload: Optional[bytes] = None,
        extra: Sequence[str] = (),
    ) -> CoapReply:
        """
        One request with C{coap-client-notls -v 6}; a payload goes through a
        file (C{-f}) and the response body comes back through C{-o}.
        """
        out = tmp / f"coap-{time.monotonic_ns()}.out"
        argv = [client, "-v", "6", "-m", method, "-o", str(out), *extra]
        if payload is not None:
            body = tmp / f"coap-{time.monotonic_ns()}.in"
            body.write_bytes(payload)
            argv += ["-f", str(body)]
        argv.append(self.uri(path))
        done = subprocess.run(argv, capture_output=True, timeout=CLIENT_TIMEOUT, check=False)
        log = (done.stdout + done.stderr).decode("utf-8", "replace")
        responses = [m for m in RESPONSE_LINE.finditer(log) if m["code"] != "0.00"]
        assert responses, f"no response logged by {argv}:\n{log}"
        last = responses[-1]
        raw = out.read_bytes() if out.exists() else b""
        if out.exists():
            text = raw.decode("utf-8", "replace")
        else:  # libcoap writes only 2.xx bodies to -o; errors are in the log line
            text = last["payload"] or ""
        return CoapReply(last["code"], text, log, last["type"], raw)
