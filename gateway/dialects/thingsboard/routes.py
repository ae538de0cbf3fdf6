# -*- test-case-name: tests.dialects.test_thingsboard_payload -*-
"""
ThingsBoard's position-based parsing of C{/api/v1/...} paths (reference
section 1, C{CoapTransportResource}), on the segments after C{/api/v1}.

 - C{[feature]}: the X.509 form (no token), e.g. C{/api/v1/provision}.
 - C{[feature, id]} with a numeric C{id}: the X.509 RPC reply form.
 - C{[token, feature, ...]}: the token form; the segment after the feature
   is the RPC id (C{/api/v1/{token}/rpc/{id}}).

A segment that is not UTF-8 is a 4.00 (RFC 7252 options are UTF-8 strings):
decoding it with replacement characters would let different byte strings
stand for the same token.
"""

from __future__ import annotations

from typing import Optional, Sequence

import attrs

from gateway.coap import errors

__all__ = ["Route", "parse_route", "FEATURES"]

FEATURES = frozenset(
    {"attributes", "telemetry", "rpc", "claim", "provision", "firmware", "software"}
)


@attrs.frozen
class Route:
    """
    @ivar token: the access token, or C{None} for the X.509/PSK forms.
    @ivar feature: the feature segment, lower-case as sent (C{None} if absent).
    @ivar rpc_id: the segment after the feature (an RPC reply's id), if any.
    """

    token: Optional[str]
    feature: Optional[str]
    rpc_id: Optional[str] = None


def _text(segment: bytes) -> str:
    try:
        return segment.decode("utf-8")
    except UnicodeDecodeError:
        raise errors.BadRequest("invalid UTF-8 in Uri-Path") from None


def parse_route(segments: Sequence[bytes]) -> Route:
    """The token and feature of the path segments that follow C{/api/v1}."""
    if not segments:
        return Route(None, None)
    if len(segments) == 1:
        return Route(None, _text(segments[0]))
    if len(segments) == 2 and segments[1].isdigit():
        return Route(None, _text(segments[0]), _text(segments[1]))
    rest = _text(segments[2]) if len(segments) > 2 else None
    return Route(_text(segments[0]), _text(segments[1]), rest)
