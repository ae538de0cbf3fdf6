# -*- test-case-name: tests.test_tap -*-
"""
twistd glue: L{Options} parses the command line into a L{GatewayConfig};
L{makeService} composes the gateway's services. This is the one module that
imports the global reactor, and only inside L{makeService}.

Under twistd a bad option ends in two lines, the error and a hint to
C{--help} (twistd would print its whole usage text first); a start-up
failure in one line and exit status 1 (L{gateway.application.startup}).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from twisted.application import service
from twisted.python import usage

from gateway.application.compose import build_service
from gateway.application.signals import StopSignals
from gateway.application.startup import install_excepthook
from gateway.config import ConfigError, Override, load_config
from gateway.dialect import find_dialects

#: Command-line options that override one configuration key each.
OVERRIDE_OPTIONS: Mapping[str, tuple[str, str]] = {
    "coap-bind": ("coap", "bind"),
    "coap-port": ("coap", "port"),
    "dtls-bind": ("dtls", "bind"),
    "dtls-port": ("dtls", "port"),
    "api-port": ("api", "port"),
    "data-dir": ("storage", "data_dir"),
    "log-level": ("log", "level"),
}


class Options(usage.Options):
    """
    C{twistd coap-gateway} options. After parsing, C{self["settings"]} holds
    the L{GatewayConfig}, its C{[dialects]} checked against the plugins found.
    """

    synopsis = "[--config PATH] [overrides]"
    longdesc = (
        "Serve CoAP devices. Without --config the built-in defaults apply "
        "(etc/gateway.toml lists them). Any key can also be set with an "
        "environment variable GATEWAY_<SECTION>_<KEY>; options given here win."
    )
    optParameters = [
        ["config", "c", None, "TOML configuration file."],
        ["coap-bind", None, None, "Address for plain CoAP (coap.bind; '::' = all)."],
        ["coap-port", None, None, "UDP port for plain CoAP (coap.port)."],
        ["dtls-bind", None, None, "Address for CoAP over DTLS (dtls.bind; '::' = all)."],
        ["dtls-port", None, None, "UDP port for CoAP over DTLS (dtls.port)."],
        ["api-port", None, None, "TCP port of the northbound API (api.port)."],
        ["data-dir", None, None, "Directory for state (storage.data_dir)."],
        ["log-level", None, None, "debug, info, warn, error or critical (log.level)."],
    ]

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        super().__init__()
        self._environ = os.environ if environ is None else environ

    def parseOptions(self, options: Sequence[str] | None = None) -> None:
        try:
            super().parseOptions(options)
        except usage.UsageError as e:
            # twistd sets parent, and would print all of getUsage() first.
            if getattr(self, "parent", None) is None:
                raise
            raise SystemExit(
                f"twistd coap-gateway: error: {e}\n"
                "Run 'twistd coap-gateway --help' for the options."
            ) from None

    def postOptions(self) -> None:
        overrides = [
            Override(section, key, self[option], f"--{option}")
            for option, (section, key) in OVERRIDE_OPTIONS.items()
            if self[option] is not None
        ]
        try:
            self["settings"] = load_config(
                self["config"], self._environ, overrides, dialects=find_dialects()
            )
        except ConfigError as e:
            raise usage.UsageError(str(e)) from None


def makeService(options: Mapping[str, Any]) -> service.MultiService:
    """
    Build the gateway from parsed L{Options}, on the global reactor.
    """
    from twisted.internet import reactor

    install_excepthook()
    StopSignals(reactor).install()

    def fatal() -> None:
        if reactor.running:
            reactor.stop()

    return build_service(options["settings"], reactor, on_fatal=fatal)
