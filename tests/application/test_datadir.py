"""
Tests for L{gateway.application.datadir}: the data directory and the API key
file written before start-up.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from gateway.application.datadir import prepare_data_dir, read_or_create_api_key
from gateway.config import ApiConfig, ConfigError, GatewayConfig, StorageConfig


def test_api_key_created_once(tmp_path: Path) -> None:
    """The generated API key is created owner-only on first use and reused afterwards."""
    path = tmp_path / "api-key"
    key = read_or_create_api_key(path)
    assert len(key) >= 32
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert read_or_create_api_key(path) == key


def test_empty_api_key_file_is_an_error(tmp_path: Path) -> None:
    """An empty API key file is reported rather than silently accepted."""
    path = tmp_path / "api-key"
    path.write_text("\n")
    with pytest.raises(ConfigError, match="api-key: the API key file is empty"):
        read_or_create_api_key(path)


def test_prepare_creates_the_directory_and_its_key(tmp_path: Path) -> None:
    """A missing data directory is created with a generated key in it, the same next time."""
    data_dir = tmp_path / "a" / "var"
    config = GatewayConfig(storage=StorageConfig(data_dir=str(data_dir)))
    key = prepare_data_dir(config)
    assert (data_dir / "api-key").read_text() == key + "\n"
    assert prepare_data_dir(config) == key


def test_prepare_with_a_configured_key_writes_no_key(tmp_path: Path) -> None:
    """With api.key set that key is used and no key file is written."""
    config = GatewayConfig(api=ApiConfig(key="k"), storage=StorageConfig(data_dir=str(tmp_path)))
    assert prepare_data_dir(config) == "k"
    assert list(tmp_path.iterdir()) == []
