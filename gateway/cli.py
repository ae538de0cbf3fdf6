# -*- test-case-name: tests.test_cli -*-
"""
C{gatewayctl}: drive a running gateway through its northbound HTTP API.

The key comes from C{--key}, else C{GATEWAY_API_KEY}, else
C{<data-dir>/api-key} (C{--data-dir} defaults to C{./var}, where the gateway
writes it).  Output is JSON, or a table with C{--table}: one value per
cell (nested objects become C{parent.child} rows), times (C{created},
C{ts}, C{expires_at}, ...) in UTC ISO 8601.  An error prints one line, the
API's message if it sent one, and exits 1.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.request
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Sequence, TextIO
from urllib.parse import quote, urlencode, urlsplit

from gateway import cli_cluster, cli_ota, cli_rpc, cli_upstream

__all__ = ["main", "run", "Http", "urllib_http", "CliError"]

#: (method, url, headers, body) -> (status, body)
Http = Callable[[str, str, Mapping[str, str], Optional[bytes]], tuple[int, bytes]]

DEFAULT_URL = "http://127.0.0.1:8080"


class CliError(Exception):
    """A failure reported as C{gatewayctl: error: <message>}, exit status 1."""


def urllib_http(
    method: str, url: str, headers: Mapping[str, str], body: Optional[bytes]
) -> tuple[int, bytes]:
    """The blocking HTTP transport of the command line."""
    request = urllib.request.Request(url, data=body, headers=dict(headers), method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise CliError(f"cannot reach the gateway at {url}: {reason}") from None


def _check_url(url: str) -> str:
    parts = urlsplit(url)
    try:
        # .port raises ValueError for a port that is no number (or out of range).
        valid = parts.scheme in ("http", "https") and bool(parts.hostname) and (
            parts.port is None or parts.port > 0
        )
    except ValueError:
        valid = False
    if not valid:
        raise CliError(f"--url: expected http://HOST:PORT, got {url!r}")
    return url


class Client:
    """The API's routes as calls; errors become L{CliError}."""

    def __init__(self, url: str, key: str, http: Http) -> None:
        self._url = url.rstrip("/")
        self._key = key
        self._http = http

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        query: Optional[Mapping[str, Optional[str]]] = None,
        content_type: str = "application/octet-stream",
    ) -> Any:
        """
        One API call: a C{bytes} body goes as it is, with C{content_type};
        any other body as JSON.
        """
        headers = {"Authorization": f"Bearer {self._key}", "Accept": "application/json"}
        data = None
        if isinstance(body, bytes):
            headers["Content-Type"] = content_type
            data = body
        elif body is not None:
            headers["Content-Type"] = "application/json"
            data = json.dumps(body).encode("utf-8")
        url = self._url + path
        params = {k: v for k, v in (query or {}).items() if v is not None}
        if params:
            url += "?" + urlencode(params)
        status, raw = self._http(method, url, headers, data)
        try:
            decoded = json.loads(raw) if raw else None
        except ValueError:
            decoded = None
        if status >= 400:
            if isinstance(decoded, dict) and isinstance(decoded.get("error"), str):
                raise CliError(f"{decoded['error']} (HTTP {status})")
            raise CliError(f"HTTP {status}")
        return decoded

    def device(self, ref: str) -> dict[str, Any]:
        """A device by id, else by name (in the default application)."""
        try:
            found: dict[str, Any] = self.call("GET", "/api/v1/devices/" + quote(ref, safe=""))
            return found
        except CliError:
            pass
        devices = self.call("GET", "/api/v1/devices", query={"name": ref})["devices"]
        if not devices:
            raise CliError(f"no device with id or name {ref!r}")
        return self.call("GET", "/api/v1/devices/" + quote(devices[0]["id"], safe=""))


# -- argument parsing ----------------------------------------------------------


# --table may also follow the command (``gatewayctl device list --table``);
# SUPPRESS keeps a sub-command from resetting the top-level value.
_OUTPUT = argparse.ArgumentParser(add_help=False)
_OUTPUT.add_argument(
    "--table", action="store_true", default=argparse.SUPPRESS, help="print a table instead of JSON"
)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="gatewayctl", description="Manage a coap-gateway through its HTTP API."
    )
    p.add_argument("--url", default=DEFAULT_URL, help=f"API base URL (default {DEFAULT_URL})")
    p.add_argument("--key", help="API key (default: $GATEWAY_API_KEY, then <data-dir>/api-key)")
    p.add_argument("--data-dir", default="./var", help="where the gateway keeps api-key")
    p.add_argument("--table", action="store_true", help="print a table instead of JSON")
    top = p.add_subparsers(dest="group", required=True, metavar="COMMAND")

    device = top.add_parser("device", help="devices and their credentials", parents=[_OUTPUT])
    d = device.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = d.add_parser("create", help="create a device", parents=[_OUTPUT])
    create.add_argument("name")
    create.add_argument("--application")
    create.add_argument("--profile")
    create.add_argument("--disabled", action="store_true", help="create it disabled")
    create.add_argument(
        "--gateway", action="append", default=[], metavar="GW",
        help="a device of the application that may publish for this one (Drogue's as=); repeatable",
    )
    _credential_options(create)
    _power_options(create)
    listing = d.add_parser("list", help="list devices", parents=[_OUTPUT])
    listing.add_argument("--application")
    listing.add_argument("--name")
    for action, text in (
        ("show", "show a device"),
        ("delete", "delete a device"),
        ("claim", "show the claim a device asked for, and when it expires"),
        ("reachability", "whether the device can be reached now, and when next"),
    ):
        d.add_parser(action, help=text, parents=[_OUTPUT]).add_argument(
            "device", metavar="DEVICE"
        )
    update = d.add_parser(
        "update", help="rename, re-profile, enable or disable a device", parents=[_OUTPUT]
    )
    update.add_argument("device", metavar="DEVICE")
    update.add_argument("--name")
    update.add_argument("--profile")
    enabled = update.add_mutually_exclusive_group()
    enabled.add_argument("--enable", dest="enabled", action="store_const", const=True)
    enabled.add_argument("--disable", dest="enabled", action="store_const", const=False)
    _power_options(update)
    creds = d.add_parser("credentials", help="set a credential of a device", parents=[_OUTPUT])
    creds.add_argument("device", metavar="DEVICE")
    _credential_options(creds, generate=True)

    attributes = top.add_parser("attributes", help="device attributes", parents=[_OUTPUT])
    a = attributes.add_subparsers(dest="action", required=True, metavar="ACTION")
    get = a.add_parser("get", help="read attributes", parents=[_OUTPUT])
    get.add_argument("device", metavar="DEVICE")
    get.add_argument("--scope", choices=("client", "shared", "server"))
    get.add_argument("--keys", help="comma-separated keys")
    set_ = a.add_parser(
        "set", help="set attributes: key=value (JSON if it parses)", parents=[_OUTPUT]
    )
    set_.add_argument("device", metavar="DEVICE")
    set_.add_argument("--scope", choices=("shared", "server"), default="shared")
    set_.add_argument("pairs", nargs="+", metavar="key=value")
    delete = a.add_parser("delete", help="delete attributes", parents=[_OUTPUT])
    delete.add_argument("device", metavar="DEVICE")
    delete.add_argument("--scope", choices=("shared", "server"), required=True)
    delete.add_argument("keys", nargs="+", metavar="key")

    telemetry = top.add_parser("telemetry", help="device telemetry", parents=[_OUTPUT])
    t = telemetry.add_subparsers(dest="action", required=True, metavar="ACTION")
    latest = t.add_parser("latest", help="latest value of each key", parents=[_OUTPUT])
    latest.add_argument("device", metavar="DEVICE")
    latest.add_argument("--keys", help="comma-separated keys")

    profile = top.add_parser("profile", help="device profiles", parents=[_OUTPUT])
    pr = profile.add_subparsers(dest="action", required=True, metavar="ACTION")
    for action in ("create", "update"):
        pc = pr.add_parser(action, help=f"{action} a profile", parents=[_OUTPUT])
        pc.add_argument("name")
        _profile_options(pc)
    pr.add_parser("list", help="list profiles", parents=[_OUTPUT])
    for action in ("show", "delete"):
        pr.add_parser(action, help=f"{action} a profile", parents=[_OUTPUT]).add_argument("name")
    cli_upstream.add_commands(top, _OUTPUT)
    cli_rpc.add_commands(top, _OUTPUT)
    cli_ota.add_commands(top, _OUTPUT)
    cli_cluster.add_commands(top, _OUTPUT)
    dtls = top.add_parser("dtls", help="the DTLS listener", parents=[_OUTPUT])
    dt = dtls.add_subparsers(dest="action", required=True, metavar="ACTION")
    dt.add_parser("status", help="sessions and handshake counters", parents=[_OUTPUT])
    return p


def _power_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("power saving (the device's own; 'profile' or 0: the profile's)")
    g.add_argument("--power-mode", choices=("none", "psm", "drx", "edrx", "profile"))
    for name in _PROFILE_MS:
        g.add_argument("--" + name.replace("_", "-"), type=int, metavar="MS")


def _device_power(args: argparse.Namespace) -> dict[str, Any]:
    power: dict[str, Any] = {}
    if args.power_mode is not None:
        power["power_mode"] = None if args.power_mode == "profile" else args.power_mode
    for name in _PROFILE_MS:
        value = getattr(args, name)
        if value is not None:
            power[name] = value or None
    return power


def _credential_options(p: argparse.ArgumentParser, generate: bool = False) -> None:
    g = p.add_argument_group("credentials (one kind)")
    g.add_argument("--token", help="access token (default: generated)")
    if generate:
        g.add_argument("--new-token", action="store_true", help="generate a new access token")
    g.add_argument("--psk-identity")
    g.add_argument("--psk-key", help="PSK key in hexadecimal")
    g.add_argument("--x509", metavar="FILE", help="client certificate (PEM file)")
    g.add_argument("--password", help="basic password (Drogue)")
    g.add_argument("--username", help="basic username (default: the device name)")


_PROFILE_TEXT = (
    "payload_format",
    "power_mode",
    "provisioning",
    "provision_key",
    "provision_secret",
)
_PROFILE_MS = ("psm_activity_timer", "edrx_cycle", "paging_transmission_window")
_PROFILE_FILES = ("telemetry_proto", "attributes_proto", "rpc_request_proto", "rpc_response_proto")


def _profile_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--payload-format", choices=("json", "protobuf"))
    p.add_argument("--power-mode", choices=("none", "psm", "drx", "edrx"))
    p.add_argument(
        "--provisioning", choices=("disabled", "allow_create_new", "check_pre_provisioned")
    )
    p.add_argument("--provision-key")
    p.add_argument("--provision-secret")
    for name in _PROFILE_MS:
        p.add_argument("--" + name.replace("_", "-"), type=int, metavar="MS")
    for name in _PROFILE_FILES:
        p.add_argument("--" + name.replace("_", "-"), metavar="FILE", help=".proto schema file")
    p.add_argument(
        "--strict-json",
        action=argparse.BooleanOptionalAction,
        help="refuse device JSON that is not strict (default: read it as leniently as Gson)",
    )


# -- commands ------------------------------------------------------------------


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError as e:
        raise CliError(f"cannot read {path}: {e.strerror}") from None


def _credentials(args: argparse.Namespace) -> Optional[dict[str, Any]]:
    kinds: list[dict[str, Any]] = []
    if args.token is not None or getattr(args, "new_token", False):
        token: dict[str, Any] = {"type": "access_token"}
        if args.token is not None:
            token["token"] = args.token
        kinds.append(token)
    if args.psk_identity is not None or args.psk_key is not None:
        if args.psk_identity is None or args.psk_key is None:
            raise CliError("--psk-identity and --psk-key go together")
        kinds.append({"type": "psk", "identity": args.psk_identity, "key": args.psk_key})
    if args.x509 is not None:
        kinds.append({"type": "x509", "certificate": _read(args.x509)})
    if args.password is not None:
        basic = {"type": "basic", "password": args.password}
        if args.username is not None:
            basic["username"] = args.username
        kinds.append(basic)
    elif args.username is not None:
        raise CliError("--username needs --password")
    if len(kinds) > 1:
        raise CliError("give one kind of credential at a time")
    return kinds[0] if kinds else None


def _profile_body(args: argparse.Namespace) -> dict[str, Any]:
    body: dict[str, Any] = {}
    for name in _PROFILE_TEXT + _PROFILE_MS + ("strict_json",):
        if getattr(args, name) is not None:
            body[name] = getattr(args, name)
    for name in _PROFILE_FILES:
        if getattr(args, name) is not None:
            body[name] = _read(getattr(args, name))
    return body


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def _pairs(pairs: Sequence[str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep or not key:
            raise CliError(f"expected key=value, got {pair!r}")
        values[key] = _value(text)
    return values


def _device_path(device: Mapping[str, Any], suffix: str = "") -> str:
    return "/api/v1/devices/" + quote(device["id"], safe="") + suffix


def _execute(client: Client, args: argparse.Namespace) -> Any:
    if args.group in cli_upstream.GROUPS:
        return cli_upstream.execute(client, args)
    if args.group in cli_rpc.GROUPS:
        return cli_rpc.execute(client, args, CliError)
    if args.group in cli_ota.GROUPS:
        return cli_ota.execute(client, args, CliError)
    if args.group in cli_cluster.GROUPS:
        return cli_cluster.execute(client, args)
    group, action = args.group, args.action
    if group == "device":
        if action == "create":
            body: dict[str, Any] = {"name": args.name}
            if args.application:
                body["application"] = args.application
            if args.profile:
                body["profile"] = args.profile
            if args.disabled:
                body["enabled"] = False
            if args.gateway:
                body["gateways"] = args.gateway
            credentials = _credentials(args)
            if credentials is not None:
                body["credentials"] = credentials
            body.update(_device_power(args))
            return client.call("POST", "/api/v1/devices", body)
        if action == "list":
            query = {"application": args.application, "name": args.name}
            return client.call("GET", "/api/v1/devices", query=query)["devices"]
        device = client.device(args.device)
        if action == "show":
            return device
        if action == "delete":
            client.call("DELETE", _device_path(device))
            return {"deleted": device["id"]}
        if action == "claim":
            return client.call("GET", _device_path(device, "/claim"))
        if action == "reachability":
            return client.call("GET", _device_path(device, "/reachability"))
        if action == "update":
            changes = {
                k: v
                for k, v in (
                    ("name", args.name),
                    ("profile", args.profile),
                    ("enabled", args.enabled),
                )
                if v is not None
            }
            changes.update(_device_power(args))
            return client.call("PATCH", _device_path(device), changes)
        credentials = _credentials(args)
        if credentials is None:
            raise CliError("give a credential (--token, --new-token, --psk-*, --x509, --password)")
        return client.call("PUT", _device_path(device, "/credentials"), credentials)
    if group == "attributes":
        device = client.device(args.device)
        path = _device_path(device, "/attributes")
        if action == "get":
            return client.call("GET", path, query={"scope": args.scope, "keys": args.keys})
        if action == "set":
            return client.call("POST", f"{path}/{args.scope}", _pairs(args.pairs))
        return client.call("DELETE", f"{path}/{args.scope}", query={"keys": ",".join(args.keys)})
    if group == "dtls":
        return client.call("GET", "/api/v1/dtls")
    if group == "telemetry":
        device = client.device(args.device)
        return client.call(
            "GET", _device_path(device, "/telemetry/latest"), query={"keys": args.keys}
        )
    # profile
    if action == "create":
        return client.call("POST", "/api/v1/profiles", {"name": args.name, **_profile_body(args)})
    if action == "list":
        return client.call("GET", "/api/v1/profiles")["profiles"]
    path = "/api/v1/profiles/" + quote(args.name, safe="")
    if action == "update":
        return client.call("PATCH", path, _profile_body(args))
    if action == "show":
        return client.call("GET", path)
    client.call("DELETE", path)
    return {"deleted": args.name}


# -- output --------------------------------------------------------------------


#: Keys whose integer values are times in ms since the epoch.
_TIMES = frozenset({
    "created", "ts", "expires_at", "last_update_ts", "updated", "sent_at", "awake_until",
    "next_window", "last_heard",
})


def _cell(key: str, value: Any) -> str:
    if key in _TIMES and isinstance(value, int) and not isinstance(value, bool):
        try:
            when = datetime.fromtimestamp(value / 1000, timezone.utc)
        except (OverflowError, OSError, ValueError):
            return str(value)
        return when.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


def _flat(value: Any, path: str = "") -> list[tuple[str, Any]]:
    """(dotted path, value) of each value in nested objects and lists of objects."""
    if isinstance(value, dict) and value:
        items = [(str(k), v) for k, v in value.items()]
    elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        items = [(str(i), v) for i, v in enumerate(value)]
    else:
        return [(path, value)]
    return [row for k, v in items for row in _flat(v, f"{path}.{k}" if path else k)]


def _table(result: Any) -> str:
    if isinstance(result, list):
        if not result:
            return "(none)"
        columns = list(
            dict.fromkeys(
                k for item in result for k, v in item.items() if not isinstance(v, (dict, list))
            )
        )
        rows = [columns] + [
            [_cell(c, item.get(c)) if c in item else "" for c in columns] for item in result
        ]
    elif isinstance(result, dict):
        if not result:
            return "(none)"
        rows = [["key", "value"]] + [
            [path, _cell(path.rpartition(".")[2], value)] for path, value in _flat(result)
        ]
    else:
        return _cell("", result)
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


def _api_key(args: argparse.Namespace, environ: Mapping[str, str]) -> str:
    if args.key:
        return str(args.key)
    if environ.get("GATEWAY_API_KEY"):
        return environ["GATEWAY_API_KEY"]
    path = Path(args.data_dir) / "api-key"
    try:
        key = path.read_text().strip()
    except OSError:
        key = ""
    if not key:
        raise CliError(f"no API key: pass --key, set GATEWAY_API_KEY or make {path} readable")
    return key


def main(
    argv: Optional[Sequence[str]] = None,
    http: Http = urllib_http,
    environ: Optional[Mapping[str, str]] = None,
    stdout: Optional[TextIO] = None,
    stderr: Optional[TextIO] = None,
) -> int:
    """Run C{gatewayctl} with C{argv}; the exit status."""
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    args = _parser().parse_args(_join_values(sys.argv[1:] if argv is None else argv))
    try:
        url = _check_url(args.url)
        client = Client(url, _api_key(args, os.environ if environ is None else environ), http)
        result = _execute(client, args)
    except CliError as e:
        print(f"gatewayctl: error: {e}", file=err)
        return 1
    if args.table:
        print(_table(result), file=out)
    else:
        print(json.dumps(result, indent=2, ensure_ascii=False), file=out)
    return 0


def _join_values(argv: Sequence[str]) -> list[str]:
    """
    C{--key VALUE} -> C{--key=VALUE}: argparse takes a value starting with
    "-" (a key, a token) for an option otherwise.
    """
    out: list[str] = []
    items = iter(argv)
    for item in items:
        if item in _VALUED_OPTIONS:
            value = next(items, None)
            out.append(item if value is None else f"{item}={value}")
        else:
            out.append(item)
    return out


_VALUED_OPTIONS = frozenset({"--key", "--token", "--password", "--psk-key"})


def run() -> None:
    """The C{gatewayctl} console script."""
    sys.exit(main())


if __name__ == "__main__":
    run()
