# -*- test-case-name: tests.service.test_limits -*-
"""
L{ServiceLimits}: the bounds the service layer keeps for every caller (the
dialects and the API alike), the C{[limits]} section of the configuration.

 - C{max_keys_per_request}: keys in one attribute write, data points (keys
   summed over records) in one telemetry batch;
 - C{max_attributes_per_device}, C{max_attributes_size}: what one scope of
   a device's attributes may hold, in keys and in bytes of JSON (keys plus
   values), so that reading them (a device's C{GET /attributes}, the API)
   costs a bounded time and answers a bounded body.  The defaults keep one
   scope within 64 KiB, ThingsBoard's default transport payload size;
 - C{wrong_credentials_per_source}, C{wrong_credentials_refill},
   C{max_sources}: the per-address budget of failed authentications (see
   L{gateway.service.guard}); ThingsBoard's transport allows 10 wrong
   credentials per IP address and blocks it for 60 s.

Every refusal is an L{InvalidArgument} whose message names the bound.
"""

from __future__ import annotations

import attrs
from attrs import validators as v

from gateway.domain.errors import InvalidArgument

__all__ = ["ServiceLimits"]


@attrs.frozen
class ServiceLimits:
    #: Keys (attributes) or data points (telemetry) in one request.
    max_keys_per_request: int = attrs.field(default=1000, validator=v.ge(1))
    #: Attributes one device holds in one scope.
    max_attributes_per_device: int = attrs.field(default=1000, validator=v.ge(1))
    #: Bytes of JSON (keys and values) one device's attributes of one scope take.
    max_attributes_size: int = attrs.field(default=65536, validator=v.ge(1))
    #: Failed authentications one source address may make at once (0: no limit).
    wrong_credentials_per_source: int = attrs.field(default=10, validator=v.ge(0))
    #: Seconds in which a source earns its whole budget back.
    wrong_credentials_refill: float = attrs.field(default=60.0, validator=v.gt(0))
    #: Source addresses whose failures are remembered (the oldest go first).
    max_sources: int = attrs.field(default=10_000, validator=v.ge(1))

    def check_keys(self, count: int, what: str = "keys") -> None:
        """Refuse a request carrying more than C{max_keys_per_request} keys."""
        if count > self.max_keys_per_request:
            raise InvalidArgument(
                f"{count} {what} in one request, at most {self.max_keys_per_request}"
            )

    def check_attributes(self, scope: str, count: int, size: int) -> None:
        """Refuse a write that would leave a scope over its count or size."""
        if count > self.max_attributes_per_device:
            raise InvalidArgument(
                f"the device would hold {count} {scope} attributes,"
                f" at most {self.max_attributes_per_device}"
            )
        if size > self.max_attributes_size:
            raise InvalidArgument(
                f"the device's {scope} attributes would take {size} bytes,"
                f" at most {self.max_attributes_size}"
            )
