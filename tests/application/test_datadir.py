"""
Tests for L{gateway.application.datadir}: the data directory and the API key
file written before start-up.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from twisted.logger import capturedLogs, formatEvent

from gateway.application.datadir import prepare_data_dir, read_or_create_api_key
from gateway.application.startup import StartupError
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


def test_a_file_as_data_directory_is_a_startup_error(tmp_path: Path) -> None:
    """A data directory that is a file stops start-up with one line naming its absolute path."""
    (tmp_path / "var").write_text("")
    config = GatewayConfig(storage=StorageConfig(data_dir=str(tmp_path / "var")))
    with pytest.raises(StartupError) as raised:
        prepare_data_dir(config)
    assert str(raised.value) == (
        f"the data directory {tmp_path / 'var'} is not a directory:"
        " point storage.data_dir (--data-dir) at a directory"
    )


def test_unreadable_api_key_is_a_startup_error(tmp_path: Path) -> None:
    """An API key path that cannot be read (a directory, here) is one line naming it."""
    (tmp_path / "api-key").mkdir()
    with pytest.raises(StartupError, match=f"^cannot read the API key {tmp_path}/api-key "):
        read_or_create_api_key(tmp_path / "api-key")


def test_generated_key_is_logged_once_with_its_absolute_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Generating the key logs its absolute path (never the key); reading it later logs nothing."""
    monkeypatch.chdir(tmp_path)
    with capturedLogs() as events:
        key = read_or_create_api_key(Path("api-key"))
        read_or_create_api_key(Path("api-key"))
    [logged] = events
    assert formatEvent(logged) == f"API key generated at {tmp_path}/api-key"
    assert key not in repr(logged)


def test_key_file_is_owner_only_whatever_the_umask(tmp_path: Path) -> None:
    """The key file is 0600 under a umask that would leave it read-only, or world-readable."""
    for umask, name in ((0o277, "a"), (0o000, "b")):
        old = os.umask(umask)
        try:
            read_or_create_api_key(tmp_path / name)
        finally:
            os.umask(old)
        assert stat.S_IMODE(os.stat(tmp_path / name).st_mode) == 0o600
