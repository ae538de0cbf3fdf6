"""
Dialect discovery with twisted.plugin and installation under the root.
"""

from __future__ import annotations

import pytest
from twisted.internet.task import Clock
from zope.interface.verify import verifyObject

import plugins
from gateway.coap.resource import Resource
from gateway.dialect import IDialect, UnknownDialect, find_dialects, install_dialects
from gateway.dialects.thingsboard import ThingsBoardDialect
from gateway.service.build import Services
from plugins.thingsboard import thingsboard


def test_plugin_provides_idialect() -> None:
    """The plugin module's object provides IDialect and is named thingsboard."""
    assert verifyObject(IDialect, thingsboard)
    assert thingsboard.name == "thingsboard"


def test_discovered_with_getplugins() -> None:
    """twisted.plugin finds the ThingsBoard dialect in the plugins package."""
    found = find_dialects(plugins)
    assert isinstance(found["thingsboard"], ThingsBoardDialect)


def test_install_all(clock: Clock, services: Services) -> None:
    """Installing every dialect puts /api/v1 under the root and reports the names."""
    root = Resource()
    names = install_dialects(root, services.devices, clock)
    assert "thingsboard" in names
    assert b"v1" in root.children[b"api"].children


def test_install_enabled_with_options(clock: Clock, services: Services) -> None:
    """Only enabled dialects are installed, configured with their options."""
    root = Resource()
    names = install_dialects(
        root, services.devices, clock, ["thingsboard"], {"thingsboard": {"max_string_length": 8}}
    )
    assert names == ["thingsboard"]
    v1 = root.children[b"api"].children[b"v1"]
    assert v1._context.rules.max_string_length == 8


def test_unknown_dialect_refused(clock: Clock, services: Services) -> None:
    """Enabling a dialect no plugin provides raises UnknownDialect and installs nothing."""
    root = Resource()
    with pytest.raises(UnknownDialect):
        install_dialects(root, services.devices, clock, ["thingsboard", "nope"])
    assert root.children == {}


def test_bad_options_refused() -> None:
    """Unknown option keys and bad values are ValueErrors."""
    with pytest.raises(ValueError):
        thingsboard.configure({"colour": "red"})
    with pytest.raises(ValueError):
        thingsboard.configure({"max_string_length": -1})
    with pytest.raises(ValueError):
        thingsboard.configure({"type_cast": "yes"})


def test_existing_api_resource_is_reused(clock: Clock, services: Services) -> None:
    """A dialect adds v1 to an /api resource another dialect already put there."""
    root = Resource()
    api = Resource()
    api.putChild(b"other", Resource())
    root.putChild(b"api", api)
    thingsboard.install(root, services.devices, clock)
    assert set(api.children) == {b"other", b"v1"}
