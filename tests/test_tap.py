"""
Tests for L{gateway.tap} and L{gateway.application.compose}: the twistd
options and the composed service.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest
import pytest_twisted
from twisted.application import service
from twisted.application.service import IServiceMaker
from twisted.internet.defer import Deferred
from twisted.internet.protocol import DatagramProtocol
from twisted.logger import LogPublisher, capturedLogs
from twisted.plugin import getPlugins
from twisted.python import usage

from gateway.application.compose import build_service
from gateway.application.gateway import GatewayService
from gateway.application.listeners import Listener
from gateway.application.loglevel import LogLevelService
from gateway.application.startup import StartupError
from gateway.coap.udp import UDPTransport
from gateway.tap import Options, makeService

#: CON GET /nothing with message ID 0x1234 and no token.
GET_NOTHING = bytes([0x40, 0x01, 0x12, 0x34, 0xB7]) + b"nothing"


def _reactor() -> Any:
    from twisted.internet import reactor

    return reactor


def parse(argv: list[str], environ: dict[str, str] | None = None) -> Options:
    options = Options(environ=environ or {})
    options.parseOptions(argv)
    return options


def local_options(tmp_path: Path, *extra: str) -> Options:
    return parse(
        ["--data-dir", str(tmp_path / "var"), "--coap-port", "0", "--api-port", "0",
         "--dtls-port", "0", *extra]
    )


class _Client(DatagramProtocol):
    def __init__(self) -> None:
        self.answer: Deferred[bytes] = Deferred()

    def datagramReceived(self, datagram: bytes, addr: Any) -> None:
        if not self.answer.called:
            self.answer.callback(datagram)


async def exchange(host: str, port: int, datagram: bytes) -> bytes:
    reactor = _reactor()
    client = _Client()
    listening = reactor.listenUDP(0, client, interface=host)
    try:
        client.transport.write(datagram, (host, port))
        return await client.answer.addTimeout(10, reactor)
    finally:
        await listening.stopListening()


def test_plugin_is_registered() -> None:
    """twistd finds the coap-gateway ServiceMaker, which points at gateway.tap."""
    makers = {m.tapname: m for m in getPlugins(IServiceMaker)}
    maker = makers["coap-gateway"]
    assert maker.options is Options
    assert maker.makeService is makeService


def test_no_arguments_gives_defaults() -> None:
    """Without arguments the options carry the built-in defaults."""
    settings = parse([])["settings"]
    assert (settings.coap.bind, settings.coap.port) == ("::", 5683)
    assert settings.storage.data_dir == "./var"


def test_config_file_and_overrides(tmp_path: Path) -> None:
    """--config reads the file and each override option replaces its key."""
    path = tmp_path / "gw.toml"
    path.write_text('[coap]\nport = 7000\nack_timeout = 9.0\n[log]\nlevel = "error"\n')
    settings = parse(
        [
            "--config", str(path),
            "--coap-port", "7001",
            "--coap-bind", "127.0.0.1",
            "--api-port", "9090",
            "--data-dir", "/srv/gw",
            "--log-level", "debug",
        ]
    )["settings"]
    assert (settings.coap.bind, settings.coap.port) == ("127.0.0.1", 7001)
    assert settings.coap.transmission.ack_timeout == 9.0
    assert settings.api.port == 9090
    assert settings.storage.data_dir == "/srv/gw"
    assert settings.log.level == "debug"


def test_environment_is_used() -> None:
    """The options take GATEWAY_* variables from the environment they are given."""
    assert parse([], {"GATEWAY_COAP_PORT": "7100"})["settings"].coap.port == 7100


@pytest.mark.parametrize(
    ("argv", "environ", "message"),
    [
        (["--coap-port", "abc"], {}, "--coap-port: expected an integer, got 'abc'"),
        (["--coap-bind", "example"], {}, "--coap-bind: expected an IP address literal"),
        (["--log-level", "loud"], {}, "--log-level: 'level' must be in"),
        ([], {"GATEWAY_COAP_PORT": "abc"}, "GATEWAY_COAP_PORT: expected an integer"),
        (["--config", "/nonexistent/gw.toml"], {}, "/nonexistent/gw.toml: cannot read"),
    ],
)
def test_bad_settings_are_usage_errors(
    argv: list[str], environ: dict[str, str], message: str
) -> None:
    """A bad option, variable or file stops start-up with a usage error naming it."""
    with pytest.raises(usage.UsageError) as raised:
        parse(argv, environ)
    assert str(raised.value).startswith(message)


def test_bad_option_under_twistd_is_two_lines() -> None:
    """Under twistd a bad option exits with the error and a hint to --help, not the usage text."""
    options = Options(environ={})
    options.parent = usage.Options()
    with pytest.raises(SystemExit) as raised:
        options.parseOptions(["--coap-port", "abc"])
    assert raised.value.code == (
        "twistd coap-gateway: error: --coap-port: expected an integer, got 'abc'\n"
        "Run 'twistd coap-gateway --help' for the options."
    )


def test_dialects_enabled_from_the_environment() -> None:
    """GATEWAY_DIALECTS_ENABLED selects the dialects, checked against the plugins found."""
    settings = parse([], {"GATEWAY_DIALECTS_ENABLED": "thingsboard"})["settings"]
    assert settings.dialects.names == ("thingsboard",)


@pytest.mark.parametrize(
    ("toml", "environ", "message"),
    [
        ("", {"GATEWAY_DIALECTS_ENABLED": "nope"},
         "GATEWAY_DIALECTS_ENABLED: no dialect plugin named 'nope' "
         "(found: drogue, efento, thingsboard)"),
        ('[dialects]\nenabled = ["nope"]\n', {}, "dialects.enabled: no dialect plugin named"),
        ('[dialects.thingsboard]\ncolour = "red"\n', {}, "dialects.thingsboard.colour: "),
        ('[dialects.thingsboard]\ntype_cast = "yes"\n', {}, "dialects.thingsboard.type_cast: "),
    ],
)
def test_bad_dialect_settings_are_usage_errors(
    tmp_path: Path, toml: str, environ: dict[str, str], message: str
) -> None:
    """An unknown dialect or a bad dialect option stops start-up with one line naming the key."""
    path = tmp_path / "gw.toml"
    path.write_text(toml)
    with pytest.raises(usage.UsageError) as raised:
        parse(["--config", str(path)], environ)
    assert str(raised.value).startswith(message)
    assert "\n" not in str(raised.value)


def test_make_service_composes_the_gateway(tmp_path: Path) -> None:
    """makeService builds a MultiService with the CoAP UDP listener and creates the data dir."""
    options = local_options(tmp_path)
    top = makeService(options)
    assert isinstance(top, service.MultiService)
    assert isinstance(top, GatewayService)
    udp = top.getServiceNamed("coap")
    assert isinstance(udp, Listener)
    assert isinstance(top.coap, UDPTransport)
    assert any(isinstance(child, LogLevelService) for child in top)
    assert (tmp_path / "var").is_dir()
    assert (tmp_path / "var" / "api-key").is_file()
    assert not top.running


def test_unusable_store_stops_make_service(tmp_path: Path) -> None:
    """A database that is no database stops makeService with a start-up error naming it."""
    (tmp_path / "var").mkdir()
    (tmp_path / "var" / "gateway.db").write_bytes(b"garbage" * 100)
    with pytest.raises(StartupError, match=f"^cannot use the database {tmp_path}/var/gateway.db"):
        makeService(local_options(tmp_path))


def test_configured_api_key_is_not_written(tmp_path: Path) -> None:
    """With api.key set no key file is generated."""
    top = makeService(parse(["--data-dir", str(tmp_path)], {"GATEWAY_API_KEY": "k"}))
    assert isinstance(top, GatewayService)
    assert not (tmp_path / "api-key").exists()


def test_engine_gets_configured_parameters(tmp_path: Path) -> None:
    """The CoAP engine is built with the transmission parameters and limits of [coap]."""
    options = parse(
        ["--data-dir", str(tmp_path)],
        {"GATEWAY_COAP_ACK_TIMEOUT": "7", "GATEWAY_COAP_MAX_PEERS": "3"},
    )
    top = build_service(options["settings"], _reactor(), LogPublisher())
    assert top.coap.layer.params.ack_timeout == 7.0
    assert top.coap.layer.limits.max_peers == 3


def test_dtls_is_served_by_default_with_a_test_ca(tmp_path: Path) -> None:
    """By default a DTLS listener is composed, its test CA made under <data_dir>/tls and logged."""
    with capturedLogs() as events:
        top = build_service(local_options(tmp_path)["settings"], _reactor(), LogPublisher())
    assert isinstance(top, GatewayService) and top.dtls is not None
    assert top.getServiceNamed("dtls") is not None
    ca = tmp_path / "var" / "tls" / "ca.pem"
    assert ca.is_file() and (ca.parent / "server.key").stat().st_mode & 0o777 == 0o600
    assert [e["ca"] for e in events if "ca" in e] == [str(ca)]


def test_dtls_can_be_turned_off(tmp_path: Path) -> None:
    """With COAP_DTLS_ENABLED=false there is no DTLS listener and no test CA."""
    options = parse(["--data-dir", str(tmp_path)], {"COAP_DTLS_ENABLED": "false"})
    top = build_service(options["settings"], _reactor(), LogPublisher())
    assert top.dtls is None
    with pytest.raises(KeyError):
        top.getServiceNamed("dtls")
    assert not (tmp_path / "tls").exists()


def test_bad_dtls_key_password_stops_start_up(tmp_path: Path) -> None:
    """A wrong key password stops makeService with one line naming the setting and its variable."""
    from gateway.dtls import certs

    ca = certs.make_ca()
    server = certs.make_server(ca)
    (tmp_path / "s.pem").write_bytes(certs.cert_pem(server.cert))
    (tmp_path / "s.key").write_bytes(certs.key_pem(server.key, "right"))
    options = parse(
        ["--data-dir", str(tmp_path)],
        {"COAP_DTLS_PEM_CERT": str(tmp_path / "s.pem"),
         "COAP_DTLS_PEM_KEY": str(tmp_path / "s.key"),
         "COAP_DTLS_PEM_KEY_PASSWORD": "wrong"},
    )
    with pytest.raises(StartupError) as caught:
        makeService(options)
    message = str(caught.value)
    assert message.startswith("dtls.private_key_password (COAP_DTLS_PEM_KEY_PASSWORD): ")
    assert "\n" not in message


@pytest_twisted.ensureDeferred
async def test_start_serve_and_stop(tmp_path: Path) -> None:
    """A started gateway answers CoAP on its UDP port, logs where, and stopService releases it."""
    top = build_service(
        local_options(tmp_path, "--coap-bind", "127.0.0.1")["settings"],
        _reactor(),
        LogPublisher(),
    )
    with capturedLogs() as events:
        top.startService()
        await top.whenListening()
    transport = top.coap.transport
    try:
        port = transport.getHost().port
        started = [e for e in events if "coap_port" in e]
        assert [(e["coap_host"], e["coap_port"]) for e in started] == [("127.0.0.1", port)]
        assert (started[0]["api_host"], started[0]["api_port"]) == top.api_address()
        answer = await exchange("127.0.0.1", port, GET_NOTHING)
        assert answer[:4] == bytes([0x60, 0x84, 0x12, 0x34])  # ACK 4.04, same MID
    finally:
        await top.stopService()
    assert not top.running
    assert not transport.connected
    assert top.coap.transport is None
    assert top.api_address() is None
    assert top.service_layer is None


@pytest_twisted.ensureDeferred
async def test_configured_dialects_are_served(tmp_path: Path) -> None:
    """The enabled dialects are installed with their [dialects.<name>] options at start-up."""
    path = tmp_path / "gw.toml"
    path.write_text(
        '[dialects]\nenabled = ["thingsboard"]\n[dialects.thingsboard]\nmax_string_length = 8\n'
    )
    options = local_options(tmp_path, "--config", str(path), "--coap-bind", "127.0.0.1")
    top = build_service(options["settings"], _reactor(), LogPublisher())
    with capturedLogs() as events:
        top.startService()
        await top.whenListening()
    try:
        assert [e["dialects"] for e in events if "coap_port" in e] == ["thingsboard"]
        v1 = top.coap.layer.root.children[b"api"].children[b"v1"]
        assert v1._context.rules.max_string_length == 8
    finally:
        await top.stopService()


@pytest.mark.skipif(not socket.has_ipv6, reason="no IPv6 on this host")
@pytest_twisted.ensureDeferred
async def test_default_bind_serves_ipv4_and_ipv6(tmp_path: Path) -> None:
    """Bound to '::' (the default) one socket answers both IPv4 and IPv6 clients."""
    top = build_service(local_options(tmp_path)["settings"], _reactor(), LogPublisher())
    top.startService()
    await top.whenListening()
    try:
        sock = top.coap.transport.socket
        if sock.getsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY):
            pytest.skip("this host makes IPv6 sockets v6-only")
        port = top.coap.transport.getHost().port
        for host in ("127.0.0.1", "::1"):
            answer = await exchange(host, port, GET_NOTHING)
            assert answer[1] == 0x84
    finally:
        await top.stopService()


def test_makeservice_does_not_touch_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Only the configured data dir is created, not ./var in the current directory."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    makeService(local_options(tmp_path))
    assert list(cwd.iterdir()) == []


def test_api_listener_is_composed(tmp_path: Path) -> None:
    """The gateway has a TCP listener named 'api' serving the API site on api.bind."""
    top = makeService(local_options(tmp_path))
    assert isinstance(top, GatewayService)
    api = top.getServiceNamed("api")
    assert isinstance(api, Listener)
    assert api.port is None


def test_listeners_wait_for_the_store(tmp_path: Path) -> None:
    """Until the service layer is open no listener starts; a failed open calls on_fatal."""
    from twisted.internet.testing import MemoryReactorClock

    reactor = MemoryReactorClock()
    pending: Deferred[Any] = Deferred()
    fatal: list[bool] = []
    config = local_options(tmp_path)["settings"]
    top = build_service(config, reactor, LogPublisher(), on_fatal=lambda: fatal.append(True))
    top._open_services = lambda: pending
    top.startService()
    assert top.coap.transport is None and reactor.tcpServers == []
    with capturedLogs() as events:
        pending.errback(RuntimeError("disk on fire"))
    assert fatal == [True]
    assert reactor.tcpServers == []
    [failed] = [e for e in events if "log_failure" in e]
    assert failed["log_format"] == "coap-gateway could not start"
    top.stopService()
