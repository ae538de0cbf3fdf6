"""
One received request and everything the engine keeps while serving it.

Like Californium's C{Exchange}, it holds state only: the message layer
answers it, the dispatcher fills in what block-wise and observe decided.
"""

from __future__ import annotations

from typing import Any

from .blockwise import TransferKey
from .deadlines import Deadline
from .dedup import Entry
from .observe import Observation
from .options import table as option_table
from .peer import IPeer

__all__ = ["Exchange", "accept"]


class Exchange:
    """
    @ivar entry: the dedup entry, where the answer is kept for a duplicate.
    @ivar empty_acked: the request got an empty ACK, so the answer goes
        as a separate message.
    @ivar accepted: the handler asked for the empty ACK at once (L{accept}).
    @ivar timer: the pending empty ACK, while the handler runs.
    @ivar transfer: the block-wise transfer key, once one was needed.
    @ivar observation: the observation this request registered, if any.
    @ivar block1: the request's Block1 value, and C{block1_szx} the size
        the answer acknowledges it with.
    """

    __slots__ = (
        "peer",
        "request",
        "options",
        "entry",
        "done",
        "empty_acked",
        "accepted",
        "timer",
        "transfer",
        "observation",
        "block1",
        "block1_szx",
    )

    def __init__(self, peer: IPeer, request: Any, entry: Entry) -> None:
        self.peer = peer
        self.request = request
        #: The request's options by number (read once: see L{options.table}).
        self.options = option_table(request)
        self.entry = entry
        self.done = False
        self.empty_acked = False
        self.accepted = False
        self.timer: Deadline | None = None
        self.transfer: TransferKey | None = None
        self.observation: Observation | None = None
        self.block1: Any = None
        self.block1_szx = 0

    def accept(self) -> None:
        """Acknowledge a CON request now rather than after the piggyback delay."""
        self.accepted = True
        if self.timer is not None:
            self.timer.run_now()


def accept(request: Any) -> None:
    """
    Called by a resource whose answer is known to take long (a parked
    request, like Californium's C{exchange.accept()}): a CON request gets
    its empty ACK at once, so the peer stops retransmitting.
    """
    exchange = getattr(request, "exchange", None)
    if exchange is not None:
        exchange.accept()
