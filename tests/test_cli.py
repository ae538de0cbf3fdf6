"""
Tests for C{gatewayctl}: commands run against the API resource in memory
(through an injected HTTP function), plus one run over real HTTP.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any, Mapping, Optional

import pytest
import pytest_twisted
from treq.testing import StubTreq
from twisted.internet.task import Clock
from twisted.internet.threads import deferToThread
from twisted.logger import LogPublisher

from gateway.api.app import build_api
from gateway.application.compose import build_service
from gateway.cli import main
from gateway.service.build import Services, memory_services
from gateway.tap import Options
from tests.service.conftest import FAST_HASHER, result
from tests.service.test_registry import _self_signed

KEY = "cli-key"


class Ctl:
    """Runs gatewayctl against an in-memory API."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.stub = StubTreq(build_api(services, KEY))
        self.requests: list[tuple[str, str]] = []

    def http(
        self, method: str, url: str, headers: Mapping[str, str], body: Optional[bytes]
    ) -> tuple[int, bytes]:
        self.requests.append((method, url))
        d = self.stub.request(
            method, url, headers={k.encode(): [v.encode()] for k, v in headers.items()}, data=body
        )
        self.stub.flush()
        response = result(d)
        content = response.content()
        self.stub.flush()
        return response.code, result(content)

    def run(self, *argv: str, environ: Optional[dict[str, str]] = None) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        env = {"GATEWAY_API_KEY": KEY} if environ is None else environ
        code = main(list(argv), http=self.http, environ=env, stdout=out, stderr=err)
        return code, out.getvalue(), err.getvalue()

    def json(self, *argv: str) -> Any:
        code, out, err = self.run(*argv)
        assert code == 0, err
        return json.loads(out)


@pytest.fixture
def ctl() -> Ctl:
    clock = Clock()
    clock.advance(1_700_000_000)
    return Ctl(result(memory_services(clock, FAST_HASHER)))


def test_device_create_with_token(ctl: Ctl) -> None:
    """`device create NAME --token T` creates a device that authenticates with T."""
    body = ctl.json("device", "create", "sensor-1", "--token", "A1_TEST_TOKEN")
    assert body["access_token"] == "A1_TEST_TOKEN"
    assert ctl.services.credentials.authenticate_token("A1_TEST_TOKEN").name == "sensor-1"
    assert ctl.requests == [("POST", "http://127.0.0.1:8080/api/v1/devices")]


def test_device_create_with_gateways(ctl: Ctl) -> None:
    """`device create NAME --gateway GW` (repeatable) lists the gateways that may publish for it."""
    body = ctl.json("device", "create", "device2", "--gateway", "gw1", "--gateway", "gw2")
    assert body["gateways"] == ["gw1", "gw2"]


def test_command_send_queues_a_drogue_command(ctl: Ctl) -> None:
    """`command send APP DEVICE NAME --payload P` goes to Drogue's endpoint and is queued."""
    device = ctl.json("device", "create", "device1", "--application", "example-app")
    body = ctl.json("command", "send", "example-app", "device1", "reboot", "--payload", "now")
    assert (body["method"], body["params"], body["state"]) == ("reboot", "now", "QUEUED")
    assert ctl.requests[-1] == (
        "POST",
        "http://127.0.0.1:8080/api/command/v1alpha1/apps/example-app/devices/device1"
        "?command=reboot",
    )
    assert result(ctl.services.rpc.list(device["id"]))[0].params == "now"


def test_device_create_each_credential(ctl: Ctl, tmp_path: Path) -> None:
    """PSK, X.509 (from a file) and password credentials are sent as the API expects."""
    ctl.json("device", "create", "p", "--psk-identity", "id", "--psk-key", "0a0b")
    assert ctl.services.credentials.psk_for_identity("id")[1] == b"\n\x0b"
    pem = tmp_path / "c.pem"
    pem.write_text(_self_signed())
    body = ctl.json("device", "create", "x", "--x509", str(pem), "--application", "farm")
    assert body["credentials"][0]["type"] == "x509"
    assert body["application"] == "farm"
    body = ctl.json("device", "create", "d", "--password", "pw", "--username", "u")
    assert body["credentials"] == [{"type": "basic", "username": "u"}]


def test_credential_option_errors(ctl: Ctl) -> None:
    """Two credential kinds, or half a PSK, is an error before any request."""
    code, _, err = ctl.run("device", "create", "a", "--token", "t", "--password", "p")
    assert code == 1 and "one kind" in err
    code, _, err = ctl.run("device", "create", "a", "--psk-identity", "i")
    assert code == 1 and "--psk-key" in err
    assert ctl.requests == []


def test_device_by_name_or_id(ctl: Ctl) -> None:
    """DEVICE is an id or a name; show, list, update and delete work with either."""
    created = ctl.json("device", "create", "sensor-1")
    assert ctl.json("device", "show", "sensor-1")["id"] == created["id"]
    assert ctl.json("device", "show", created["id"])["name"] == "sensor-1"
    assert [d["name"] for d in ctl.json("device", "list")] == ["sensor-1"]
    assert ctl.json("device", "update", "sensor-1", "--disable")["enabled"] is False
    assert ctl.json("device", "delete", "sensor-1") == {"deleted": created["id"]}
    code, _, err = ctl.run("device", "show", "sensor-1")
    assert code == 1
    assert "no device with id or name 'sensor-1'" in err


def test_device_credentials_command(ctl: Ctl) -> None:
    """`device credentials DEVICE --new-token` replaces the token and prints the new one."""
    created = ctl.json("device", "create", "a")
    body = ctl.json("device", "credentials", "a", "--new-token")
    assert body["type"] == "access_token"
    assert body["token"] != created["access_token"]


def test_attributes(ctl: Ctl) -> None:
    """attributes set parses JSON values (else strings), get reads them, delete removes them."""
    ctl.json("device", "create", "a")
    body = ctl.json("attributes", "set", "a", "n=3", "s=hello", "o={\"x\": true}")
    assert body == {"scope": "shared", "updated": ["n", "o", "s"]}
    ctl.json("attributes", "set", "a", "--scope", "server", "z=null")
    assert ctl.json("attributes", "get", "a", "--scope", "shared") == {
        "shared": {"n": 3, "s": "hello", "o": {"x": True}}
    }
    assert ctl.json("attributes", "get", "a", "--keys", "z")["server"] == {"z": None}
    assert ctl.json("attributes", "delete", "a", "--scope", "shared", "n", "s")["deleted"] == [
        "n",
        "s",
    ]
    code, _, err = ctl.run("attributes", "set", "a", "novalue")
    assert code == 1 and "key=value" in err


def test_telemetry_latest(ctl: Ctl) -> None:
    """telemetry latest prints the latest value of each key."""
    created = ctl.json("device", "create", "a")
    result(ctl.services.telemetry.record(created["id"], [(5, {"t": 1})]))
    assert ctl.json("telemetry", "latest", "a") == {"t": {"ts": 5, "value": 1}}


def test_profiles(ctl: Ctl, tmp_path: Path) -> None:
    """profile create/list/show/update/delete, with a .proto schema read from a file."""
    proto = tmp_path / "t.proto"
    schema = 'syntax = "proto3"; message M {}'
    proto.write_text(schema)
    body = ctl.json(
        "profile", "create", "nb", "--payload-format", "protobuf",
        "--telemetry-proto", str(proto), "--power-mode", "psm", "--psm-activity-timer", "10000",
    )
    assert (body["payload_format"], body["telemetry_proto"]) == ("protobuf", schema)
    assert [p["name"] for p in ctl.json("profile", "list")] == ["default", "nb"]
    assert ctl.json("profile", "update", "nb", "--power-mode", "edrx")["power_mode"] == "edrx"
    assert ctl.json("profile", "show", "nb")["psm_activity_timer"] == 10000
    assert ctl.json("profile", "delete", "nb") == {"deleted": "nb"}
    code, _, err = ctl.run("profile", "delete", "default")
    assert code == 1
    assert "(HTTP 409)" in err


def test_profile_with_a_bad_schema_file(ctl: Ctl, tmp_path: Path) -> None:
    """A .proto file that does not compile fails the command with the gateway's reason."""
    proto = tmp_path / "bad.proto"
    proto.write_text('syntax = "proto3";\nmessage M { int32 a = 1 [default = 2]; }')
    code, _, err = ctl.run(
        "profile", "create", "pb", "--payload-format", "protobuf", "--attributes-proto", str(proto)
    )
    assert code == 1
    assert "attributes_proto: attributes.proto, line 2: default values are not allowed" in err
    assert "(HTTP 400)" in err


def test_profile_strict_json(ctl: Ctl) -> None:
    """--strict-json and --no-strict-json set a profile's strictness; without either it stays."""
    assert ctl.json("profile", "create", "s", "--strict-json")["strict_json"] is True
    assert ctl.json("profile", "update", "s", "--power-mode", "psm")["strict_json"] is True
    assert ctl.json("profile", "update", "s", "--no-strict-json")["strict_json"] is False


def test_table_output(ctl: Ctl) -> None:
    """--table prints lists as aligned columns and objects as key/value rows."""
    ctl.json("device", "create", "a")
    code, out, _ = ctl.run("--table", "device", "list")
    lines = out.splitlines()
    assert code == 0
    assert lines[0].split()[:2] == ["id", "name"]
    assert lines[1].split()[1] == "a"
    code, out, _ = ctl.run("--table", "profile", "show", "default")
    assert out.splitlines()[0].split() == ["key", "value"]


def test_table_times_readable_one_value_per_cell(ctl: Ctl) -> None:
    """--table shows ms times as UTC ISO 8601 and nested values one per row."""
    created = ctl.json("device", "create", "a", "--token", "T1")
    result(ctl.services.telemetry.record(created["id"], [(1_700_000_000_500, {"t": 21.5})]))
    code, out, _ = ctl.run("--table", "telemetry", "latest", "a")
    assert code == 0
    assert out.splitlines() == [
        "key      value",
        "t.ts     2023-11-14T22:13:20.500Z",
        "t.value  21.5",
    ]
    _, out, _ = ctl.run("--table", "device", "show", "a")
    rows = dict(line.split(None, 1) for line in out.splitlines()[1:])
    assert rows["created"] == "2023-11-14T22:13:20.000Z"
    assert rows["credentials.0.type"] == "access_token"
    _, out, _ = ctl.run("--table", "device", "list")
    assert "2023-11-14T22:13:20.000Z" in out.splitlines()[1].split()


def test_device_claim(ctl: Ctl) -> None:
    """`device claim DEVICE` shows the pending claim, never its secret, or says there is none."""
    created = ctl.json("device", "create", "a")
    code, _, err = ctl.run("device", "claim", "a")
    assert (code, err) == (
        1, f"gatewayctl: error: device {created['id']!r} has no pending claim (HTTP 404)\n"
    )
    result(ctl.services.claiming.request_claim(created["id"], "s3cret", 60_000))
    assert ctl.json("device", "claim", "a") == {
        "created": 1_700_000_000_000,
        "expires_at": 1_700_000_060_000,
        "secret_required": True,
    }
    code, out, _ = ctl.run("--table", "device", "claim", "a")
    assert "expires_at       2023-11-14T22:14:20.000Z" in out.splitlines()
    assert "s3cret" not in out


def test_bad_url_is_one_error_line() -> None:
    """--url that is no http URL is one error line and exit status 1, before any request."""
    for url in ("foo", "http://127.0.0.1:port"):
        err = io.StringIO()
        code = main(["--url", url, "--key", "k", "device", "list"], environ={},
                    stdout=io.StringIO(), stderr=err)
        assert code == 1, url
        [line] = err.getvalue().splitlines()
        assert line == f"gatewayctl: error: --url: expected http://HOST:PORT, got {url!r}"


def test_key_sources(ctl: Ctl, tmp_path: Path) -> None:
    """The key comes from --key, else the environment, else <data-dir>/api-key; none is an error."""
    assert ctl.run("--key", KEY, "profile", "list", environ={})[0] == 0
    (tmp_path / "api-key").write_text(KEY + "\n")
    assert ctl.run("--data-dir", str(tmp_path), "profile", "list", environ={})[0] == 0
    code, _, err = ctl.run("--data-dir", str(tmp_path / "none"), "profile", "list", environ={})
    assert code == 1 and "no API key" in err
    code, _, err = ctl.run("--key", "wrong", "profile", "list", environ={})
    assert code == 1 and "(HTTP 401)" in err


def test_unreachable_gateway() -> None:
    """A gateway that does not answer is reported, not a traceback."""
    err = io.StringIO()
    code = main(
        ["--url", "http://127.0.0.1:1", "--key", "k", "profile", "list"],
        environ={},
        stdout=io.StringIO(),
        stderr=err,
    )
    assert code == 1
    assert "cannot reach the gateway" in err.getvalue()


@pytest_twisted.ensureDeferred
async def test_over_real_http(tmp_path: Path) -> None:
    """gatewayctl's urllib transport drives a running gateway on loopback."""
    from twisted.internet import reactor

    options = Options(environ={})
    options.parseOptions(
        ["--data-dir", str(tmp_path), "--coap-bind", "127.0.0.1", "--coap-port", "0",
         "--api-port", "0", "--dtls-port", "0"]
    )
    top = build_service(options["settings"], reactor, LogPublisher())
    top.startService()
    await top.whenListening()
    try:
        host, port = top.api_address() or ("", 0)
        out, err = io.StringIO(), io.StringIO()
        argv = ["--url", f"http://{host}:{port}", "--data-dir", str(tmp_path),
                "device", "create", "sensor-1", "--token", "A1_TEST_TOKEN"]
        code = await deferToThread(main, argv, environ={}, stdout=out, stderr=err)
        assert code == 0, err.getvalue()
        assert json.loads(out.getvalue())["access_token"] == "A1_TEST_TOKEN"
        layer = top.service_layer
        assert layer is not None
        assert layer.credentials.authenticate_token("A1_TEST_TOKEN").name == "sensor-1"
    finally:
        await top.stopService()


def test_table_flag_after_the_command() -> None:
    """--table is understood after the command as well as before it."""
    from gateway.cli import _parser

    assert _parser().parse_args(["device", "list", "--table"]).table is True
    assert _parser().parse_args(["--table", "device", "list"]).table is True
    assert _parser().parse_args(["device", "list"]).table is False


def test_values_starting_with_a_dash() -> None:
    """A key or token that starts with "-" is taken as the option's value."""
    from gateway.cli import _join_values, _parser

    argv = _join_values(["--key", "-abc", "device", "create", "d", "--token", "-tok"])
    args = _parser().parse_args(argv)
    assert (args.key, args.token) == ("-abc", "-tok")
