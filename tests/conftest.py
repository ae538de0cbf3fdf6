"""Fixtures shared by the service, API and dialect tests."""

from __future__ import annotations

import pytest
from twisted.internet.task import Clock

from gateway.service.build import Services, memory_services
from tests.service.conftest import FAST_HASHER, result


@pytest.fixture
def clock() -> Clock:
    """A Clock set to a plausible epoch, so millisecond timestamps look real."""
    c = Clock()
    c.advance(1_700_000_000)
    return c


@pytest.fixture
def services(clock: Clock) -> Services:
    """The whole service layer over the in-memory store."""
    return result(memory_services(clock, FAST_HASHER))
