# -*- test-case-name: tests.test_config -*-
"""
The gateway's configuration: attrs values read from TOML, then overridden by
environment variables and command-line options.

Precedence, lowest first: built-in defaults (identical to ``etc/gateway.toml``),
the TOML file, ThingsBoard's ``COAP_*`` variables, ``GATEWAY_<SECTION>_<KEY>``
variables, command-line overrides. Every problem is reported as one
L{ConfigError} whose message starts with the key (or variable, or option) at
fault.
"""

from __future__ import annotations

import ipaddress
import math
import socket
import tomllib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, cast

import attrs
from attrs import validators as v

from gateway.coap.params import EngineLimits, TransmissionParameters
from gateway.dialect import IDialect
from gateway.dtls.settings import DTLSSettings
from gateway.service.limits import ServiceLimits
from gateway.service.power import PowerDefaults
from gateway.service.rpc import RpcSettings
from gateway.store.backends import BACKENDS, DURABILITIES
from gateway.upstream.forwarder import MODES as UPSTREAM_MODES

__all__ = [
    "ApiConfig",
    "CoapConfig",
    "ConfigError",
    "DialectsConfig",
    "DtlsConfig",
    "ClusterConfig",
    "GatewayConfig",
    "LogConfig",
    "Override",
    "RpcConfig",
    "StorageConfig",
    "UpstreamConfig",
    "load_config",
]

#: Prefix of the environment variables that override any key.
ENV_PREFIX = "GATEWAY_"

#: Storage backends the gateway knows.
STORAGE_BACKENDS = BACKENDS

#: Accepted C{[log] level} values (twisted.logger level names).
LOG_LEVELS = ("debug", "info", "warn", "error", "critical")

#: The C{[dialects] enabled} entry that stands for every dialect plugin found.
ALL_DIALECTS = "*"

#: Field metadata marking a field that holds a section's sub-tables
#: (C{[dialects.<name>]}) by name, rather than one key.
_TABLES = "gateway.config.tables"

#: ThingsBoard's environment variables, honoured as aliases of our keys.
TB_ALIASES: Mapping[str, tuple[str, str]] = {
    "COAP_BIND_ADDRESS": ("coap", "bind"),
    "COAP_BIND_PORT": ("coap", "port"),
    "COAP_DTLS_ENABLED": ("dtls", "enabled"),
    "COAP_DTLS_CREDENTIALS_TYPE": ("dtls", "credentials_type"),
    "COAP_DTLS_BIND_ADDRESS": ("dtls", "bind"),
    "COAP_DTLS_BIND_PORT": ("dtls", "port"),
    "COAP_DTLS_PEM_CERT": ("dtls", "certificate"),
    "COAP_DTLS_PEM_KEY": ("dtls", "private_key"),
    "COAP_DTLS_PEM_KEY_PASSWORD": ("dtls", "private_key_password"),
    "COAP_PSM_ACTIVITY_TIMER": ("power", "psm_activity_timer"),
    "COAP_PAGING_TRANSMISSION_WINDOW": ("power", "paging_transmission_window"),
}

#: ThingsBoard's variables in other units: (section, key, factor to ours).
TB_SCALED: Mapping[str, tuple[str, str, float]] = {
    # Milliseconds in ThingsBoard, seconds here.
    "TB_COAP_X509_DTLS_SESSION_INACTIVITY_TIMEOUT": ("dtls", "inactivity_timeout", 0.001),
}


class ConfigError(Exception):
    """
    The configuration cannot be used; the message names the key at fault.
    """


def _ip_literal(instance: object, attribute: attrs.Attribute[str], value: str) -> None:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        raise ValueError(
            f"expected an IP address literal such as '::' or '0.0.0.0', got {value!r}"
        ) from None


def _port(instance: object, attribute: attrs.Attribute[int], value: int) -> None:
    if not 0 <= value <= 65535:
        raise ValueError(f"expected a port number from 0 to 65535, got {value!r}")


def _url(instance: object, attribute: attrs.Attribute[str], value: str) -> None:
    if value and not value.startswith(("http://", "https://")):
        raise ValueError(f"expected an http:// or https:// URL, got {value!r}")


def _dialect_names(
    instance: object, attribute: attrs.Attribute[tuple[str, ...]], value: tuple[str, ...]
) -> None:
    if "" in value:
        raise ValueError(f"expected dialect names, got an empty one in {list(value)!r}")
    if ALL_DIALECTS in value and len(value) > 1:
        raise ValueError(f"'*' (every dialect) goes alone, got {list(value)!r}")


def _headers(
    instance: object, attribute: attrs.Attribute[tuple[str, ...]], value: tuple[str, ...]
) -> None:
    for header in value:
        name, sep, rest = header.partition(":")
        if not sep or not name.strip() or any(c in header for c in "\r\n") or not rest.strip():
            raise ValueError(f"expected 'Name: value' headers, got {header!r}")


@attrs.frozen
class CoapConfig:
    """
    Plain CoAP over UDP. In TOML the fields of C{transmission} and C{limits}
    sit flat in C{[coap]} beside C{bind} and C{port}.
    """

    #: "::" is every interface, IPv6 and IPv4 (dual-stack socket).
    bind: str = attrs.field(default="::", validator=_ip_literal)
    port: int = attrs.field(default=5683, validator=_port)
    transmission: TransmissionParameters = attrs.field(factory=TransmissionParameters)
    limits: EngineLimits = attrs.field(factory=EngineLimits)


@attrs.frozen
class DtlsConfig:
    """
    CoAP over DTLS (ThingsBoard's C{COAP_DTLS_*} variables are aliases). In
    TOML the fields of C{session} sit flat in C{[dtls]}.
    """

    enabled: bool = True
    bind: str = attrs.field(default="::", validator=_ip_literal)
    port: int = attrs.field(default=5684, validator=_port)
    #: ThingsBoard's COAP_DTLS_CREDENTIALS_TYPE: only PEM files are read.
    credentials_type: str = attrs.field(default="PEM", validator=v.in_(("PEM",)))
    #: PEM server certificate (chain) file; empty (with private_key) means
    #: the test CA made under C{<data_dir>/tls/} on first start.
    certificate: str = ""
    #: PEM private key file, and its password if it is encrypted.
    private_key: str = ""
    private_key_password: str = ""
    #: PEM file of CAs that client certificates may chain to instead of
    #: being registered (still matched to devices by fingerprint).
    ca_certificates: str = ""
    #: PSK identity hint sent to clients ("" = none).
    psk_identity_hint: str = ""
    session: DTLSSettings = attrs.field(factory=DTLSSettings)

    @property
    def test_ca(self) -> bool:
        """Whether the server's certificate is the self-made test CA's."""
        return not self.certificate and not self.private_key


@attrs.frozen
class ApiConfig:
    """
    The northbound HTTP API.
    """

    bind: str = attrs.field(default="127.0.0.1", validator=_ip_literal)
    port: int = attrs.field(default=8080, validator=_port)
    #: Bearer key; empty means generated once into C{<data_dir>/api-key}.
    key: str = ""


@attrs.frozen
class StorageConfig:
    """
    Where state lives.
    """

    data_dir: str = attrs.field(default="./var", validator=v.min_len(1))
    #: "sqlite", "postgresql" (several nodes on one database, see dsn), or
    #: "memory": nothing persisted (for trials and tests).
    backend: str = attrs.field(default="sqlite", validator=v.in_(STORAGE_BACKENDS))
    #: The PostgreSQL connection string (libpq's: "host=... dbname=..." or a
    #: postgresql:// URI); what it leaves out comes from libpq's PG*
    #: variables.  Only read with backend "postgresql".
    dsn: str = ""
    #: Database file, relative to the working directory; empty means
    #: C{<data_dir>/gateway.db}.
    path: str = ""
    #: What a committed write survives: "power-loss" (synced at every
    #: commit) or "process-crash" (the OS may lose the last commits).
    durability: str = attrs.field(default="power-loss", validator=v.in_(DURABILITIES))

    @property
    def database_path(self) -> Path:
        return Path(self.path) if self.path else Path(self.data_dir) / "gateway.db"

    @property
    def location(self) -> str:
        """Where the backend's data is: the DSN for PostgreSQL, else the database file."""
        return self.dsn if self.backend == "postgresql" else str(self.database_path)

    @property
    def api_key_path(self) -> Path:
        return Path(self.data_dir) / "api-key"


@attrs.frozen
class ClusterConfig:
    """
    This node among several sharing one PostgreSQL store.
    """

    #: Names the node in GET /api/v1/cluster and in events' source; empty
    #: means the host's name.
    node_id: str = ""
    #: Seconds between the node's heartbeats; a node silent for three is not alive.
    heartbeat_interval: float = attrs.field(default=5.0, validator=v.gt(0))

    @property
    def name(self) -> str:
        """The node's id: C{node_id}, else the host's name."""
        return self.node_id or socket.gethostname()


@attrs.frozen
class UpstreamConfig:
    """
    Forwarding of CloudEvents over HTTP; no URL means events stay local.
    """

    url: str = attrs.field(default="", validator=_url)
    #: PEM file of the CAs an https:// upstream's certificate must chain to;
    #: empty means the system's CAs.
    ca_certificates: str = ""
    #: PEM file of the gateway's client certificate for mutual TLS (with its
    #: key, unless client_key names the key's file); empty means none.
    client_certificate: str = ""
    client_key: str = ""
    #: Extra request headers, "Name: value" each (e.g. an Authorization
    #: token: GATEWAY_UPSTREAM_HEADERS="Authorization: Bearer ...").
    headers: tuple[str, ...] = attrs.field(default=(), validator=_headers)
    #: "batch" (up to batch_size events per request) or "binary" (one each).
    mode: str = attrs.field(default="batch", validator=v.in_(UPSTREAM_MODES))
    #: Seconds one HTTP request may take.
    timeout: float = attrs.field(default=10.0, validator=v.gt(0))
    #: Most events sent in one request.
    batch_size: int = attrs.field(default=500, validator=v.ge(1))
    #: Seconds to wait for more events before sending a partial batch.
    flush_interval: float = attrs.field(default=1.0, validator=v.ge(0))
    #: First and largest retry delay, in seconds (exponential backoff with jitter).
    retry_initial: float = attrs.field(default=1.0, validator=v.gt(0))
    retry_max: float = attrs.field(default=300.0, validator=v.gt(0))
    #: Seconds a stopping gateway lets the request in flight finish.
    shutdown_grace: float = attrs.field(default=5.0, validator=v.ge(0))
    #: Events the durable outbox holds before devices get 5.03.
    outbox_max_events: int = attrs.field(default=100_000, validator=v.ge(1))
    #: Seconds events are kept while not forwarded (the oldest go first).
    retention: float = attrs.field(default=604_800.0, validator=v.gt(0))


@attrs.frozen
class RpcConfig:
    """
    RPCs: the server-side queue (its fields sit flat in C{[rpc]}) and
    where client-side RPCs the gateway does not answer itself go.
    """

    #: Where a device's client-side RPCs are POSTed as JSON; "" means only
    #: the built-in methods (getCurrentTime) are answered.
    upstream_url: str = attrs.field(default="", validator=_url)
    #: Seconds the application has to answer one.
    timeout: float = attrs.field(default=10.0, validator=v.gt(0))
    queue: RpcSettings = attrs.field(factory=RpcSettings)


@attrs.frozen
class LogConfig:
    """
    Logging.
    """

    level: str = attrs.field(default="info", validator=v.in_(LOG_LEVELS))


@attrs.frozen
class DialectsConfig:
    """
    The device-API dialects served, and each one's options (a
    C{[dialects.<name>]} table, checked by that plugin's C{configure}).
    """

    #: Plugin names to install; C{"*"} is every dialect plugin found.
    enabled: tuple[str, ...] = attrs.field(default=(ALL_DIALECTS,), validator=_dialect_names)
    options: Mapping[str, Mapping[str, Any]] = attrs.field(factory=dict, metadata={_TABLES: True})

    @property
    def names(self) -> tuple[str, ...] | None:
        """C{enabled} as L{gateway.dialect.install_dialects} takes it: None for all."""
        return None if self.enabled == (ALL_DIALECTS,) else self.enabled


@attrs.frozen
class GatewayConfig:
    """
    The whole configuration.
    """

    coap: CoapConfig = attrs.field(factory=CoapConfig)
    dtls: DtlsConfig = attrs.field(factory=DtlsConfig)
    api: ApiConfig = attrs.field(factory=ApiConfig)
    storage: StorageConfig = attrs.field(factory=StorageConfig)
    cluster: ClusterConfig = attrs.field(factory=ClusterConfig)
    upstream: UpstreamConfig = attrs.field(factory=UpstreamConfig)
    log: LogConfig = attrs.field(factory=LogConfig)
    #: The service layer's bounds (L{gateway.service.limits}).
    limits: ServiceLimits = attrs.field(factory=ServiceLimits)
    rpc: RpcConfig = attrs.field(factory=RpcConfig)
    #: Power-saving defaults (L{gateway.service.power}).
    power: PowerDefaults = attrs.field(factory=PowerDefaults)
    dialects: DialectsConfig = attrs.field(factory=DialectsConfig)


@attrs.frozen
class Override:
    """
    One command-line override of a key; C{origin} (e.g. C{--coap-port}) is
    what error messages name.
    """

    section: str
    key: str
    value: str
    origin: str


# -- schema ------------------------------------------------------------------

_SECTIONS: Mapping[str, type] = {
    a.name: cast(type, a.type) for a in attrs.fields(attrs.resolve_types(GatewayConfig))
}


def _schema(section: type) -> dict[str, tuple[attrs.Attribute[Any], str | None]]:
    """
    Map each TOML key of a section to its attrs field and, for keys flattened
    from a nested attrs value (C{coap.transmission}), that field's name.
    """
    keys: dict[str, tuple[attrs.Attribute[Any], str | None]] = {}
    for field in attrs.fields(attrs.resolve_types(section)):
        if field.metadata.get(_TABLES):
            continue
        kind = cast(type, field.type)
        if attrs.has(kind):
            for inner in attrs.fields(attrs.resolve_types(kind)):
                keys[inner.name] = (inner, field.name)
        else:
            keys[field.name] = (field, None)
    return keys


_SCHEMA = {name: _schema(section) for name, section in _SECTIONS.items()}

#: The sections that take sub-tables, and the field holding them.
_SUBTABLES = {
    name: field.name
    for name, section in _SECTIONS.items()
    for field in attrs.fields(section)
    if field.metadata.get(_TABLES)
}


# -- conversion ----------------------------------------------------------------

#: The type of a list key (C{[dialects] enabled}): comma-separated in variables.
_NAMES: Any = tuple[str, ...]

_TYPE_NAMES = {
    bool: "a boolean",
    int: "an integer",
    float: "a number",
    str: "a string",
    _NAMES: "a list of strings",
}
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def _from_toml(kind: type, value: object) -> object:
    if kind == _NAMES:
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise TypeError
        return tuple(value)
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if type(value) is not kind:
        raise TypeError
    if kind is float and not math.isfinite(value):  # type: ignore[arg-type]
        raise TypeError
    return value


def _from_text(kind: type, text: str) -> object:
    if kind is str:
        return text
    if kind == _NAMES:
        return tuple(item.strip() for item in text.split(",") if item.strip())
    stripped = text.strip()
    if kind is bool:
        if stripped.lower() in _TRUE:
            return True
        if stripped.lower() in _FALSE:
            return False
        raise TypeError
    try:
        number = kind(stripped)
    except ValueError:
        raise TypeError from None
    if kind is float and not math.isfinite(number):
        raise TypeError
    return number


@attrs.frozen
class _Setting:
    value: object
    origin: str
    text: bool


def _message(error: Exception) -> str:
    # attrs' in_ and len validators put the message first among several args.
    return str(error.args[0]) if error.args else repr(error)


def _convert(field: attrs.Attribute[Any], setting: _Setting) -> object:
    kind = cast(type, field.type)
    parse: Callable[[type, Any], object] = _from_text if setting.text else _from_toml
    try:
        value = parse(kind, setting.value)
    except TypeError:
        raise ConfigError(
            f"{setting.origin}: expected {_TYPE_NAMES[kind]}, got {setting.value!r}"
        ) from None
    check = field.validator
    if check is not None:
        try:
            check(None, field, value)
        except (TypeError, ValueError) as e:
            raise ConfigError(f"{setting.origin}: {_message(e)}") from None
    return value


def _build(name: str, settings: Mapping[str, _Setting]) -> object:
    section = _SECTIONS[name]
    flat: dict[str, object] = {}
    nested: dict[str, dict[str, object]] = {}
    tables: dict[str, object] = {}
    for key, setting in settings.items():
        if key not in _SCHEMA[name]:  # a [<name>.<key>] table; only files have them
            tables[key] = setting.value
            continue
        field, parent = _SCHEMA[name][key]
        value = _convert(field, setting)
        if parent is None:
            flat[key] = value
        else:
            nested.setdefault(parent, {})[key] = value
    if tables:
        flat[_SUBTABLES[name]] = tables
    try:
        for parent, values in nested.items():
            flat[parent] = cast(type, attrs.fields_dict(section)[parent].type)(**values)
        return section(**flat)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"{name}: {_message(e)}") from None


# -- sources -------------------------------------------------------------------


def _read_toml(path: str) -> dict[str, dict[str, _Setting]]:
    try:
        with open(path, "rb") as f:
            document = tomllib.load(f)
    except OSError as e:
        raise ConfigError(f"{path}: cannot read: {e.strerror}") from None
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: invalid TOML: {e}") from None
    found: dict[str, dict[str, _Setting]] = {}
    for name, table in document.items():
        if name not in _SCHEMA:
            raise ConfigError(f"{name}: unknown section (known: {', '.join(_SCHEMA)})")
        if not isinstance(table, dict):
            raise ConfigError(f"{name}: expected a [{name}] table, got {table!r}")
        for key, value in table.items():
            if key not in _SCHEMA[name] and not (name in _SUBTABLES and isinstance(value, dict)):
                raise ConfigError(f"{name}.{key}: unknown key")
            found.setdefault(name, {})[key] = _Setting(value, f"{name}.{key}", False)
    return found


def _read_environ(environ: Mapping[str, str]) -> dict[str, dict[str, _Setting]]:
    found: dict[str, dict[str, _Setting]] = {}
    for variable, (name, key) in TB_ALIASES.items():
        if variable in environ:
            found.setdefault(name, {})[key] = _Setting(environ[variable], variable, True)
    for variable, (name, key, factor) in TB_SCALED.items():
        if variable in environ:
            try:
                value = float(environ[variable]) * factor
            except ValueError:
                raise ConfigError(
                    f"{variable}: expected a number, got {environ[variable]!r}"
                ) from None
            found.setdefault(name, {})[key] = _Setting(repr(value), variable, True)
    for variable in sorted(environ):
        if not variable.startswith(ENV_PREFIX):
            continue
        name, _, key = variable[len(ENV_PREFIX) :].lower().partition("_")
        if name not in _SCHEMA:
            raise ConfigError(f"{variable}: unknown section {name!r}")
        if key not in _SCHEMA[name]:
            raise ConfigError(f"{variable}: unknown key {name}.{key}")
        found.setdefault(name, {})[key] = _Setting(environ[variable], variable, True)
    return found


def load_config(
    path: str | None,
    environ: Mapping[str, str],
    overrides: Sequence[Override] = (),
    dialects: Mapping[str, IDialect] | None = None,
) -> GatewayConfig:
    """
    Read the configuration.

    @param path: A TOML file, or L{None} for the built-in defaults.
    @param environ: The environment to take overrides from (pass
        C{os.environ} at the edge; this function never reads it).
    @param overrides: Command-line overrides, applied last.
    @param dialects: The dialect plugins by name, to check C{[dialects]}
        against; L{None} leaves names and options unchecked.
    @raise ConfigError: naming the key, variable or option at fault.
    """
    layers = [_read_toml(path) if path is not None else {}, _read_environ(environ)]
    cli: dict[str, dict[str, _Setting]] = {}
    for o in overrides:
        if o.key not in _SCHEMA.get(o.section, {}):
            raise ConfigError(f"{o.origin}: unknown key {o.section}.{o.key}")
        cli.setdefault(o.section, {})[o.key] = _Setting(o.value, o.origin, True)
    layers.append(cli)
    merged: dict[str, dict[str, _Setting]] = {name: {} for name in _SCHEMA}
    for layer in layers:
        for name, settings in layer.items():
            merged[name].update(settings)
    sections: dict[str, Any] = {name: _build(name, merged[name]) for name in _SCHEMA}
    config = GatewayConfig(**sections)
    if dialects is not None:
        enabled = merged["dialects"].get("enabled")
        origin = enabled.origin if enabled else "dialects.enabled"
        _check_dialects(config.dialects, dialects, origin)
    return config


def _check_dialects(
    config: DialectsConfig, found: Mapping[str, IDialect], enabled_origin: str
) -> None:
    """
    Refuse what start-up would: a name no plugin provides, or options the
    dialect's C{configure} rejects (tried one key at a time to name it).
    """
    known = f"(found: {', '.join(sorted(found)) or 'none'})"
    for name in config.names or ():
        if name not in found:
            raise ConfigError(f"{enabled_origin}: no dialect plugin named {name!r} {known}")
    for name, options in config.options.items():
        if name not in found:
            raise ConfigError(f"dialects.{name}: no dialect plugin named {name!r} {known}")
        for key, value in options.items():
            try:
                found[name].configure({key: value})
            except ValueError as e:
                raise ConfigError(f"dialects.{name}.{key}: {e}") from None
        try:
            found[name].configure(options)
        except ValueError as e:
            raise ConfigError(f"dialects.{name}: {e}") from None
