"""
The hostile-input table (issue 15): the real gateway (C{twistd -n
coap-gateway}) with small bounds, one row per defect, each bound met and
then passed by one.  Every row checks that the refusal is the right 4.xx
with a reason, that nothing refused was stored, that another device (at
another address) is still served with normal latency, and that the log has
no traceback.  Each hostile sender uses its own loopback address, so the
per-address budget of wrong credentials of one never touches another.
"""

from __future__ import annotations

import itertools
import json
import signal
import socket
import statistics
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from gateway.coap import codec
from gateway.coap import numbers as n
from gateway.dialects.failures import TOO_MANY_REQUESTS
from gateway.dialects.thingsboard.payload import MAX_MS
from tests.interop.gateway_process import GatewayProcess
from tests.interop.hostile_client import Client, build, option, segments

DATAGRAM = 6000
CONFIG = f"""
[coap]
max_datagram_size = {DATAGRAM}
max_transfers_per_peer = 2
max_observers_per_peer = 2
max_observe_request_bytes = 512
dedup_bytes = 8192

[limits]
max_keys_per_request = 5
max_attributes_per_device = 8
max_attributes_size = 512
wrong_credentials_per_source = 3
wrong_credentials_refill = 600.0
"""
#: The API's body limit (gateway.api.router.MAX_BODY).
MAX_BODY = 1024 * 1024
#: What "normal latency" allows another device, whatever the baseline.
SLOW = 0.1

_serial = itertools.count(1)


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    """The real gateway with the table's bounds; at the end, a clean stop and no traceback."""
    gw = GatewayProcess.start(tmp_path_factory.mktemp("hostile"), CONFIG)
    try:
        yield gw
    finally:
        status = gw.stop()
    log = gw.log()
    assert status in (0, -signal.SIGTERM), f"the gateway exited with {status}:\n{log}"
    assert "Traceback" not in log and "#critical" not in log, log


def make_device(gw: GatewayProcess) -> dict[str, Any]:
    serial = next(_serial)
    credentials = {"type": "access_token", "token": f"HOSTILE_{serial}"}
    device: dict[str, Any] = gw.api_ok(
        "POST", "/api/v1/devices", {"name": f"hostile-{serial}", "credentials": credentials}
    )
    return device


@pytest.fixture(scope="module")
def bystander(gateway: GatewayProcess) -> Iterator[tuple[Client, str, float]]:
    """Another device at 127.0.0.1: its client, telemetry path and baseline round trip."""
    device = make_device(gateway)
    path = f"api/v1/{device['access_token']}/telemetry"
    with Client(gateway.coap_port) as client:
        yield client, path, client.median_round_trip(path, 15)


def others_served(gw: GatewayProcess, bystander: tuple[Client, str, float]) -> None:
    """The bystander is served within normal latency and the log holds no traceback."""
    client, path, baseline = bystander
    assert client.median_round_trip(path) <= max(10 * baseline, SLOW)
    log = gw.log()
    assert "Traceback" not in log and "#critical" not in log and "#error" not in log, log


def latest(gw: GatewayProcess, device: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = gw.api_ok("GET", f"/api/v1/devices/{device['id']}/telemetry/latest")
    return found


def served(gw: GatewayProcess, device: dict[str, Any]) -> int:
    """How many uplinks of C{device} the gateway served: its events in the outbox."""
    return len(gw.api_ok("GET", "/api/v1/events", device=device["id"])["events"])


def client_attributes(gw: GatewayProcess, device: dict[str, Any]) -> dict[str, Any]:
    body = gw.api_ok("GET", f"/api/v1/devices/{device['id']}/attributes", scope="client")
    found: dict[str, Any] = body["client"]
    return found


def test_row_1_blockwise_transfers(gateway: GatewayProcess, bystander: Any) -> None:
    """
    Uploads from one peer: a bogus token is 4.01 at block 0 (nothing
    buffered); two (the per-peer bound) proceed side by side; a third evicts
    the oldest, whose next block is 4.08, while the newest complete.
    """
    device = make_device(gateway)
    path = f"api/v1/{device['access_token']}/telemetry"
    with Client(gateway.coap_port, "127.0.0.11") as bogus:
        refused = bogus.post("api/v1/NO_SUCH_TOKEN/telemetry", b"x" * 16,
                             [(n.BLOCK1, (0, True, 0))])
        assert refused.code == n.UNAUTHORIZED
        assert refused.payload == b"unknown or missing access token"

    def first_block(client: Client, tag: bytes) -> Any:
        return client.post(path, b'{"k%s":' % tag + b" " * (16 - 5 - len(tag)),
                           [(n.REQUEST_TAG, tag), (n.BLOCK1, (0, True, 0))])

    def last_block(client: Client, tag: bytes) -> Any:
        return client.post(path, b"1}", [(n.REQUEST_TAG, tag), (n.BLOCK1, (1, False, 0))])

    with Client(gateway.coap_port, "127.0.0.12") as peer:
        # At the bound: two uploads at once, both complete.
        assert [first_block(peer, t).code for t in (b"a", b"b")] == [n.CONTINUE] * 2
        assert [last_block(peer, t).code for t in (b"a", b"b")] == [n.CREATED] * 2
        # One past it: the oldest goes, the newest two complete.
        assert [first_block(peer, t).code for t in (b"c", b"d", b"e")] == [n.CONTINUE] * 3
        evicted = last_block(peer, b"c")
        assert (evicted.code, evicted.payload) == (
            n.REQUEST_ENTITY_INCOMPLETE, b"missing earlier blocks"
        )
        assert [last_block(peer, t).code for t in (b"d", b"e")] == [n.CREATED] * 2
    assert set(latest(gateway, device)) == {"ka", "kb", "kd", "ke"}
    others_served(gateway, bystander)


def _sized(path: str, size: int) -> tuple[bytes, str]:
    """A CON POST datagram of exactly C{size} bytes, and the string value it carries."""
    token = b"\x01\x02\x03\x04"
    empty = codec.encode(build(n.POST, segments(path), b'{"d":""}', token=token))
    value = "x" * (size - len(empty))
    data = codec.encode(build(n.POST, segments(path), b'{"d":"%s"}' % value.encode(), token=token))
    assert len(data) == size
    return data, value


def test_row_2_datagram_size(gateway: GatewayProcess, bystander: Any) -> None:
    """A datagram of max_datagram_size is served; one byte more is 4.13 with Size1, unparsed."""
    device = make_device(gateway)
    path = f"api/v1/{device['access_token']}/telemetry"
    at_limit, value = _sized(path, DATAGRAM)
    past_limit, _ = _sized(path, DATAGRAM + 1)
    with Client(gateway.coap_port, "127.0.0.12") as client:
        assert client.exchange(at_limit, b"\x01\x02\x03\x04").code == n.CREATED
        refused = client.exchange(past_limit, b"\x01\x02\x03\x04")
    assert refused.code == n.REQUEST_ENTITY_TOO_LARGE
    assert refused.payload == f"datagram over {DATAGRAM} bytes: use Block1".encode()
    assert option(refused, n.SIZE1) == DATAGRAM
    assert latest(gateway, device)["d"]["value"] == value
    others_served(gateway, bystander)


def test_row_3_observe_amplification(gateway: GatewayProcess, bystander: Any) -> None:
    """
    One peer gets two observations (its bound), a third is answered without
    Observe, as is a registration bigger than max_observe_request_bytes;
    another peer still observes.
    """
    device = make_device(gateway)
    path = f"api/v1/{device['access_token']}/attributes"
    observe = [(n.OBSERVE, 0)]
    with Client(gateway.coap_port, "127.0.0.13") as peer:
        answers = [peer.request(n.GET, path, options=observe) for _ in range(3)]
        assert [a.code for a in answers] == [n.CONTENT] * 3
        assert [option(a, n.OBSERVE) is not None for a in answers] == [True, True, False]
    with Client(gateway.coap_port, "127.0.0.14") as big:
        padding = [(n.URI_QUERY, b"p=" + b"x" * 200)] * 3  # 600 bytes of options
        padded = big.request(n.GET, path, options=[*observe, *padding])
        assert (padded.code, option(padded, n.OBSERVE)) == (n.CONTENT, None)
    with Client(gateway.coap_port) as other:
        assert option(other.request(n.GET, path, options=observe), n.OBSERVE) is not None
    others_served(gateway, bystander)


def test_row_4_dedup_bytes(gateway: GatewayProcess, bystander: Any) -> None:
    """
    A retransmission is answered from the table while it holds it; past
    dedup_bytes the oldest entry is gone, so the same datagram is served
    afresh (the table is bounded in bytes, not by count alone).
    """
    device = make_device(gateway)
    message = build(n.POST, segments(f"api/v1/{device['access_token']}/telemetry"),
                    b'{"seq":1}')
    data = codec.encode(message)
    # Each uplink served commits one event; a replayed answer commits none.
    with Client(gateway.coap_port, "127.0.0.15") as client:
        assert client.exchange(data, message.token).code == n.CREATED
        assert served(gateway, device) == 1
        assert client.exchange(data, message.token).code == n.CREATED
        assert served(gateway, device) == 1, "a duplicate was served again"
        with Client(gateway.coap_port, "127.0.0.16") as flood:
            for i in range(64):  # 64 x (256 + a ~400-byte answer) > 8192 bytes
                flood.request(n.GET, ".well-known/core", options=[(n.URI_QUERY, b"q=%d" % i)])
        assert client.exchange(data, message.token).code == n.CREATED
    assert served(gateway, device) == 2
    others_served(gateway, bystander)


def test_row_5_lone_surrogate(gateway: GatewayProcess, bystander: Any) -> None:
    """A surrogate pair is stored; a lone surrogate is 4.00 at its position; the API answers."""
    device = make_device(gateway)
    base = f"api/v1/{device['access_token']}"
    with Client(gateway.coap_port, "127.0.0.17") as client:
        assert client.post(base + "/telemetry", b'{"ok":"\\ud83d\\ude00"}').code == n.CREATED
        for feature in ("telemetry", "attributes"):
            refused = client.post(f"{base}/{feature}", b'{"s":"\\ud800"}')
            assert (refused.code, refused.payload) == (
                n.BAD_REQUEST, b"invalid Unicode: lone surrogate at character 6"
            )
    assert {k: v["value"] for k, v in latest(gateway, device).items()} == {"ok": "\U0001f600"}
    assert client_attributes(gateway, device) == {}
    others_served(gateway, bystander)


def test_row_6_bad_numbers(gateway: GatewayProcess, bystander: Any) -> None:
    """
    4,300 digits and ts/durationMs at the range end are taken; one digit or
    one ms more, 2**70 and 1e308 are 4.00 with a reason, provisioning (no
    credentials) included, and 200 of them log nothing.
    """
    device = make_device(gateway)
    base = f"api/v1/{device['access_token']}"
    digits = b"9" * 4300
    with Client(gateway.coap_port, "127.0.0.18") as client:
        assert client.post(base + "/telemetry", b'{"big":' + digits + b"}").code == n.CREATED
        assert client.post(base + "/telemetry",
                           b'{"ts":%d,"values":{"end":1}}' % MAX_MS).code == n.CREATED
        assert client.post(base + "/claim", b'{"durationMs":%d}' % MAX_MS).code == n.CREATED
        log_size = len(gateway.log())
        cases = [
            (base + "/telemetry", b'{"over":' + digits + b"9}", b"integer with more than 4300"),
            (base + "/telemetry", b'{"over":"' + digits + b'9"}', b"numeric string of 'over'"),
            ("api/v1/provision", b'{"provisionDeviceKey":' + digits + b"9}",
             b"integer with more than 4300"),
            (base + "/telemetry", b'{"ts":%d,"values":{"over":1}}' % (MAX_MS + 1), b"ts must"),
            (base + "/telemetry", b'{"ts":%d,"values":{"over":1}}' % 2**70, b"ts must"),
            (base + "/telemetry", b'{"ts":1e308,"values":{"over":1}}', b"ts must"),
            (base + "/claim", b'{"durationMs":%d}' % 2**70, b"durationMs must"),
            (base + "/claim", b'{"durationMs":1e308}', b"durationMs must"),
        ]
        for _ in range(25):
            for path, body, reason in cases:
                refused = client.post(path, body)
                assert refused.code == n.BAD_REQUEST, (path, body[:30])
                assert refused.payload.startswith(reason), refused.payload
    assert len(gateway.log()) - log_size < 200, gateway.log()[log_size:]
    assert set(latest(gateway, device)) == {"big", "end"}
    others_served(gateway, bystander)


def test_row_7_one_device_cannot_stall_others(gateway: GatewayProcess, bystander: Any) -> None:
    """
    Keys per request, attributes per device and their bytes are taken up to
    their bounds and refused one past, with the bound as reason; while a
    100,000-key upload is refused, another device keeps its latency.
    """
    device = make_device(gateway)
    path = f"api/v1/{device['access_token']}/attributes"
    with Client(gateway.coap_port, "127.0.0.19") as client:
        assert client.post(path, b'{"a":1,"b":2,"c":3,"d":4,"e":5}').code == n.CREATED
        over = client.post(path, b'{"f":1,"g":2,"h":3,"i":4,"j":5,"k":6}')
        assert (over.code, over.payload) == (n.BAD_REQUEST, b"6 keys in one request, at most 5")
        assert client.post(path, b'{"f":6,"g":7,"h":8}').code == n.CREATED
        over = client.post(path, b'{"i":9}')
        assert (over.code, over.payload) == (
            n.BAD_REQUEST, b"the device would hold 9 client attributes, at most 8"
        )
        sized = make_device(gateway)
        sized_path = f"api/v1/{sized['access_token']}/attributes"
        # "s" and a 511-byte JSON string: 512 bytes, the bound.
        assert client.post(sized_path, b'{"s":"%s"}' % (b"x" * 509)).code == n.CREATED
        over = client.post(sized_path, b'{"t":1}')
        assert (over.code, over.payload) == (
            n.BAD_REQUEST, b"the device's client attributes would take 514 bytes, at most 512"
        )

        huge = json.dumps({f"{i:x}": 0 for i in range(100_000)}, separators=(",", ":")).encode()
        assert len(huge) < 1024 * 1024  # within max_body_size: refused for its keys
        outcome: list[Any] = []
        upload = threading.Thread(target=lambda: outcome.append(client.upload(path, huge)))
        upload.start()
        samples = []
        bystander_client, bystander_path, baseline = bystander
        while upload.is_alive():
            samples.append(bystander_client.round_trip(bystander_path, b'{"during":1}'))
        upload.join()
    [refused] = outcome
    assert (refused.code, refused.payload) == (
        n.BAD_REQUEST, b"100000 keys in one request, at most 5"
    )
    # How many round trips fit in the upload depends on the machine: one is enough.
    assert samples, "the upload ended before the bystander could post"
    assert statistics.median(samples) <= max(10 * baseline, SLOW), samples
    assert set(client_attributes(gateway, device)) == set("abcdefgh")
    assert set(client_attributes(gateway, sized)) == {"s"}
    others_served(gateway, bystander)


def _http(gw: GatewayProcess, head: bytes, body: bytes = b"") -> bytes:
    """Send C{head} (and C{body}); all the API answers until it closes."""
    with socket.create_connection(("127.0.0.1", gw.api_port), timeout=10) as sock:
        sock.sendall(head + body)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    return received


def _post_devices(gw: GatewayProcess, length: int, key: str) -> bytes:
    return (
        b"POST /api/v1/devices HTTP/1.1\r\nHost: gateway\r\nConnection: close\r\n"
        b"Content-Type: application/json\r\nAuthorization: Bearer %s\r\n"
        b"Content-Length: %d\r\n\r\n" % (key.encode(), length)
    )


def test_row_8_api_bodies(gateway: GatewayProcess, bystander: Any) -> None:
    """
    Without the key a 100 MB body is 401 on the headers alone; a body of the
    limit is served, one byte more is 413 before it is read; deep nesting is
    400, not 500.
    """
    before = len(gateway.api_ok("GET", "/api/v1/devices")["devices"])
    unauthorised = _http(gateway, _post_devices(gateway, 100 * 1024 * 1024, "wrong"))
    assert unauthorised.startswith(b"HTTP/1.1 401 ")
    assert unauthorised.endswith(
        b'{"error":"a valid \'Authorization: Bearer <key>\' header is required"}\n'
    )
    too_large = _http(gateway, _post_devices(gateway, MAX_BODY + 1, gateway.api_key))
    assert too_large.startswith(b"HTTP/1.1 413 ")
    assert too_large.endswith(b'{"error":"the body is larger than 1048576 bytes"}\n')
    body = b'{"name":"at-the-limit"}'
    served = _http(gateway, _post_devices(gateway, MAX_BODY, gateway.api_key),
                   body + b" " * (MAX_BODY - len(body)))
    assert served.startswith(b"HTTP/1.1 201 "), served[:200]
    nested = gateway.api("POST", "/api/v1/devices", json.loads("[" * 50 + "]" * 50))
    assert nested.status == 400
    deep = _http(gateway, _post_devices(gateway, 200_000, gateway.api_key),
                 b"[" * 100_000 + b"]" * 100_000)
    assert deep.startswith(b"HTTP/1.1 400 ")
    assert b"nested too deeply" in deep
    names = [d["name"] for d in gateway.api_ok("GET", "/api/v1/devices")["devices"]]
    assert len(names) == before + 1 and "at-the-limit" in names
    others_served(gateway, bystander)


def test_row_9_tokens(gateway: GatewayProcess, bystander: Any) -> None:
    """
    Invalid UTF-8 tokens are 4.00, a token with '/' is a 400 at creation,
    and a source's wrong tokens are 4.01 up to its budget, then 4.29 with
    Max-Age (a right token too), counted in /api/v1/status; others are served.
    """
    device = make_device(gateway)
    token = device["access_token"].encode()
    with Client(gateway.coap_port, "127.0.0.20") as client:
        for raw in (b"\xff\xfe", b"\x80\x80"):
            refused = client.request(n.POST, [b"api", b"v1", raw, b"telemetry"], b'{"a":1}')
            assert (refused.code, refused.payload) == (n.BAD_REQUEST, b"invalid UTF-8 in Uri-Path")
    slash = gateway.api("POST", "/api/v1/devices", {
        "name": "slash", "credentials": {"type": "access_token", "token": "a/b"},
    })
    assert slash.status == 400 and "'/'" in slash.body["error"]
    with Client(gateway.coap_port, "127.0.0.21") as guesser:
        for i in range(3):
            wrong = guesser.request(n.POST, [b"api", b"v1", b"GUESS%d" % i, b"telemetry"],
                                    b'{"a":1}')
            assert wrong.code == n.UNAUTHORIZED
        throttled = guesser.request(n.POST, [b"api", b"v1", token, b"telemetry"], b'{"a":1}')
        assert throttled.code == TOO_MANY_REQUESTS
        assert throttled.payload == b"too many wrong credentials from this address"
        assert 0 < option(throttled, n.MAX_AGE) <= 600
    assert latest(gateway, device) == {}
    status = gateway.api_ok("GET", "/api/v1/status")["wrong_credentials"]
    by_source = {s["source"]: s for s in status["sources"]}
    assert by_source["127.0.0.21"]["wrong"] == 3
    assert by_source["127.0.0.21"]["throttled"] == 1
    assert by_source["127.0.0.21"]["retry_after"] > 0
    with Client(gateway.coap_port) as same_device_elsewhere:
        assert same_device_elsewhere.post(f"api/v1/{token.decode()}/telemetry",
                                          b'{"a":2}').code == n.CREATED
    others_served(gateway, bystander)
