# -*- test-case-name: tests.application.test_datadir -*-
"""
The files the gateway writes before it starts: the data directory and the
generated API key in it.  Whatever stops them is a L{StartupError} naming
the absolute path and what to do.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from twisted.logger import Logger

from gateway.config import ConfigError, GatewayConfig

from .startup import StartupError

__all__ = ["prepare_data_dir", "read_or_create_api_key"]

# The namespace of the gateway's other start-up lines.
log = Logger(namespace="gateway.tap")


def prepare_data_dir(config: GatewayConfig) -> str:
    """
    Create the data directory (owner-only) if it is missing and return the
    API key: C{api.key}, or else the one generated once into the data
    directory.
    """
    directory = os.path.abspath(config.storage.data_dir)
    if os.path.lexists(directory) and not os.path.isdir(directory):
        raise StartupError(
            f"the data directory {directory} is not a directory:"
            " point storage.data_dir (--data-dir) at a directory"
        )
    try:
        os.makedirs(directory, mode=0o700, exist_ok=True)
    except OSError as e:
        raise StartupError(
            f"cannot create the data directory {directory} ({e.strerror}):"
            " create it for the gateway's user or choose another --data-dir"
        ) from None
    return config.api.key or read_or_create_api_key(config.storage.api_key_path)


def read_or_create_api_key(path: Path) -> str:
    """
    Return the API key stored at C{path}, creating it (readable by the owner
    only, whatever the umask) on first use.
    """
    absolute = os.path.abspath(path)
    try:
        key = Path(absolute).read_text().strip()
    except FileNotFoundError:
        pass
    except OSError as e:
        raise StartupError(
            f"cannot read the API key {absolute} ({e.strerror}):"
            " make it readable by the gateway's user, or set api.key"
        ) from None
    else:
        if not key:
            raise ConfigError(f"{absolute}: the API key file is empty")
        return key
    # Hex, not urlsafe base64: a key starting with "-" reads as an option.
    key = secrets.token_hex(32)
    try:
        fd = os.open(absolute, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as e:
        raise StartupError(
            f"cannot write the API key {absolute} ({e.strerror}): make"
            f" {os.path.dirname(absolute)} writable by the gateway's user, or set api.key"
        ) from None
    with os.fdopen(fd, "w") as f:
        os.fchmod(fd, 0o600)
        f.write(key + "\n")
    log.info("API key generated at {path}", path=absolute)
    return key
