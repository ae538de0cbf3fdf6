"""
The programs the interop tests run against, found or failed for: a missing
peer fails the tests that need it, never skips them, so a green run means
they ran.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

__all__ = ["INSTALL_HINTS", "find_peer"]

#: How to get each peer.
INSTALL_HINTS = {
    "coap-client-notls": "install Debian's libcoap3-bin (make test does, when run as root)",
    "coap-client-openssl": "install Debian's libcoap3-bin (make test does, when run as root)",
    "coap-client-gnutls": "install Debian's libcoap3-bin (make test does, when run as root)",
    "openssl": "install Debian's openssl (make test does, when run as root)",
    "stdbuf": "install Debian's coreutils",
    "aiocoap-client": "it comes with the test extra: pip install -e '.[test]'",
}


def find_peer(name: str, *candidates: Path) -> str:
    """
    The first executable of C{candidates}, else C{name} on the PATH; the
    test fails, naming how to install it, when there is none.
    """
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed: {INSTALL_HINTS[name]}", pytrace=False)
    return found
