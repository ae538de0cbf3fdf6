"""Tests for C{GET /api/v1/dtls}."""

from __future__ import annotations

from typing import Any

from twisted.internet.task import Clock

from gateway.api.app import build_api
from gateway.service.build import Services
from tests.api.conftest import KEY, Api


def test_dtls_off_says_so(api: Api) -> None:
    """Without a DTLS listener the route answers that DTLS is not served."""
    assert api.get("/api/v1/dtls").body == {"enabled": False}


def test_dtls_report_is_served(services: Services, clock: Clock) -> None:
    """With a DTLS listener the route answers its report as it is at the time of the call."""
    state: dict[str, Any] = {"enabled": True, "sessions": {"open": 1}}
    api = Api(build_api(services, KEY, dtls=lambda: state), services, clock)
    assert api.get("/api/v1/dtls").body == state
    state["sessions"] = {"open": 2}
    assert api.get("/api/v1/dtls").body["sessions"] == {"open": 2}
    assert api.get("/api/v1/dtls", key=None).status == 401
