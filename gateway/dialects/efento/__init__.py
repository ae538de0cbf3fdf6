"""
The Efento NB-IoT sensors' CoAP API (C{/efento/m}, C{/i}, C{/c}, C{/t}): see
L{gateway.dialects.efento.resources} and the reference in
C{reference/thingsboard-coap.md} section 9.
"""

from .dialect import EfentoDialect

__all__ = ["EfentoDialect"]
