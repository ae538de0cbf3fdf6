"""
ThingsBoard's OTA downloads over the engine: /fw/{token}, /sw/{token},
/api/v1/{token}/firmware, the token-less forms on DTLS sessions, chunks,
Block2 and every refusal with its reason.
"""

from __future__ import annotations

from typing import Any

import pytest

from gateway.coap import codec
from gateway.coap import numbers as n
from gateway.coap.peer import PeerIdentity
from gateway.domain.ota import AssignmentTarget, OtaKind
from tests.coap.support import option, request
from tests.service.conftest import result

from .conftest import TOKEN, Harness
from .test_thingsboard import DTLSPeer

BODY = bytes(range(256)) * 12 + b"tail"  # 3076 bytes: four 1 KiB blocks


def _assign(tb: Harness, kind: OtaKind = OtaKind.FIRMWARE, body: bytes = BODY) -> None:
    result(tb.services.ota.upload(kind, "fw", "1.0", body))
    result(tb.services.ota.assign(kind, AssignmentTarget.DEVICE, tb.device_id, "fw", "1.0"))


def _query(*items: str) -> tuple[tuple[int, Any], ...]:
    return tuple((n.URI_QUERY, item.encode()) for item in items)


def _download(tb: Harness, path: str, szx: int = 6) -> bytes:
    """Fetch every block of C{path} with Block2 of size exponent C{szx}."""
    body, num = b"", 0
    while True:
        response = tb.ask(n.GET, path, options=((n.BLOCK2, (num, False, szx)),))
        assert response.code == n.CONTENT, response.payload
        body += response.payload
        more = response.opt.block2[1]
        if not more:
            return body
        num += 1


def test_whole_package_by_block2(tb: Harness) -> None:
    """GET /fw/{token} serves the whole package by Block2, with Size2 and no Content-Format."""
    _assign(tb)
    first = tb.ask(n.GET, f"fw/{TOKEN}")
    assert first.code == n.CONTENT and first.opt.block2 == (0, True, 6)
    assert option(first, n.SIZE2) == len(BODY)
    assert option(first, n.CONTENT_FORMAT) is None
    assert _download(tb, f"fw/{TOKEN}") == BODY
    assert _download(tb, f"fw/{TOKEN}", szx=2) == BODY


@pytest.mark.parametrize("path", [f"api/v1/{TOKEN}/firmware", f"fw/{TOKEN}"])
def test_chunks_select_size_times_chunk(tb: Harness, path: str) -> None:
    """size and chunk select bytes [size*chunk, size*chunk+size), the last one short."""
    _assign(tb)
    for chunk in range(4):
        response = tb.ask(n.GET, path, options=_query("size=1000", f"chunk={chunk}"))
        assert response.code == n.CONTENT
        assert response.payload == BODY[1000 * chunk : 1000 * chunk + 1000]


def test_chunk_past_the_end_is_a_bad_request(tb: Harness) -> None:
    """A chunk that starts past the end is 4.00 with the reason, not silence."""
    _assign(tb)
    response = tb.ask(n.GET, f"fw/{TOKEN}", options=_query("size=1024", "chunk=4"))
    assert response.code == n.BAD_REQUEST
    assert b"past the end" in response.payload


def test_title_and_version_must_match(tb: Harness) -> None:
    """A title or version other than the assigned package's is 4.00 naming it; matching works."""
    _assign(tb)
    wrong = tb.ask(n.GET, f"fw/{TOKEN}", options=_query("title=other", "version=1.0"))
    assert wrong.code == n.BAD_REQUEST and b"'fw'" in wrong.payload
    wrong = tb.ask(n.GET, f"api/v1/{TOKEN}/firmware", options=_query("version=2"))
    assert wrong.code == n.BAD_REQUEST and b"version" in wrong.payload
    right = tb.ask(n.GET, f"fw/{TOKEN}", options=_query("title=fw", "version=1.0", "size=4"))
    assert (right.code, right.payload) == (n.CONTENT, BODY[:4])


def test_nothing_assigned_is_not_found(tb: Harness) -> None:
    """No package assigned is 4.04 with the reason; software is apart from firmware."""
    _assign(tb, OtaKind.SOFTWARE, b"sw")
    response = tb.ask(n.GET, f"fw/{TOKEN}")
    assert (response.code, response.payload) == (n.NOT_FOUND, b"no firmware assigned")
    assert tb.ask(n.GET, f"sw/{TOKEN}").payload == b"sw"
    assert tb.ask(n.GET, f"api/v1/{TOKEN}/software").payload == b"sw"


@pytest.mark.parametrize("path", ["fw", f"fw/{TOKEN}/x", "fw/WRONG", "sw"])
def test_other_paths_are_unauthorized(tb: Harness, path: str) -> None:
    """A missing or unknown token, or more than two segments, is 4.01 as in ThingsBoard."""
    _assign(tb)
    assert tb.ask(n.GET, path).code == n.UNAUTHORIZED


def test_bad_numbers_and_post(tb: Harness) -> None:
    """A size that is not a non-negative integer is 4.00; POST on /fw is 4.05."""
    _assign(tb)
    response = tb.ask(n.GET, f"fw/{TOKEN}", options=_query("size=-1"))
    assert (response.code, response.payload) == (
        n.BAD_REQUEST, b"size must be a non-negative integer"
    )
    assert tb.ask(n.POST, f"fw/{TOKEN}").code == n.METHOD_NOT_ALLOWED


@pytest.mark.parametrize("path", ["fw", "api/v1/firmware"])
def test_tokenless_forms_on_a_dtls_session(tb: Harness, path: str) -> None:
    """PSK and X.509 devices download on their DTLS session without a token."""
    result(tb.services.registry.set_psk(tb.device_id, "psk-id", b"k" * 16))
    _assign(tb, body=b"small firmware")
    peer = DTLSPeer(PeerIdentity("psk", "psk-id"))
    tb.server.receive(peer, request(n.GET, path, mid=930))
    answer = codec.decode(peer.sent[0])
    assert (answer.code, answer.payload) == (n.CONTENT, b"small firmware")
    token_form = DTLSPeer(PeerIdentity("psk", "psk-id"))
    tb.server.receive(token_form, request(n.GET, f"fw/{TOKEN}", mid=931))
    assert codec.decode(token_form.sent[0]).code == n.UNAUTHORIZED
