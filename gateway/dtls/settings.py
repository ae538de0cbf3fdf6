# -*- test-case-name: tests.dtls.test_transport -*-
"""
L{DTLSSettings}: the DTLS layer's timers and bounds, one attrs value passed
in (never module globals), like the engine's transmission parameters.
"""

from __future__ import annotations

import attrs
from attrs import validators as v

__all__ = ["DTLSSettings"]

_positive = v.gt(0.0)


@attrs.frozen
class DTLSSettings:
    #: Largest datagram sent (records are packed up to it; RFC 7925 keeps
    #: CoAP datagrams near 1152 bytes so they fit an IPv6 minimum MTU path).
    mtu: int = attrs.field(default=1152, validator=[v.ge(256), v.le(16384)])
    #: Seconds a handshake may take from the verified ClientHello.
    handshake_timeout: float = attrs.field(default=30.0, validator=_positive)
    #: Seconds without a datagram after which a session is closed.
    inactivity_timeout: float = attrs.field(default=86_400.0, validator=_positive)
    #: First retransmission of the server's flight; it doubles up to the max.
    retransmit_initial: float = attrs.field(default=1.0, validator=_positive)
    retransmit_max: float = attrs.field(default=60.0, validator=_positive)
    #: Sessions (handshaking or established) at once; more ClientHellos wait.
    max_sessions: int = attrs.field(default=10_000, validator=v.ge(1))
    #: Handshakes one source host may start at once, and the seconds in which
    #: it earns that budget back (a token bucket).
    handshakes_per_source: int = attrs.field(default=20, validator=v.ge(1))
    handshake_refill: float = attrs.field(default=10.0, validator=_positive)
    #: Source hosts whose handshake budget is remembered at once.
    max_sources: int = attrs.field(default=10_000, validator=v.ge(1))
    #: Seconds each cookie secret is current (the previous one still counts).
    cookie_rotation: float = attrs.field(default=60.0, validator=_positive)
    #: How often the sweeper looks for expired handshakes and idle sessions.
    sweep_interval: float = attrs.field(default=1.0, validator=_positive)
