# -*- test-case-name: tests.application.test_datadir -*-
"""
The files the gateway writes before it starts: the data directory and the
generated API key in it.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from gateway.config import ConfigError, GatewayConfig

__all__ = ["prepare_data_dir", "read_or_create_api_key"]


def prepare_data_dir(config: GatewayConfig) -> str:
    """
    Create the data directory if it is missing and return the API key:
    C{api.key}, or else the one generated once into the data directory.
    """
    os.makedirs(config.storage.data_dir, exist_ok=True)
    return config.api.key or read_or_create_api_key(config.storage.api_key_path)


def read_or_create_api_key(path: Path) -> str:
    """
    Return the API key stored at C{path}, creating it (readable by the owner
    only) on first use.
    """
    try:
        key = path.read_text().strip()
    except FileNotFoundError:
        pass
    else:
        if not key:
            raise ConfigError(f"{path}: the API key file is empty")
        return key
    # Hex, not urlsafe base64: a key starting with "-" reads as an option.
    key = secrets.token_hex(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(key + "\n")
    return key
