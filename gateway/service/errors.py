# -*- test-case-name: tests.service.test_errors -*-
"""
The service layer's error hierarchy.

Every failure the service layer (and the store beneath it) reports on purpose
is one of these.  The northbound API maps them to HTTP statuses and the
dialects to CoAP codes; anything else is a bug and surfaces as a 500 / 5.00.

This is a leaf module: it imports nothing from the project, so the store
backends can raise these errors too.
"""

from __future__ import annotations

__all__ = ["ServiceError", "NotFound", "Conflict", "InvalidArgument"]


class ServiceError(Exception):
    """
    Base class of every deliberate service-layer failure.

    @cvar http_status: the HTTP status the northbound API answers with.
    """

    http_status: int = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(ServiceError):
    """A named device, profile, credential or attribute does not exist."""

    http_status = 404


class Conflict(ServiceError):
    """
    The change would break a uniqueness rule (device name within an
    application, an access token, PSK identity, certificate or username used by
    another device) or remove something still in use (a profile with devices).
    """

    http_status = 409


class InvalidArgument(ServiceError):
    """An argument is malformed or out of range."""

    http_status = 400
