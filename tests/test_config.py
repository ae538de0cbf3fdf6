"""
Tests for L{gateway.config}.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import attrs
import pytest
from twisted.internet.interfaces import IReactorTime
from zope.interface import implementer
from zope.interface.verify import verifyObject

from gateway.coap.params import EngineLimits, TransmissionParameters
from gateway.config import (
    ConfigError,
    DialectsConfig,
    GatewayConfig,
    Override,
    load_config,
)
from gateway.dialect import IDialect
from gateway.dialects.thingsboard import ThingsBoardDialect

SHIPPED = Path(__file__).resolve().parent.parent / "etc" / "gateway.toml"


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "gateway.toml"
    path.write_text(text)
    return str(path)


def test_shipped_file_is_the_defaults() -> None:
    """Loading etc/gateway.toml gives exactly the built-in defaults."""
    assert load_config(str(SHIPPED), {}) == load_config(None, {}) == GatewayConfig()


def test_shipped_file_lists_every_key() -> None:
    """etc/gateway.toml sets every key the loader knows, so it documents all of them."""
    import tomllib

    from gateway.config import _SCHEMA

    document = tomllib.loads(SHIPPED.read_text())
    assert {s: set(document[s]) for s in document} == {s: set(k) for s, k in _SCHEMA.items()}


def test_defaults() -> None:
    """Without file or environment the gateway serves CoAP on [::]:5683 and DTLS on 5684."""
    config = load_config(None, {})
    assert (config.coap.bind, config.coap.port) == ("::", 5683)
    assert (config.dtls.enabled, config.dtls.port) == (True, 5684)
    assert config.dtls.test_ca
    assert (config.api.bind, config.api.port, config.api.key) == ("127.0.0.1", 8080, "")
    assert config.storage.data_dir == "./var"
    assert config.storage.database_path == Path("var/gateway.db")
    assert config.upstream.url == ""
    assert config.log.level == "info"


def test_engine_objects_built_from_coap_section(tmp_path: Path) -> None:
    """Flat [coap] keys become the engine's TransmissionParameters and EngineLimits."""
    path = write(tmp_path, "[coap]\nack_timeout = 10\nmax_retransmit = 2\nmax_block_size = 256\n")
    config = load_config(path, {})
    assert config.coap.transmission == TransmissionParameters(ack_timeout=10.0, max_retransmit=2)
    assert config.coap.limits == EngineLimits(max_block_size=256)
    assert isinstance(config.coap.transmission.ack_timeout, float)


def test_every_engine_field_is_a_key() -> None:
    """Every field of TransmissionParameters and EngineLimits can be set in [coap]."""
    from gateway.config import _SCHEMA

    names = {f.name for f in attrs.fields(TransmissionParameters)}
    names |= {f.name for f in attrs.fields(EngineLimits)}
    assert names | {"bind", "port"} == set(_SCHEMA["coap"])


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("GATEWAY_COAP_PORT", "5700", ("coap", "port", 5700)),
        ("GATEWAY_COAP_BIND", "127.0.0.1", ("coap", "bind", "127.0.0.1")),
        ("GATEWAY_COAP_ACK_TIMEOUT", " 4.5 ", ("coap", "ack_timeout", 4.5)),
        ("GATEWAY_DTLS_ENABLED", "TRUE", ("dtls", "enabled", True)),
        ("GATEWAY_DTLS_ENABLED", "0", ("dtls", "enabled", False)),
        ("GATEWAY_UPSTREAM_URL", "http://127.0.0.1:9000/e", ("upstream", "url", "http://127.0.0.1:9000/e")),
        ("GATEWAY_UPSTREAM_TIMEOUT", "3", ("upstream", "timeout", 3.0)),
        ("GATEWAY_STORAGE_DATA_DIR", "/srv/gw", ("storage", "data_dir", "/srv/gw")),
        ("GATEWAY_LOG_LEVEL", "debug", ("log", "level", "debug")),
    ],
)
def test_environment_overrides(
    variable: str, value: str, expected: tuple[str, str, object]
) -> None:
    """A GATEWAY_<SECTION>_<KEY> variable sets that key, converted to the key's type."""
    config = load_config(None, {variable: value})
    section, key, result = expected
    got = getattr(getattr(config, section), key, None)
    if got is None:
        engine = config.coap.transmission
        got = getattr(engine, key)
    assert got == result
    assert type(got) is type(result)


def test_environment_wins_over_file(tmp_path: Path) -> None:
    """An environment variable overrides the same key set in the file."""
    path = write(tmp_path, "[coap]\nport = 6000\n")
    assert load_config(path, {"GATEWAY_COAP_PORT": "6001"}).coap.port == 6001
    assert load_config(path, {}).coap.port == 6000


def test_overrides_win_over_environment() -> None:
    """A command-line override beats the environment."""
    config = load_config(
        None, {"GATEWAY_COAP_PORT": "6001"}, [Override("coap", "port", "6002", "--coap-port")]
    )
    assert config.coap.port == 6002


def test_thingsboard_aliases() -> None:
    """ThingsBoard's COAP_DTLS_* and COAP_BIND_* variables set the matching keys."""
    config = load_config(
        None,
        {
            "COAP_DTLS_ENABLED": "true",
            "COAP_DTLS_BIND_ADDRESS": "0.0.0.0",
            "COAP_DTLS_BIND_PORT": "15684",
            "COAP_DTLS_PEM_CERT": "/etc/tb/server.pem",
            "COAP_DTLS_PEM_KEY": "/etc/tb/server_key.pem",
            "COAP_DTLS_PEM_KEY_PASSWORD": "secret",
            "COAP_BIND_PORT": "15683",
        },
    )
    assert config.dtls.enabled is True
    assert (config.dtls.bind, config.dtls.port) == ("0.0.0.0", 15684)
    assert config.dtls.certificate == "/etc/tb/server.pem"
    assert config.dtls.private_key == "/etc/tb/server_key.pem"
    assert config.dtls.private_key_password == "secret"
    assert config.coap.port == 15683


def test_gateway_variable_wins_over_thingsboard_alias() -> None:
    """When both name the same key, GATEWAY_* wins over the ThingsBoard alias."""
    config = load_config(None, {"COAP_DTLS_BIND_PORT": "1", "GATEWAY_DTLS_PORT": "2"})
    assert config.dtls.port == 2


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('[coap]\nport = "abc"\n', "coap.port: expected an integer, got 'abc'"),
        ("[coap]\nport = 70000\n", "coap.port: expected a port number"),
        ("[coap]\nport = true\n", "coap.port: expected an integer, got True"),
        ("[coap]\nack_timeout = -1\n", "coap.ack_timeout: "),
        ("[coap]\nmax_block_size = 100\n", "coap.max_block_size: "),
        ('[coap]\nbind = "localhost"\n', "coap.bind: expected an IP address literal"),
        ("[coap]\nprot = 1\n", "coap.prot: unknown key"),
        ("[cop]\nport = 1\n", "cop: unknown section"),
        ("coap = 1\n", "coap: expected a [coap] table"),
        ('[dtls]\nenabled = "yes"\n', "dtls.enabled: expected a boolean, got 'yes'"),
        ('[log]\nlevel = "loud"\n', "log.level: 'level' must be in"),
        ('[storage]\nbackend = "mysql"\n', "storage.backend: "),
        ('[storage]\ndurability = "fast"\n', "storage.durability: 'durability' must be in"),
        ("[upstream]\nretention = 0\n", "upstream.retention: "),
        ('[upstream]\nheaders = ["NoColon"]\n', "upstream.headers: expected 'Name: value'"),
        ('[upstream]\nurl = "ftp://x"\n', "upstream.url: expected an http:// or https:// URL"),
        ("[upstream]\nbatch_size = 0\n", "upstream.batch_size: "),
        ("[coap.x]\na = 1\n", "coap.x: unknown key"),
        ('[dialects]\nenabled = "thingsboard"\n',
         "dialects.enabled: expected a list of strings, got 'thingsboard'"),
        ("[dialects]\nenabled = [1]\n", "dialects.enabled: expected a list of strings"),
        ('[dialects]\nenabled = ["*", "thingsboard"]\n', "dialects.enabled: '*' (every"),
        ('[dialects]\nenabled = [""]\n', "dialects.enabled: expected dialect names"),
        ("[dialects]\nthingsboard = 3\n", "dialects.thingsboard: unknown key"),
    ],
)
def test_bad_file_values_name_the_key(tmp_path: Path, toml: str, message: str) -> None:
    """A wrong type, invalid value or unknown key in the file is a ConfigError naming it."""
    with pytest.raises(ConfigError) as raised:
        load_config(write(tmp_path, toml), {})
    assert str(raised.value).startswith(message)


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"GATEWAY_COAP_PORT": "abc"}, "GATEWAY_COAP_PORT: expected an integer, got 'abc'"),
        ({"GATEWAY_COAP_ACK_TIMEOUT": "nan"}, "GATEWAY_COAP_ACK_TIMEOUT: expected a number"),
        ({"GATEWAY_DTLS_ENABLED": "maybe"}, "GATEWAY_DTLS_ENABLED: expected a boolean"),
        ({"GATEWAY_COAP_PROT": "1"}, "GATEWAY_COAP_PROT: unknown key coap.prot"),
        ({"GATEWAY_NOPE_X": "1"}, "GATEWAY_NOPE_X: unknown section 'nope'"),
        ({"COAP_DTLS_BIND_PORT": "-1"}, "COAP_DTLS_BIND_PORT: expected a port number"),
    ],
)
def test_bad_environment_values_name_the_variable(environ: dict[str, str], message: str) -> None:
    """A bad or unknown GATEWAY_* variable is a ConfigError naming the variable."""
    with pytest.raises(ConfigError) as raised:
        load_config(None, environ)
    assert str(raised.value).startswith(message)


def test_bad_override_names_the_option() -> None:
    """A bad command-line override is a ConfigError naming the option."""
    with pytest.raises(ConfigError, match="^--coap-port: expected an integer, got 'x'$"):
        load_config(None, {}, [Override("coap", "port", "x", "--coap-port")])


def test_unrelated_environment_is_ignored() -> None:
    """Variables without the GATEWAY_ prefix that are not aliases are ignored."""
    assert load_config(None, {"PATH": "/bin", "COAP_TIMEOUT": "x"}) == GatewayConfig()


def test_missing_file(tmp_path: Path) -> None:
    """A configuration file that cannot be read is a ConfigError naming the file."""
    missing = str(tmp_path / "nope.toml")
    with pytest.raises(ConfigError, match="nope.toml: cannot read"):
        load_config(missing, {})


def test_invalid_toml(tmp_path: Path) -> None:
    """A file that is not TOML is a ConfigError naming the file."""
    with pytest.raises(ConfigError, match="gateway.toml: invalid TOML"):
        load_config(write(tmp_path, "[coap\n"), {})



PLUGINS: Mapping[str, IDialect] = {"thingsboard": ThingsBoardDialect()}


def test_dialects_default_to_every_plugin() -> None:
    """Without a [dialects] section every dialect plugin found is served, with no options."""
    dialects = load_config(None, {}, dialects=PLUGINS).dialects
    assert dialects == DialectsConfig()
    assert (dialects.names, dialects.options) == (None, {})


def test_dialects_from_file(tmp_path: Path) -> None:
    """[dialects] names the enabled plugins and each [dialects.<name>] table holds its options."""
    path = write(
        tmp_path,
        '[dialects]\nenabled = ["thingsboard"]\n'
        "[dialects.thingsboard]\nmax_string_length = 8\ntype_cast = false\n",
    )
    dialects = load_config(path, {}, dialects=PLUGINS).dialects
    assert dialects.names == ("thingsboard",)
    assert dialects.options == {"thingsboard": {"max_string_length": 8, "type_cast": False}}


@pytest.mark.parametrize(
    ("value", "names"),
    [("thingsboard", ("thingsboard",)), (" thingsboard, other ,", ("thingsboard", "other")),
     ("", ()), ("*", None)],
)
def test_dialects_enabled_from_environment(value: str, names: tuple[str, ...] | None) -> None:
    """GATEWAY_DIALECTS_ENABLED is a comma-separated list; empty enables none, '*' all."""
    assert load_config(None, {"GATEWAY_DIALECTS_ENABLED": value}).dialects.names == names


def test_dialects_environment_wins_over_file(tmp_path: Path) -> None:
    """GATEWAY_DIALECTS_ENABLED replaces the file's list and keeps its option tables."""
    path = write(tmp_path, '[dialects]\nenabled = []\n[dialects.thingsboard]\ntype_cast = false\n')
    dialects = load_config(path, {"GATEWAY_DIALECTS_ENABLED": "thingsboard"}).dialects
    assert dialects.names == ("thingsboard",)
    assert dialects.options == {"thingsboard": {"type_cast": False}}


@pytest.mark.parametrize(
    ("toml", "environ", "message"),
    [
        ('[dialects]\nenabled = ["nope"]\n', {},
         "dialects.enabled: no dialect plugin named 'nope' (found: thingsboard)"),
        ("", {"GATEWAY_DIALECTS_ENABLED": "thingsboard,nope"},
         "GATEWAY_DIALECTS_ENABLED: no dialect plugin named 'nope' (found: thingsboard)"),
        ("[dialects.nope]\na = 1\n", {},
         "dialects.nope: no dialect plugin named 'nope' (found: thingsboard)"),
        ('[dialects.thingsboard]\ncolour = "red"\n', {}, "dialects.thingsboard.colour: "),
        ("[dialects.thingsboard]\nmax_string_length = -1\n", {},
         "dialects.thingsboard.max_string_length: "),
        ('[dialects.thingsboard]\ntype_cast = "yes"\n', {}, "dialects.thingsboard.type_cast: "),
    ],
)
def test_dialects_checked_against_the_plugins(
    tmp_path: Path, toml: str, environ: dict[str, str], message: str
) -> None:
    """A dialect no plugin provides, or an option its plugin refuses, is a one-line ConfigError."""
    with pytest.raises(ConfigError) as raised:
        load_config(write(tmp_path, toml), environ, dialects=PLUGINS)
    assert str(raised.value).startswith(message)
    assert "\n" not in str(raised.value)


def test_dialects_unchecked_without_plugins(tmp_path: Path) -> None:
    """Without the plugins to check against, names and options are taken as written."""
    path = write(tmp_path, '[dialects]\nenabled = ["nope"]\n[dialects.nope]\na = 1\n')
    dialects = load_config(path, {}).dialects
    assert (dialects.names, dialects.options) == (("nope",), {"nope": {"a": 1}})


@implementer(IDialect)
@attrs.frozen
class Exclusive:
    """A dialect whose options C{a} and C{b} are each fine but not together."""

    name: str = "exclusive"
    event_shape: None = None

    def configure(self, options: Mapping[str, Any]) -> "Exclusive":
        if {"a", "b"} <= set(options):
            raise ValueError("a and b exclude each other")
        return self

    def install(self, root: Any, services: Any, clock: IReactorTime) -> None:
        pass


def test_options_refused_together_name_the_table(tmp_path: Path) -> None:
    """Options a dialect refuses only in combination are a ConfigError naming its table."""
    assert verifyObject(IDialect, Exclusive())
    path = write(tmp_path, "[dialects.exclusive]\na = 1\nb = 2\n")
    with pytest.raises(ConfigError, match=r"^dialects\.exclusive: a and b exclude each other$"):
        load_config(path, {}, dialects={"exclusive": Exclusive()})


def test_thingsboard_dtls_session_variables() -> None:
    """ThingsBoard's inactivity timeout (ms) and credentials type set the [dtls] keys."""
    config = load_config(None, {
        "TB_COAP_X509_DTLS_SESSION_INACTIVITY_TIMEOUT": "1800000",
        "COAP_DTLS_CREDENTIALS_TYPE": "PEM",
    })
    assert config.dtls.session.inactivity_timeout == 1800.0
    assert config.dtls.credentials_type == "PEM"


@pytest.mark.parametrize(
    "environ, message",
    [
        ({"COAP_DTLS_CREDENTIALS_TYPE": "KEYSTORE"}, "COAP_DTLS_CREDENTIALS_TYPE: "),
        ({"TB_COAP_X509_DTLS_SESSION_INACTIVITY_TIMEOUT": "soon"},
         "TB_COAP_X509_DTLS_SESSION_INACTIVITY_TIMEOUT: expected a number"),
        ({"TB_COAP_X509_DTLS_SESSION_INACTIVITY_TIMEOUT": "0"},
         "TB_COAP_X509_DTLS_SESSION_INACTIVITY_TIMEOUT: "),
        ({"GATEWAY_DTLS_MTU": "100"}, "GATEWAY_DTLS_MTU: "),
    ],
)
def test_bad_dtls_settings_name_their_origin(environ: dict[str, str], message: str) -> None:
    """A KEYSTORE credentials type, or a DTLS timer or MTU out of range, names its variable."""
    with pytest.raises(ConfigError) as caught:
        load_config(None, environ)
    assert str(caught.value).startswith(message)


def test_drop_applications_from_file_and_environment(tmp_path: Path) -> None:
    """[rpc] drop_applications is a list of names in the file, comma-separated in the variable."""
    path = tmp_path / "gateway.toml"
    path.write_text('[rpc]\ndrop_applications = ["example-app", "b"]\n')
    assert load_config(str(path), {}).rpc.queue.drop_applications == ("example-app", "b")
    variables = {"GATEWAY_RPC_DROP_APPLICATIONS": "x, y"}
    assert load_config(None, variables).rpc.queue.drop_applications == ("x", "y")
