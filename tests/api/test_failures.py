"""The mapping of domain errors to HTTP statuses."""

import pytest

from gateway.api.failures import http_status, retry_after
from gateway.domain import errors


@pytest.mark.parametrize(
    "error, status",
    [
        (errors.NotFound("x"), 404),
        (errors.Conflict("x"), 409),
        (errors.InvalidArgument("x"), 400),
        (errors.Unavailable("x", retry_after=7), 503),
        (errors.ServiceError("x"), 500),
    ],
)
def test_status(error: errors.ServiceError, status: int) -> None:
    """Each kind of domain error answers with its own HTTP status."""
    assert http_status(error) == status


def test_retry_after() -> None:
    """Only an Unavailable error carries a Retry-After, in whole seconds."""
    assert retry_after(errors.Unavailable("outbox full", retry_after=7)) == 7
    assert retry_after(errors.Conflict("taken")) is None
