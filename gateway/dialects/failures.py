# -*- test-case-name: tests.dialects.test_failures -*-
"""
Domain errors as CoAP answers: the one mapping every dialect uses.

A device reaches the service layer only after it authenticated, so a
device that is gone by then (L{NotFound}) is answered 4.01, as an unknown
credential would be; a bad argument or a clash is the device's mistake
(4.00); L{Unavailable} is 5.03 with Max-Age saying when to come back.
Anything else passes on, and the engine answers 5.00 and logs it once.

L{TooManyRequests} is RFC 8516's 4.29 (with Max-Age), which the engine
has no name for: a source address throttled for its wrong credentials.
"""

from __future__ import annotations

from typing import Any

from twisted.python.failure import Failure

from gateway.coap import errors as coap
from gateway.domain import errors

__all__ = ["TOO_MANY_REQUESTS", "TooManyRequests", "coap_error", "service_failure"]

#: 4.29 Too Many Requests (RFC 8516).
TOO_MANY_REQUESTS = (4 << 5) | 29


class TooManyRequests(coap.CoAPError):
    """4.29: come back after Max-Age seconds."""

    code = TOO_MANY_REQUESTS


def coap_error(error: errors.ServiceError) -> coap.CoAPError:
    """The CoAP error answering a deliberate service failure."""
    if isinstance(error, errors.NotFound):
        return coap.Unauthorized("unknown device")
    if isinstance(error, errors.Unavailable):
        return coap.ServiceUnavailable(error.message, max_age=error.retry_after)
    return coap.BadRequest(error.message)


def service_failure(failure: Failure) -> Any:
    """An errback: raise the CoAP error of a service failure, pass on the rest."""
    if failure.check(errors.ServiceError):
        raise coap_error(failure.value) from None
    return failure
