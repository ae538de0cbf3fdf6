# -*- test-case-name: tests.api.test_failures -*-
"""Domain errors as HTTP answers: the one mapping the northbound API uses."""

from __future__ import annotations

from gateway.domain import errors

__all__ = ["http_status", "retry_after"]

_STATUS: tuple[tuple[type[errors.ServiceError], int], ...] = (
    (errors.NotFound, 404),
    (errors.Conflict, 409),
    (errors.InvalidArgument, 400),
    (errors.Unavailable, 503),
    (errors.NoAnswer, 504),
)


def http_status(error: errors.ServiceError) -> int:
    """The status answering C{error}; 500 for a kind this table lacks."""
    for kind, status in _STATUS:
        if isinstance(error, kind):
            return status
    return 500


def retry_after(error: errors.ServiceError) -> int | None:
    """Seconds for a C{Retry-After} header, for errors that have one."""
    return error.retry_after if isinstance(error, errors.Unavailable) else None
