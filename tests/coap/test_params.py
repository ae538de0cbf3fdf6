"""Transmission parameters and engine limits."""

from __future__ import annotations

import pytest

from gateway.coap.params import EngineLimits, TransmissionParameters


def test_defaults_give_rfc_7252_derived_times() -> None:
    """The defaults derive the times of RFC 7252 §4.8.2 (93 s, 247 s, 145 s)."""
    params = TransmissionParameters()
    assert (params.max_transmit_span, params.max_transmit_wait) == (45.0, 93.0)
    assert (params.exchange_lifetime, params.non_lifetime) == (247.0, 145.0)


def test_stretched_timers_stretch_lifetimes() -> None:
    """A longer ACK_TIMEOUT for NB-IoT lengthens the dedup lifetime with it."""
    assert TransmissionParameters(ack_timeout=10.0).exchange_lifetime > 247.0


def test_block_size_must_be_a_power_of_two() -> None:
    """A block size that is not 16..1024 and a power of two is refused with its name."""
    with pytest.raises(ValueError, match="max_block_size"):
        EngineLimits(max_block_size=1000)
