"""
The ThingsBoard device API over plain CoAP (and DTLS identities): see
L{gateway.dialects.thingsboard.dialect} and the reference in
C{reference/thingsboard-coap.md}.
"""

from .dialect import ThingsBoardDialect

__all__ = ["ThingsBoardDialect"]
