"""
The interop peers: `make test` gets them or fails with how to, and a test
whose peer is missing fails instead of being skipped.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.interop.peers import find_peer

REPO = Path(__file__).resolve().parents[1]


def test_make_test_without_coap_client_fails_with_an_install_hint(tmp_path: Path) -> None:
    """`make test` with coap-client-notls off the PATH fails at once, saying how to get it."""
    # A PATH with what make and the helper need, and no libcoap client (nor apt-get).
    for tool in ("make", "sh", "id"):
        found = shutil.which(tool)
        assert found is not None, tool
        (tmp_path / tool).symlink_to(found)
    done = subprocess.run(
        # (Were the client found, this would run the whole suite: the timeout ends that.)
        ["make", "--no-print-directory", "test"], cwd=REPO, capture_output=True, timeout=60,
        env={"PATH": str(tmp_path)}, check=False,
    )
    output = (done.stdout + done.stderr).decode()
    assert done.returncode != 0, output
    assert (
        "make test needs coap-client-notls: install Debian's libcoap3-bin"
        " (sudo apt-get install libcoap3-bin)"
    ) in output


def test_missing_peer_fails_the_test(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A peer neither given nor on the PATH fails the test, never skips it, saying how to get it."""
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(pytest.fail.Exception) as raised:
        find_peer("coap-client-notls", tmp_path / "nothing-here")
    assert str(raised.value) == (
        "coap-client-notls is not installed: install Debian's libcoap3-bin"
        " (make test does, when run as root)"
    )
    client = tmp_path / "aiocoap-client"
    client.write_text("#!/bin/sh\n")
    os.chmod(client, 0o755)
    assert find_peer("aiocoap-client", client) == str(client)
