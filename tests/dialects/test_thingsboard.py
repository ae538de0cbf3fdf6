"""
The ThingsBoard /api/v1 routes over the engine: telemetry, attributes,
claim, and every error code.
"""

from __future__ import annotations

import json
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.task import Clock, deferLater

from gateway.coap import codec
from gateway.coap import numbers as n
from gateway.coap.params import TransmissionParameters
from gateway.coap.peer import PeerIdentity
from gateway.dialects.thingsboard import ThingsBoardDialect
from gateway.dialects.thingsboard.payload import JSONRules
from gateway.domain.model import AttributeScope, Profile, TelemetryPoint
from gateway.service.build import build_services
from gateway.store.memory import MemoryStore
from gateway.store.unit import AppendTelemetry, UnitOfWork
from tests.coap.support import PEER, option, request
from tests.service.conftest import FAST_HASHER, result

from .conftest import TOKEN, Harness

TELEMETRY = f"api/v1/{TOKEN}/telemetry"
ATTRIBUTES = f"api/v1/{TOKEN}/attributes"
CLAIM = f"api/v1/{TOKEN}/claim"


def latest(tb: Harness) -> dict[str, tuple[object, int]]:
    points = result(tb.services.telemetry.latest(tb.device_id))
    return {p.key: (p.value, p.ts) for p in points}


def test_telemetry_flat_object_stamped_with_clock(tb: Harness) -> None:
    """A flat telemetry object is answered 2.01 piggybacked and stored at the clock's ms."""
    response = tb.ask(n.POST, TELEMETRY, b'{"temperature":25,"on":true}')
    assert (response.mtype, response.code, response.payload) == (n.ACK, n.CREATED, b"")
    now = int(tb.clock.seconds() * 1000)
    assert latest(tb) == {"temperature": (25, now), "on": (True, now)}


def test_telemetry_ts_values_and_mixed_array(tb: Harness) -> None:
    """An array may mix flat objects and ts/values objects, each stored at its own time."""
    body = b'[{"ts":1000,"values":{"a":1}},{"b":2},{"ts":2000,"values":{"a":3}}]'
    assert tb.ask(n.POST, TELEMETRY, body).code == n.CREATED
    now = int(tb.clock.seconds() * 1000)
    assert latest(tb) == {"a": (3, 2000), "b": (2, now)}


def test_telemetry_values_kept_nulls_skipped_big_ints_preserved(tb: Harness) -> None:
    """Nested values are kept, nulls skipped and integers wider than 64 bits come back equal."""
    big = 2**80 + 1
    body = b'{"nested":{"x":[1,{"y":null}]},"gone":null,"big":%d}' % big
    assert tb.ask(n.POST, TELEMETRY, body).code == n.CREATED
    values = {k: v for k, (v, _) in latest(tb).items()}
    assert values == {"nested": {"x": [1, {"y": None}]}, "big": big}


def test_telemetry_numeric_strings_cast(tb: Harness) -> None:
    """Numeric strings are stored as numbers, as with ThingsBoard's JSON_TYPE_CAST_ENABLED."""
    tb.ask(n.POST, TELEMETRY, b'{"i":"42","f":"1.5","s":"v1.0"}')
    assert {k: v for k, (v, _) in latest(tb).items()} == {"i": 42, "f": 1.5, "s": "v1.0"}


def test_path_in_one_uri_path_option(tb: Harness) -> None:
    """A whole path in one Uri-Path option is served like the split path."""
    response = tb.ask(n.POST, TELEMETRY, b'{"k":1}', one_option=True)
    assert response.code == n.CREATED
    assert latest(tb)["k"][0] == 1


def test_telemetry_bad_payloads_are_400(tb: Harness) -> None:
    """Bad JSON, an empty body, a wrong shape or a bad ts get 4.00 with a diagnostic."""
    for body in (b"{nope", b"", b"42", b'"s"', b"[1]", b'{"ts":"abc","values":{"a":1}}',
                 b'{"ts":1,"values":[1]}', b'{"a":NaN}', b"\xff\xfe"):
        response = tb.ask(n.POST, TELEMETRY, body)
        assert response.code == n.BAD_REQUEST, body
        assert response.payload, body
    assert latest(tb) == {}


def test_guide_payload_is_read_as_thingsboard_reads_it(tb: Harness) -> None:
    """The guide's body {temperature:25}, and lenient attributes and claims, are accepted."""
    assert tb.ask(n.POST, TELEMETRY, b"{temperature:25}").code == n.CREATED
    assert latest(tb)["temperature"][0] == 25
    assert tb.ask(n.POST, ATTRIBUTES, b"{fw:'1.2', ok:true}").code == n.CREATED
    client = result(tb.services.attributes.get_attributes(tb.device_id, AttributeScope.CLIENT))
    assert {a.key: a.value for a in client} == {"fw": 1.2, "ok": True}
    assert tb.ask(n.POST, CLAIM, b"{secretKey:s, durationMs:1000}").code == n.CREATED
    claim = result(tb.services.claiming.get_claim(tb.device_id))
    assert claim is not None and claim.secret_key == "s"


def test_strict_profile_refuses_lenient_json(tb: Harness) -> None:
    """A device whose profile has strict_json gets 4.00 naming the offset for {temperature:25}."""
    result(tb.services.registry.create_profile(Profile("strict", strict_json=True)))
    result(tb.services.registry.update_device(tb.device_id, profile="strict"))
    for path in (TELEMETRY, ATTRIBUTES, CLAIM):
        response = tb.ask(n.POST, path, b"{temperature:25}")
        assert response.code == n.BAD_REQUEST, path
        assert response.payload == (
            b"invalid JSON at character 1: Expecting property name enclosed in double quotes"
        )
    assert tb.ask(n.POST, TELEMETRY, b'{"temperature":26}').code == n.CREATED
    assert latest(tb)["temperature"][0] == 26


def test_empty_telemetry_array_is_accepted(tb: Harness) -> None:
    """Telemetry [] is answered 2.01 and stores nothing (ThingsBoard never answers it)."""
    assert tb.ask(n.POST, TELEMETRY, b"[]").code == n.CREATED
    assert latest(tb) == {}


def test_max_string_length(clock, services) -> None:  # type: ignore[no-untyped-def]
    """A string value longer than the configured maximum is refused with 4.00."""
    tb = Harness(clock, services, ThingsBoardDialect(rules=JSONRules(max_string_length=3)))
    assert tb.ask(n.POST, TELEMETRY, b'{"s":"abc"}').code == n.CREATED
    assert tb.ask(n.POST, TELEMETRY, b'{"s":"abcd"}').code == n.BAD_REQUEST
    assert tb.ask(n.POST, ATTRIBUTES, b'{"s":{"deep":"abcd"}}').code == n.BAD_REQUEST


def test_unknown_and_missing_token_are_401(tb: Harness) -> None:
    """An unknown token, or none without a DTLS identity, is answered 4.01."""
    assert tb.ask(n.POST, "api/v1/WRONG/telemetry", b'{"a":1}').code == n.UNAUTHORIZED
    assert tb.ask(n.POST, "api/v1/telemetry", b'{"a":1}').code == n.UNAUTHORIZED
    assert tb.ask(n.GET, "api/v1/WRONG/attributes").code == n.UNAUTHORIZED


def test_disabled_device_is_401(tb: Harness) -> None:
    """A disabled device's token no longer authenticates."""
    result(tb.services.registry.update_device(tb.device_id, enabled=False))
    assert tb.ask(n.POST, TELEMETRY, b'{"a":1}').code == n.UNAUTHORIZED


def test_unknown_feature_is_400_and_unknown_top_level_404(tb: Harness) -> None:
    """An unknown feature segment is 4.00, an unknown top-level path 4.04."""
    assert tb.ask(n.POST, f"api/v1/{TOKEN}/bogus", b"{}").code == n.BAD_REQUEST
    assert tb.ask(n.POST, "api/v1", b"{}").code == n.BAD_REQUEST
    assert tb.ask(n.GET, "nothing/here").code == n.NOT_FOUND
    assert tb.ask(n.GET, "api/v2/x/telemetry").code == n.NOT_FOUND


def test_wrong_methods(tb: Harness) -> None:
    """PUT and DELETE are 4.05; GET on telemetry or claim is 4.00, as in ThingsBoard."""
    assert tb.ask(n.PUT, TELEMETRY, b"{}").code == n.METHOD_NOT_ALLOWED
    assert tb.ask(n.DELETE, ATTRIBUTES).code == n.METHOD_NOT_ALLOWED
    assert tb.ask(n.PUT, "api/v1/provision", b"{}").code == n.METHOD_NOT_ALLOWED
    assert tb.ask(n.GET, TELEMETRY).code == n.BAD_REQUEST
    assert tb.ask(n.GET, CLAIM).code == n.BAD_REQUEST


def test_post_client_attributes(tb: Harness) -> None:
    """Posted attributes are stored in client scope and answered 2.01."""
    assert tb.ask(n.POST, ATTRIBUTES, b'{"fw":"1.0.x","n":{"a":1},"z":null}').code == n.CREATED
    stored = result(tb.services.attributes.get_attributes(tb.device_id, AttributeScope.CLIENT))
    assert {a.key: a.value for a in stored} == {"fw": "1.0.x", "n": {"a": 1}}


def test_post_attributes_must_be_an_object(tb: Harness) -> None:
    """Attributes that are not a JSON object, or no body, get 4.00."""
    for body in (b"[]", b'[{"a":1}]', b"1", b""):
        assert tb.ask(n.POST, ATTRIBUTES, body).code == n.BAD_REQUEST, body


def _set(tb: Harness) -> None:
    result(tb.services.attributes.set_attributes(tb.device_id, AttributeScope.CLIENT,
                                                  {"c1": 1, "c2": "two"}))
    result(tb.services.attributes.set_attributes(tb.device_id, AttributeScope.SHARED,
                                                  {"s1": True, "s2": [1, 2]}))


def test_get_all_attributes(tb: Harness) -> None:
    """Without keys, GET attributes answers all client and shared ones as JSON (50)."""
    _set(tb)
    response = tb.ask(n.GET, ATTRIBUTES)
    assert response.code == n.CONTENT
    assert option(response, n.CONTENT_FORMAT) == n.JSON
    assert json.loads(response.payload) == {
        "client": {"c1": 1, "c2": "two"},
        "shared": {"s1": True, "s2": [1, 2]},
    }


def test_get_attributes_by_keys(tb: Harness) -> None:
    """Asked keys select per scope; a scope not asked for, or with nothing found, is left out."""
    _set(tb)
    q = n.URI_QUERY
    response = tb.ask(n.GET, ATTRIBUTES, options=((q, b"clientKeys=c1,zz"), (q, b"sharedKeys=s2")))
    assert json.loads(response.payload) == {"client": {"c1": 1}, "shared": {"s2": [1, 2]}}
    response = tb.ask(n.GET, ATTRIBUTES, options=((q, b"clientKeys=c2"),))
    assert json.loads(response.payload) == {"client": {"c2": "two"}}
    response = tb.ask(n.GET, ATTRIBUTES, options=((q, b"sharedKeys=zz"), (q, b"clientKeys=c2")))
    assert json.loads(response.payload) == {"client": {"c2": "two"}}


def test_get_attributes_last_query_wins(tb: Harness) -> None:
    """The last occurrence of a query parameter wins and malformed elements are ignored."""
    _set(tb)
    q = n.URI_QUERY
    opts = ((q, b"sharedKeys=s2"), (q, b"sharedKeys=s1"), (q, b"clientKeys=a=b"), (q, b"junk"))
    assert json.loads(tb.ask(n.GET, ATTRIBUTES, options=opts).payload) == {"shared": {"s1": True}}


def test_get_attributes_nothing_found_is_404(tb: Harness) -> None:
    """GET attributes that finds nothing is answered 4.04."""
    assert tb.ask(n.GET, ATTRIBUTES).code == n.NOT_FOUND
    _set(tb)
    response = tb.ask(n.GET, ATTRIBUTES, options=((n.URI_QUERY, b"clientKeys=nope"),))
    assert response.code == n.NOT_FOUND


def test_get_attributes_echoes_content_format(tb: Harness) -> None:
    """A request's own Content-Format is echoed on the JSON answer."""
    _set(tb)
    response = tb.ask(n.GET, ATTRIBUTES, options=((n.CONTENT_FORMAT, 0),))
    assert option(response, n.CONTENT_FORMAT) == 0


def test_claim(tb: Harness) -> None:
    """A claim with secret and duration is recorded and answered 2.01 with no body."""
    response = tb.ask(n.POST, CLAIM, b'{"secretKey":"s3cr3t","durationMs":60000}')
    assert (response.code, response.payload) == (n.CREATED, b"")
    claim = result(tb.services.claiming.get_claim(tb.device_id))
    assert claim is not None and claim.secret_key == "s3cr3t"
    assert claim.expires_at == int(tb.clock.seconds() * 1000) + 60000


def test_claim_empty_body_uses_defaults(tb: Harness) -> None:
    """An empty claim body records an empty secret for the server's default duration."""
    assert tb.ask(n.POST, CLAIM).code == n.CREATED
    claim = result(tb.services.claiming.get_claim(tb.device_id))
    assert claim is not None and claim.secret_key == ""
    default = tb.services.claiming.default_duration_ms
    assert claim.expires_at == int(tb.clock.seconds() * 1000) + default


def test_claim_bad_bodies_are_400(tb: Harness) -> None:
    """A claim body that is not an object, or has a bad field, is answered 4.00."""
    for body in (b"[]", b"1", b"{bad", b'{"durationMs":-1}', b'{"secretKey":5}'):
        assert tb.ask(n.POST, CLAIM, body).code == n.BAD_REQUEST, body


def test_non_request_is_answered_non(tb: Harness) -> None:
    """A NON telemetry request gets a NON 2.01."""
    response = tb.ask(n.POST, TELEMETRY, b'{"a":1}', mtype=n.NON)
    assert (response.mtype, response.code) == (n.NON, n.CREATED)


def test_telemetry_point_type(tb: Harness) -> None:
    """Latest telemetry reads back through the telemetry service as points."""
    tb.ask(n.POST, TELEMETRY, b'{"ts":5,"values":{"t":1.25}}')
    assert result(tb.services.telemetry.latest(tb.device_id)) == [TelemetryPoint("t", 1.25, 5)]


class DTLSPeer:
    """A peer as a DTLS session presents it: an authenticated identity."""

    def __init__(self, identity: PeerIdentity | None) -> None:
        self.address = ("10.0.0.9", 5684)
        self.key = ("dtls", self.address)
        self.identity = identity
        self.params = TransmissionParameters()
        self.sent: list[bytes] = []

    def send(self, data: bytes) -> None:
        self.sent.append(data)


def test_tokenless_form_uses_dtls_identity(tb: Harness) -> None:
    """Without a token, the DTLS peer's PSK identity authenticates the device."""
    result(tb.services.registry.set_psk(tb.device_id, "psk-id", b"k" * 16))
    peer = DTLSPeer(PeerIdentity("psk", "psk-id"))
    tb.server.receive(peer, request(n.POST, "api/v1/telemetry", mid=900, payload=b'{"d":1}'))
    assert codec.decode(peer.sent[0]).code == n.CREATED
    assert latest(tb)["d"][0] == 1
    stranger = DTLSPeer(PeerIdentity("psk", "unknown-id"))
    tb.server.receive(stranger, request(n.POST, "api/v1/telemetry", mid=901, payload=b"{}"))
    assert codec.decode(stranger.sent[0]).code == n.UNAUTHORIZED


def test_token_on_a_session_with_identity_is_refused(tb: Harness) -> None:
    """A token in the URL is 4.01 on a PSK session, even the session's own device's token."""
    result(tb.services.registry.create_device("other", access_token="OTHER"))
    result(tb.services.registry.set_psk(tb.device_id, "psk-id", b"k" * 16))
    peer = DTLSPeer(PeerIdentity("psk", "psk-id"))
    tb.server.receive(peer, request(n.POST, "api/v1/OTHER/telemetry", mid=910, payload=b"{}"))
    assert codec.decode(peer.sent[0]).code == n.UNAUTHORIZED


def test_tokenless_routes_need_a_session_identity(tb: Harness) -> None:
    """The token-less forms are 4.01 on a session without client identity; a token works there."""
    peer = DTLSPeer(None)
    tb.server.receive(peer, request(n.POST, "api/v1/telemetry", mid=920, payload=b'{"a":1}'))
    tb.server.receive(peer, request(n.POST, TELEMETRY, mid=921, payload=b'{"a":2}'))
    assert [codec.decode(d).code for d in peer.sent] == [n.UNAUTHORIZED, n.CREATED]
    assert latest(tb)["a"][0] == 2


def test_device_holding_a_psk_does_not_use_its_token(tb: Harness) -> None:
    """Once a device holds a PSK, its access token no longer authenticates it (plain UDP too)."""
    assert tb.ask(n.POST, TELEMETRY, b'{"a":1}').code == n.CREATED
    result(tb.services.registry.set_psk(tb.device_id, "psk-id", b"k" * 16))
    assert tb.ask(n.POST, TELEMETRY, b'{"a":2}').code == n.UNAUTHORIZED


def test_well_known_core_lists_the_fixed_routes(tb: Harness) -> None:
    """/.well-known/core lists provisioning and the token-less routes of /api/v1."""
    response = tb.ask(n.GET, ".well-known/core")
    links = response.payload.decode().split(",")
    assert '</api/v1/provision>;rt="tb.provision";ct=50' in links
    assert '</api/v1/attributes>;rt="tb.attributes";ct=50;obs' in links


#: How long a slow telemetry commit takes: well past the piggyback delay.
COMMIT = 0.5


class SlowCommits(MemoryStore):
    """The in-memory store, its telemetry commits taking COMMIT seconds of the clock."""

    def __init__(self, clock: Clock) -> None:
        super().__init__()
        self.clock = clock

    def commit(self, unit: UnitOfWork) -> Deferred[list[Any]]:
        done = super().commit(unit)
        if not any(isinstance(op, AppendTelemetry) for op in unit.operations):
            return done
        return deferLater(self.clock, COMMIT, lambda: done)


def test_slow_commit_gets_empty_ack_then_separate_created(clock: Clock) -> None:
    """Telemetry committed after the piggyback delay gets an empty ACK, then 2.01 as a CON."""
    tb = Harness(clock, result(build_services(SlowCommits(clock), clock, FAST_HASHER)),
                 ThingsBoardDialect())
    assert tb.send(n.POST, TELEMETRY, b'{"slow":1}', token=b"sl") == []
    clock.advance(0.1)
    [ack] = tb.transport.take()
    assert (ack.mtype, ack.code, ack.token, ack.payload) == (n.ACK, n.EMPTY, b"", b"")
    clock.advance(COMMIT)
    [response] = tb.transport.take()
    assert (response.mtype, response.code, response.token) == (n.CON, n.CREATED, b"sl")
    assert response.mid != ack.mid
    tb.server.feed(codec.empty(n.ACK, response.mid), PEER)
    clock.advance(100)
    assert tb.transport.take() == []
    assert latest(tb)["slow"][0] == 1
