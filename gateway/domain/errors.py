"""
The domain's error hierarchy.

Every failure the service layer (and the store beneath it) reports on purpose
is one of these.  They carry no protocol codes: the northbound API maps them
to HTTP statuses (L{gateway.api.failures}) and the dialects to CoAP codes
(L{gateway.dialects.failures}); anything else is a bug and surfaces as a
500 / 5.00.

This is a leaf module: it imports nothing from the project.
"""

from __future__ import annotations

__all__ = [
    "ServiceError",
    "NotFound",
    "Conflict",
    "IdTaken",
    "InvalidArgument",
    "Unavailable",
    "NoAnswer",
]


class ServiceError(Exception):
    """Base class of every deliberate service-layer failure."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(ServiceError):
    """A named device, profile, credential or attribute does not exist."""


class Conflict(ServiceError):
    """
    The change would break a uniqueness rule (device name within an
    application, an access token, PSK identity, certificate or username used by
    another device) or remove something still in use (a profile with devices).
    """


class IdTaken(Conflict):
    """
    The id a caller took for a new record was given before (by another
    gateway node sharing the store): take a fresh one and try again.
    """


class InvalidArgument(ServiceError):
    """An argument is malformed or out of range."""


class Unavailable(ServiceError):
    """
    The gateway cannot take this now but will later (the outbox is full, the
    store is closing): the caller should retry after C{retry_after} seconds.
    """

    def __init__(self, message: str, retry_after: int = 30) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class NoAnswer(ServiceError):
    """
    Whoever should answer did not, in time or at all (the application a
    client-side RPC is forwarded to): a gateway timeout.
    """
