"""
Observe on /api/v1/{token}/attributes: the shared state first, then one
notification per shared change, only to that device's observers.
"""

from __future__ import annotations

import json

from gateway.coap import codec
from gateway.coap import numbers as n
from gateway.domain.model import AttributeScope
from tests.coap.support import OTHER, PEER, option
from tests.service.conftest import result

from .conftest import TOKEN, Harness

ATTRIBUTES = f"api/v1/{TOKEN}/attributes"
SHARED = AttributeScope.SHARED
OBSERVE = ((n.OBSERVE, 0),)


def _observe(tb: Harness, token: bytes = b"ob", path: str = ATTRIBUTES, **kw: object) -> object:
    response = tb.ask(n.GET, path, options=OBSERVE, token=token, **kw)  # type: ignore[arg-type]
    assert response.code == n.CONTENT
    assert option(response, n.OBSERVE) is not None
    return response


def test_first_response_is_shared_state(tb: Harness) -> None:
    """The first answer to an observation is all shared attributes as a flat object."""
    result(tb.services.attributes.set_attributes(tb.device_id, SHARED, {"led": True}))
    result(tb.services.attributes.set_attributes(tb.device_id, AttributeScope.CLIENT, {"c": 1}))
    response = _observe(tb)
    assert json.loads(response.payload) == {"led": True}  # type: ignore[attr-defined]
    assert option(response, n.CONTENT_FORMAT) == n.JSON


def test_first_response_without_shared_attributes_is_empty_object(tb: Harness) -> None:
    """With no shared attributes the first answer is {} (not 4.04)."""
    assert json.loads(_observe(tb).payload) == {}  # type: ignore[attr-defined]


def test_updates_and_deletions_notify(tb: Harness) -> None:
    """A shared update is notified as {k: v} and a deletion as {"deleted": [...]}."""
    _observe(tb)
    result(tb.services.attributes.set_attributes(tb.device_id, SHARED, {"fw": "2.0.x"}))
    (update,) = tb.transport.take()
    assert (update.mtype, update.code, update.token) == (n.CON, n.CONTENT, b"ob")
    assert json.loads(update.payload) == {"fw": "2.0.x"}
    assert option(update, n.OBSERVE) is not None
    tb.server.feed(codec.empty(n.ACK, update.mid), PEER)
    result(tb.services.attributes.delete_attributes(tb.device_id, SHARED, ["fw"]))
    (deleted,) = tb.transport.take()
    assert json.loads(deleted.payload) == {"deleted": ["fw"]}
    assert option(deleted, n.OBSERVE) > option(update, n.OBSERVE)


def test_client_attributes_do_not_notify(tb: Harness) -> None:
    """Client-scope changes are not notified to observers."""
    _observe(tb)
    tb.ask(n.POST, ATTRIBUTES, b'{"c":1}')
    assert tb.transport.take() == []


def test_only_the_devices_observers_are_notified(tb: Harness) -> None:
    """A change of one device reaches its observers and not another device's."""
    other = result(tb.services.registry.create_device("other", access_token="T2")).device.id
    _observe(tb, token=b"o1", mtype=n.NON)
    _observe(tb, token=b"o2", path="api/v1/T2/attributes", peer=OTHER, mtype=n.NON)
    result(tb.services.attributes.set_attributes(other, SHARED, {"x": 1}))
    (message,) = tb.transport.take()
    assert (message.token, json.loads(message.payload)) == (b"o2", {"x": 1})
    assert tb.transport.written == []


def test_two_observers_of_one_device(tb: Harness) -> None:
    """Two observations of the same device share one subscription and both hear changes."""
    _observe(tb, token=b"o1", mtype=n.NON)
    _observe(tb, token=b"o2", peer=OTHER, mtype=n.NON)
    assert tb.services.attributes.subscriber_count(tb.device_id) == 1
    result(tb.services.attributes.set_attributes(tb.device_id, SHARED, {"x": 1}))
    assert sorted(m.token for m in tb.transport.take()) == [b"o1", b"o2"]


def test_deregistration_unsubscribes(tb: Harness) -> None:
    """A GET with Observe=1 ends the observation and, with the last one, the subscription."""
    _observe(tb)
    assert tb.services.attributes.subscriber_count(tb.device_id) == 1
    response = tb.ask(n.GET, ATTRIBUTES, options=((n.OBSERVE, 1),), token=b"ob")
    assert response.code == n.CONTENT
    assert tb.services.attributes.subscriber_count(tb.device_id) == 0
    result(tb.services.attributes.set_attributes(tb.device_id, SHARED, {"x": 1}))
    assert tb.transport.take() == []


def test_reset_unsubscribes(tb: Harness) -> None:
    """An RST to a CON notification ends the observation and the subscription."""
    _observe(tb)
    result(tb.services.attributes.set_attributes(tb.device_id, SHARED, {"x": 1}))
    (update,) = tb.transport.take()
    tb.server.feed(codec.empty(n.RST, update.mid), PEER)
    assert tb.services.attributes.subscriber_count(tb.device_id) == 0


def test_reregistration_keeps_subscription(tb: Harness) -> None:
    """Re-registering with the same token keeps exactly one live subscription."""
    _observe(tb)
    _observe(tb)
    assert tb.services.attributes.subscriber_count(tb.device_id) == 1
    result(tb.services.attributes.set_attributes(tb.device_id, SHARED, {"x": 1}))
    assert len(tb.transport.take()) == 1


def test_disabled_device_observation_ends(tb: Harness) -> None:
    """A change after the device was disabled ends its observation with 4.01."""
    _observe(tb, mtype=n.NON)
    result(tb.services.registry.update_device(tb.device_id, enabled=False))
    result(tb.services.attributes.set_attributes(tb.device_id, SHARED, {"x": 1}))
    (message,) = tb.transport.take()
    assert message.code == n.UNAUTHORIZED
    assert tb.services.attributes.subscriber_count(tb.device_id) == 0


def test_plain_get_does_not_subscribe(tb: Harness) -> None:
    """A GET without Observe never subscribes to attribute changes."""
    tb.ask(n.GET, ATTRIBUTES)
    assert tb.services.attributes.subscriber_count(tb.device_id) == 0
