"""
The service layer's bounds (C{[limits]}): keys per request, attributes per
device scope, and access tokens a device could never present.
"""

from __future__ import annotations

from typing import Any

import attrs
import pytest
from twisted.internet.defer import Deferred
from twisted.internet.task import Clock

from gateway.domain.errors import InvalidArgument
from gateway.domain.model import AttributeScope
from gateway.service.build import Services, build_services, memory_services
from gateway.service.limits import ServiceLimits
from gateway.store.memory import MemoryStore
from gateway.store.unit import UnitOfWork
from tests.service.conftest import FAST_HASHER, failure, result


@attrs.define
class SlowStore(MemoryStore):
    """A MemoryStore whose commits fire a second later on the clock."""

    clock: Clock = attrs.field(factory=Clock)

    def commit(self, unit: UnitOfWork) -> "Deferred[list[Any]]":
        done = super().commit(unit)
        later: Deferred[list[Any]] = Deferred()
        self.clock.callLater(1, lambda: done.chainDeferred(later))
        return later


def limited(clock: Clock, **limits: Any) -> Services:
    return result(memory_services(clock, FAST_HASHER, ServiceLimits(**limits)))


def test_limits_default_to_thingsboard_sized_bounds() -> None:
    """The defaults: 1000 keys, 1000 attributes and 64 KiB per scope, 10 wrong tries a minute."""
    limits = ServiceLimits()
    assert (limits.max_keys_per_request, limits.max_attributes_per_device) == (1000, 1000)
    assert limits.max_attributes_size == 65536
    assert (limits.wrong_credentials_per_source, limits.wrong_credentials_refill) == (10, 60.0)


def test_shared_attributes_from_the_api_are_bounded_too(clock: Clock) -> None:
    """An operator's shared attributes obey the same bounds, scope by scope."""
    services = limited(clock, max_attributes_per_device=1)
    device = result(services.registry.create_device("d")).device
    attributes = services.attributes
    result(attributes.set_attributes(device.id, AttributeScope.SHARED, {"a": 1}))
    result(attributes.set_attributes(device.id, AttributeScope.CLIENT, {"a": 1}))
    f = failure(
        attributes.set_attributes(device.id, AttributeScope.SHARED, {"b": 1}), InvalidArgument
    )
    assert f.value.message == "the device would hold 2 shared attributes, at most 1"


def test_concurrent_writes_cannot_pass_a_bound_together(clock: Clock) -> None:
    """Two writes in flight at once are checked one after the other against the bound."""
    store = SlowStore(clock=clock)
    building = build_services(
        store, clock, FAST_HASHER, limits=ServiceLimits(max_attributes_per_device=2)
    )
    clock.advance(1)
    services = result(building)
    creating = services.registry.create_device("d")
    clock.advance(1)
    device = result(creating).device
    first = services.attributes.set_attributes(device.id, AttributeScope.CLIENT, {"a": 1, "b": 2})
    second = services.attributes.set_attributes(device.id, AttributeScope.CLIENT, {"c": 3})
    for _ in range(3):
        clock.advance(1)
    assert result(first) is None
    failure(second, InvalidArgument)
    reading = services.attributes.get_attributes(device.id, AttributeScope.CLIENT)
    stored = result(reading)
    assert {a.key for a in stored} == {"a", "b"}


@pytest.mark.parametrize(
    "token", ["a/b", "/", ".", "..", "tab\there", "nul\x00", "del\x7f", "x" * 256, "é" * 128]
)
def test_tokens_that_cannot_travel_in_a_path_segment_refused(
    services: Services, token: str
) -> None:
    """A token with '/', a control character, a dot segment or over 255 bytes is refused."""
    failure(services.registry.create_device("d", access_token=token), InvalidArgument)
    device = result(services.registry.create_device("e")).device
    failure(services.registry.set_access_token(device.id, token), InvalidArgument)


def test_tokens_at_the_segment_limit_accepted(services: Services) -> None:
    """A token of 255 bytes, or with spaces and non-ASCII letters inside, is accepted."""
    for name, token in (("a", "x" * 255), ("b", "with space"), ("c", "é" * 127)):
        created = result(services.registry.create_device(name, access_token=token))
        assert services.credentials.authenticate_token(token) == created.device
