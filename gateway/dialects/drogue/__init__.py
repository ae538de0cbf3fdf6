"""
The Drogue Cloud device API over CoAP (C{/v1/{channel}}): see
L{gateway.dialects.drogue.dialect} and the reference in
C{reference/drogue-hono-coap.md} part A.
"""

from .dialect import DrogueDialect

__all__ = ["DrogueDialect"]
