"""
Start-up and shutdown of the real gateway (C{twistd -n coap-gateway}): what
an operator gets for a corrupt database, a port in use, a data directory
that is a file or cannot be written, a bad option; the files it writes; how
it takes repeated stop signals.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.interop.gateway_process import (
    STARTUP_TIMEOUT,
    VENV_BIN,
    GatewayProcess,
    clean_environ,
)

TWISTD = str(VENV_BIN / "twistd")
#: For the tests of the data directory's own files: no test CA under it.
NO_DTLS = {"COAP_DTLS_ENABLED": "false"}


def twistd(workdir: Path, *args: str, prefix: tuple[str, ...] = ()) -> tuple[int, str]:
    """Run the gateway on free ports until it exits; (exit status, its output)."""
    argv = [*prefix, TWISTD, "-n", "--pidfile=", "coap-gateway", *args]
    if "--coap-port" not in args:
        argv += ["--coap-port", "0"]
    if "--api-port" not in args:
        argv += ["--api-port", "0"]
    if "--dtls-port" not in args:
        argv += ["--dtls-port", "0"]
    done = subprocess.run(
        argv, cwd=workdir, env=clean_environ(), capture_output=True, timeout=STARTUP_TIMEOUT,
        check=False,
    )
    return done.returncode, (done.stdout + done.stderr).decode("utf-8", "replace")


#: The error line: printed before twistd logs, or after, when stderr goes to its log.
ERROR_LINE = re.compile(r"^(?:\S+ \[stderr#error\] )?coap-gateway: error: (?P<why>.*)$")


def error_line(status: int, output: str) -> str:
    """The reason of a start-up that failed as it should: status 1, one line, no traceback."""
    assert status == 1, output
    assert "Traceback" not in output, output
    errors = [line for line in output.splitlines() if "error" in line]
    assert len(errors) == 1, output
    match = ERROR_LINE.match(errors[0])
    assert match is not None, output
    return match["why"]


def test_corrupt_database(tmp_path: Path) -> None:
    """A database that is no database: one line naming it and what to do, exit status 1."""
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "gateway.db").write_bytes(os.urandom(4096))
    line = error_line(*twistd(tmp_path, "--data-dir", "data"))
    assert line == (
        f"cannot use the database {tmp_path}/data/gateway.db (file is not a database):"
        " move it away (a new one is made) or restore it from a backup"
    )


@pytest.mark.parametrize(
    ("kind", "option", "what"),
    [(socket.SOCK_DGRAM, "--coap-port", "CoAP on udp"), (socket.SOCK_STREAM, "--api-port",
                                                          "the API on tcp"),
     (socket.SOCK_DGRAM, "--dtls-port", "CoAP over DTLS on udp")],
)
def test_port_in_use(tmp_path: Path, kind: int, option: str, what: str) -> None:
    """A UDP, DTLS or API port in use: one line naming the port and the option, exit status 1."""
    family = socket.AF_INET if option == "--api-port" else socket.AF_INET6
    host = "127.0.0.1" if option == "--api-port" else "::"
    with socket.socket(family, kind) as taken:
        taken.bind((host, 0))
        if kind == socket.SOCK_STREAM:
            taken.listen()
        port = taken.getsockname()[1]
        line = error_line(*twistd(tmp_path, "--data-dir", "data", option, str(port)))
    assert line == (
        f"cannot listen for {what} [{host}]:{port} (Address already in use):"
        f" stop what uses it or choose another port with {option}"
    )


def test_data_directory_is_a_file(tmp_path: Path) -> None:
    """A data directory that is a file: one line naming its absolute path, exit status 1."""
    (tmp_path / "data").write_text("not a directory\n")
    line = error_line(*twistd(tmp_path, "--data-dir", "data"))
    assert line == (
        f"the data directory {tmp_path}/data is not a directory:"
        " point storage.data_dir (--data-dir) at a directory"
    )


# -- a data directory the gateway cannot write -----------------------------------


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A work directory another user can enter (pytest's own are owner-only)."""
    path = Path(tempfile.mkdtemp(prefix="gateway-startup-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        for directory, _, _ in os.walk(path):
            os.chmod(directory, 0o755)
        shutil.rmtree(path)


@contextmanager
def not_writable(directory: Path) -> Iterator[tuple[str, ...]]:
    """
    Make C{directory} read-only for the gateway; yields the command prefix
    to run it with.  root ignores permission bits, so as root the gateway
    runs as C{nobody}, owner of the directory and its files (as a service
    user would be) with the directory's write bit off: what an operator
    meets with a read-only state directory.
    """
    if os.geteuid() != 0:
        directory.chmod(0o555)
        yield ()
        return
    nobody = pwd.getpwnam("nobody")
    for path in (directory, *directory.iterdir()):
        os.chown(path, nobody.pw_uid, nobody.pw_gid)
    directory.chmod(0o555)
    assert shutil.which("setpriv"), "setpriv (util-linux) is needed to run the gateway as nobody"
    yield ("setpriv", f"--reuid={nobody.pw_uid}", f"--regid={nobody.pw_gid}", "--clear-groups")


def test_empty_data_directory_not_writable(shared_dir: Path) -> None:
    """An empty data directory the gateway cannot write: one line naming it, exit status 1."""
    data = shared_dir / "data"
    data.mkdir()
    with not_writable(data) as prefix:
        line = error_line(*twistd(shared_dir, "--data-dir", "data", prefix=prefix))
    assert line == (
        f"cannot write the API key {data}/api-key (Permission denied):"
        f" make {data} writable by the gateway's user, or set api.key"
    )


def test_read_only_data_directory_with_a_database(shared_dir: Path) -> None:
    """A read-only data directory with a database is refused at start-up, not at a first write."""
    GatewayProcess.start(shared_dir, environ=NO_DTLS).stop()
    data = shared_dir / "data"
    assert sorted(p.name for p in data.iterdir()) == ["api-key", "gateway.db"]
    with not_writable(data) as prefix:
        line = error_line(*twistd(shared_dir, "--data-dir", "data", prefix=prefix))
    assert line == (
        f"the directory {data} of the database takes no new files (Permission denied):"
        " make it writable by the gateway's user"
    )


# -- options, files, signals -----------------------------------------------------


def test_bad_option_is_one_line_and_a_hint(tmp_path: Path) -> None:
    """--coap-port abc prints the error and a hint to --help, nothing else, exit status 1."""
    status, output = twistd(tmp_path, "--coap-port", "abc")
    assert status == 1
    assert output.splitlines() == [
        "twistd coap-gateway: error: --coap-port: expected an integer, got 'abc'",
        "Run 'twistd coap-gateway --help' for the options.",
    ]


def test_key_generated_logged_once_files_owner_only(tmp_path: Path) -> None:
    """The first start logs where the API key went (not the key), paths absolute; files are 0600."""
    first = GatewayProcess.start(tmp_path, umask=0, relative_data_dir=True, environ=NO_DTLS)
    try:
        modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in first.data_dir.iterdir()}
    finally:
        first.stop()
    log = first.log()
    data = tmp_path / "data"
    assert log.count("API key generated") == 1
    assert f"API key generated at {data}/api-key\n" in log
    assert first.api_key not in log
    assert f"SQLite store {data}/gateway.db " in log and f"data in {data}\n" in log
    assert modes == dict.fromkeys(["api-key", "gateway.db", "gateway.db-wal", "gateway.db-shm"],
                                  0o600)
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    again = GatewayProcess.start(tmp_path, relative_data_dir=True)
    again.stop()
    assert "API key generated" not in again.log()


def test_repeated_stop_signal_is_ignored_quietly(tmp_path: Path) -> None:
    """SIGTERM and SIGINT at once (a process group signalled) stop the gateway once, cleanly."""
    gateway = GatewayProcess.start(tmp_path)
    gateway.proc.send_signal(signal.SIGTERM)
    gateway.proc.send_signal(signal.SIGINT)
    status = gateway.stop()
    log = gateway.log()
    assert status in (-signal.SIGTERM, -signal.SIGINT), log
    assert "Server Shut Down" in log, log
    assert "Traceback" not in log and "critical" not in log, log
    assert log.count("shutting down") == 1, log
