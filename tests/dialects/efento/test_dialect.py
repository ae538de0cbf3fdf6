"""The Efento dialect plugin: discovery, options, installation and the profiles it serves."""

from __future__ import annotations

from typing import Any

import pytest
from twisted.internet.task import Clock
from zope.interface.verify import verifyObject

import plugins
from gateway.coap import numbers as n
from gateway.coap.resource import Resource
from gateway.dialect import IDialect, find_dialects
from gateway.dialects.efento import EfentoDialect
from gateway.dialects.efento.resources import EfentoResource
from gateway.dialects.efento.schema import EfentoSchema
from gateway.domain.model import Profile
from gateway.service.build import Services, memory_services
from plugins.efento import efento
from tests.service.conftest import FAST_HASHER, result

from .test_resources import Efento, measurements


def test_plugin_provides_idialect() -> None:
    """The plugin object provides IDialect, named efento, with the gateway's own event shape."""
    assert verifyObject(IDialect, efento)
    assert (efento.name, efento.event_shape) == ("efento", None)


def test_discovered_with_getplugins() -> None:
    """twisted.plugin finds the Efento dialect in the plugins package."""
    assert find_dialects(plugins)["efento"] == efento


def test_install_mounts_efento(clock: Clock, services: Services) -> None:
    """Installing puts the Efento resource at /efento, unlisted."""
    root = Resource()
    efento.install(root, services.devices, clock)
    child = root.children[b"efento"]
    assert isinstance(child, EfentoResource) and not child.visible


def test_options_are_applied() -> None:
    """config_wait and profiles are taken from the dialect's table."""
    configured = efento.configure({"config_wait": 0.5, "profiles": ["efento"]})
    assert (configured.config_wait, configured.profiles) == (0.5, frozenset({"efento"}))


@pytest.mark.parametrize("options, reason", [
    ({"nope": 1}, "unknown efento option(s): nope"),
    ({"config_wait": 0}, "config_wait must be a positive number of seconds"),
    ({"config_wait": True}, "config_wait must be a positive number of seconds"),
    ({"profiles": "efento"}, "profiles must be a list of profile names"),
    ({"profiles": [""]}, "profiles must be a list of profile names"),
])
def test_bad_options_are_refused(options: dict[str, Any], reason: str) -> None:
    """An unknown option or a bad value is a ValueError saying which."""
    with pytest.raises(ValueError, match=reason.replace("(", r"\(").replace(")", r"\)")):
        efento.configure(options)


def test_profiles_restrict_the_devices_served(clock: Clock, schema: EfentoSchema) -> None:
    """With profiles set, a device of another profile is 4.00; one of a listed profile is served."""
    services = result(memory_services(clock, FAST_HASHER))
    result(services.registry.create_profile(Profile("efento")))
    harness = Efento(clock, services, EfentoDialect().configure({"profiles": ["efento"]}))
    response = harness.ask("efento/m", measurements(schema))
    assert (response.code, response.payload) == (
        n.BAD_REQUEST, b"Profile 'default' is not an Efento profile"
    )
    assert harness.latest() == {}
    result(services.registry.update_device(harness.device.id, profile="efento"))
    assert harness.ask("efento/m", measurements(schema)).code == n.CREATED
