"""
Transmission parameters (RFC 7252 §4.8) and the engine's resource bounds.

Both are plain attrs values passed into the engine, never module globals, so a
gateway serving NB-IoT devices can stretch the timers without patching code.
"""

from __future__ import annotations

import functools

import attrs
from attrs import validators as v

_positive = v.gt(0.0)
_positive_int = v.gt(0)


@attrs.frozen
class TransmissionParameters:
    """
    RFC 7252 §4.8 transmission parameters, with the derived times of §4.8.2.

    DEFAULT_LEISURE and PROBING_RATE are left out: the gateway answers no
    multicast and sends to an unresponsive peer only CON retransmissions
    and notifications, which the backoff and the observe rules bound.  A
    peer may carry its own (NB-IoT devices want longer timers than LAN
    ones); the derived lifetimes are cached because the engine reads them
    for every datagram.
    """

    ack_timeout: float = attrs.field(default=2.0, validator=_positive)
    ack_random_factor: float = attrs.field(default=1.5, validator=v.ge(1.0))
    max_retransmit: int = attrs.field(default=4, validator=v.ge(0))
    nstart: int = attrs.field(default=1, validator=v.ge(1))
    max_latency: float = attrs.field(default=100.0, validator=_positive)
    #: How long a handler may take before the request gets an empty ACK and
    #: the answer follows as a separate CON response.
    piggyback_delay: float = attrs.field(default=0.1, validator=v.ge(0.0))

    @property
    def processing_delay(self) -> float:
        return self.ack_timeout

    @property
    def max_transmit_span(self) -> float:
        return self.ack_timeout * (2**self.max_retransmit - 1) * self.ack_random_factor

    @property
    def max_transmit_wait(self) -> float:
        return self.ack_timeout * (2 ** (self.max_retransmit + 1) - 1) * self.ack_random_factor

    @property
    def max_rtt(self) -> float:
        return 2 * self.max_latency + self.processing_delay

    @functools.cached_property
    def exchange_lifetime(self) -> float:
        return self.max_transmit_span + self.max_rtt

    @functools.cached_property
    def non_lifetime(self) -> float:
        return self.max_transmit_span + self.max_latency


@attrs.frozen
class EngineLimits:
    """
    Hard bounds on the engine's memory and on what a request may carry.
    """

    #: Largest request body (single datagram or Block1 reassembly); larger
    #: gets 4.13 with Size1.
    max_body_size: int = attrs.field(default=1024 * 1024, validator=_positive_int)
    #: Largest datagram accepted whole; a larger request gets 4.13 with
    #: Size1 (use Block1), never a parse of a truncated datagram.
    max_datagram_size: int = attrs.field(default=8192, validator=v.ge(64))
    #: Most options a message may carry; more is a 4.00 (each option costs
    #: an object, so 8 KB of one-byte options would cost megabytes).
    max_options: int = attrs.field(default=64, validator=_positive_int)
    #: Largest datagram payload the engine sends in one message before it
    #: switches to Block2 (a power of two, 16..1024).
    max_block_size: int = attrs.field(default=1024)
    #: Remembered (peer, MID) entries across all peers.
    dedup_entries: int = attrs.field(default=200_000, validator=_positive_int)
    #: Remembered (peer, MID) entries for one peer.
    dedup_entries_per_peer: int = attrs.field(default=512, validator=_positive_int)
    #: Bytes the remembered entries may hold (each is charged about 256
    #: bytes plus the answer kept for replay).
    dedup_bytes: int = attrs.field(default=64 * 1024 * 1024, validator=_positive_int)
    #: Peers with live state (dedup, exchanges, transfers) at once.
    max_peers: int = attrs.field(default=50_000, validator=_positive_int)
    #: Observe registrations across all resources, and on one resource.
    max_observers: int = attrs.field(default=10_000, validator=_positive_int)
    max_observers_per_resource: int = attrs.field(default=1_000, validator=_positive_int)
    #: Observe registrations of one peer.
    max_observers_per_peer: int = attrs.field(default=16, validator=_positive_int)
    #: Largest registering request (its options, as kept to render later
    #: notifications) that may observe; a larger one is answered once.
    max_observe_request_bytes: int = attrs.field(default=2048, validator=_positive_int)
    #: Block-wise transfers kept across all peers: unfinished uploads, and
    #: downloads whose later blocks are served from the stored body (each
    #: direction on its own).
    max_transfers: int = attrs.field(default=1_000, validator=_positive_int)
    #: Transfers of one peer, in each direction.
    max_transfers_per_peer: int = attrs.field(default=4, validator=_positive_int)
    #: Bytes all transfers of one direction may hold.
    max_transfer_bytes: int = attrs.field(default=16 * 1024 * 1024, validator=_positive_int)
    #: Seconds an unfinished block-wise transfer is kept.
    transfer_lifetime: float = attrs.field(default=300.0, validator=_positive)

    @max_block_size.validator
    def _check_block_size(self, attribute: attrs.Attribute[int], value: int) -> None:
        if value not in (16, 32, 64, 128, 256, 512, 1024):
            raise ValueError(
                f"{attribute.name} must be a power of two from 16 to 1024, not {value}"
            )
