"""The mapping of domain errors to CoAP answers shared by every dialect."""

import pytest
from twisted.python.failure import Failure

from gateway.coap import errors as coap
from gateway.coap import numbers as n
from gateway.dialects.failures import coap_error, service_failure
from gateway.domain import errors


@pytest.mark.parametrize(
    "error, code",
    [
        (errors.NotFound("no device"), n.UNAUTHORIZED),
        (errors.InvalidArgument("bad"), n.BAD_REQUEST),
        (errors.Conflict("taken"), n.BAD_REQUEST),
        (errors.Unavailable("outbox full", retry_after=9), n.SERVICE_UNAVAILABLE),
    ],
)
def test_codes(error: errors.ServiceError, code: int) -> None:
    """Each domain error becomes the CoAP error a device should see."""
    assert coap_error(error).code == code


def test_unavailable_has_max_age() -> None:
    """A 5.03 tells the device when to come back with Max-Age."""
    error = coap_error(errors.Unavailable("outbox full", retry_after=9))
    assert error.options == {"max_age": 9}
    assert error.diagnostic == "outbox full"


def test_other_failures_pass_on() -> None:
    """A failure that is not a domain error is left for the engine's 5.00."""
    failure = Failure(ZeroDivisionError())
    assert service_failure(failure) is failure
    with pytest.raises(coap.Unauthorized):
        service_failure(Failure(errors.NotFound("gone")))
