# -*- test-case-name: tests.dialects.test_thingsboard_plugin -*-
"""
Device-API dialects: the seam between the CoAP engine and the service layer.

A dialect (ThingsBoard, Drogue, Efento, ...) is a CoAP resource subtree over
the device-services facade (L{gateway.service.interfaces.IDeviceServices}:
what a device may do, never the store or the registry), built from the
shared parts in L{gateway.dialects.toolkit} and L{gateway.dialects.jsonio}.
Each one is a module in the C{plugins} package holding an object that
provides L{IDialect}; L{install_dialects} finds them with
C{twisted.plugin.getPlugins} and puts their resources under the root.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger
from twisted.plugin import getPlugins
from zope.interface import Attribute, Interface

from gateway.service.interfaces import IDeviceServices

__all__ = ["IDialect", "UnknownDialect", "install_dialects", "find_dialects", "event_shapes"]

log = Logger()


class IDialect(Interface):
    """
    A device API served over CoAP, installable under the engine's root.

    Plugin objects must provide C{twisted.plugin.IPlugin} as well, or
    C{getPlugins} does not list them.
    """

    name = Attribute("The dialect's unique name, e.g. C{'thingsboard'}.")
    event_shape = Attribute(
        "The L{gateway.upstream.events.EventShape} of its upstream events, or C{None}: ours."
    )

    def install(root: Any, devices: IDeviceServices, clock: IReactorTime) -> None:
        """
        Put this dialect's resources under C{root} (a
        L{gateway.coap.resource.Resource}), serving devices through
        C{devices}; C{clock} schedules any timer the dialect needs.
        """

    def configure(options: Mapping[str, Any]) -> "IDialect":
        """
        A copy of this dialect with C{options} applied (dialect-specific
        keys); L{ValueError} for an unknown key or a bad value.
        """


class UnknownDialect(ValueError):
    """An enabled dialect name that no plugin provides."""


def find_dialects(package: Any = None) -> dict[str, IDialect]:
    """
    The dialect plugins in C{package} (default: the top-level C{plugins}
    package), by name.  Twisted writes its C{dropin.cache} there.
    """
    if package is None:
        import plugins as package
    found: dict[str, IDialect] = {}
    for dialect in getPlugins(IDialect, package):
        if dialect.name in found:
            log.warn("Two dialect plugins are named {name}; keeping the first", name=dialect.name)
            continue
        found[dialect.name] = dialect
    return found


def event_shapes(
    enabled: Iterable[str] | None = None, package: Any = None
) -> dict[str, Any]:
    """
    The event shape of each dialect in C{enabled} (all found when None)
    that has its own, by name, for the upstream events' factory.
    """
    found = find_dialects(package)
    names = sorted(found) if enabled is None else [name for name in enabled if name in found]
    return {
        name: found[name].event_shape for name in names if found[name].event_shape is not None
    }


def install_dialects(
    root: Any,
    devices: IDeviceServices,
    clock: IReactorTime,
    enabled: Iterable[str] | None = None,
    options: Mapping[str, Mapping[str, Any]] | None = None,
    package: Any = None,
) -> list[str]:
    """
    Discover the dialect plugins and install them under C{root}.

    @param enabled: names of the dialects to install (all found when None);
        a name no plugin provides raises L{UnknownDialect}.
    @param options: per-dialect options, passed to L{IDialect.configure}.
    @param package: where to look for plugins (the C{plugins} package by
        default; tests pass their own).
    @return: the names installed, in order.
    """
    found = find_dialects(package)
    if enabled is None:
        names = sorted(found)
    else:
        names = list(dict.fromkeys(enabled))
        missing = [name for name in names if name not in found]
        if missing:
            raise UnknownDialect(
                f"no dialect plugin named {', '.join(missing)} (found: {', '.join(sorted(found))})"
            )
    options = options or {}
    for name in names:
        dialect = found[name]
        if name in options:
            dialect = dialect.configure(options[name])
        dialect.install(root, devices.for_dialect(name), clock)
        log.info("Dialect {dialect} installed", dialect=name)
    return names
