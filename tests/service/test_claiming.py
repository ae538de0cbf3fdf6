"""
Device claiming.
"""

from __future__ import annotations

from twisted.internet.task import Clock
from zope.interface.verify import verifyObject

from gateway.domain.errors import InvalidArgument, NotFound
from gateway.service.build import Services
from gateway.service.claiming import DEFAULT_CLAIM_DURATION_MS
from gateway.service.interfaces import IClaimingService

from .conftest import failure, result


def test_provides_interface(services: Services) -> None:
    """The claiming service provides IClaimingService."""
    assert verifyObject(IClaimingService, services.claiming)


def test_claim_within_duration(services: Services, clock: Clock) -> None:
    """A claim with the right secret succeeds once, before it expires."""
    dev = result(services.registry.create_device("a")).device.id
    claim = result(services.claiming.request_claim(dev, "s3cret", 60_000))
    assert claim.expires_at - claim.created == 60_000
    assert not result(services.claiming.claim(dev, "wrong"))
    assert result(services.claiming.claim(dev, "s3cret"))
    assert not result(services.claiming.claim(dev, "s3cret"))


def test_claim_expires(services: Services, clock: Clock) -> None:
    """After its duration a claim is gone."""
    dev = result(services.registry.create_device("a")).device.id
    result(services.claiming.request_claim(dev, "", 1000))
    clock.advance(1.0)
    assert result(services.claiming.get_claim(dev)) is None
    assert not result(services.claiming.claim(dev, ""))


def test_zero_duration_uses_default(services: Services) -> None:
    """durationMs 0 means the server's default duration."""
    dev = result(services.registry.create_device("a")).device.id
    claim = result(services.claiming.request_claim(dev))
    assert claim.expires_at - claim.created == DEFAULT_CLAIM_DURATION_MS
    assert result(services.claiming.get_claim(dev)) == claim


def test_invalid(services: Services) -> None:
    """Negative durations and unknown devices are refused."""
    dev = result(services.registry.create_device("a")).device.id
    failure(services.claiming.request_claim(dev, "", -1), InvalidArgument)
    failure(services.claiming.request_claim("zz"), NotFound)
