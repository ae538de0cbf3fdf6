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

__all__ = ["Exchange"]


class Exchange:
    """
    @ivar entry: the dedup entry, where the answer is kept for a duplicate.
    @ivar empty_acked: the request got an empty ACK, so the answer goes
        as a separate message.
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
        self.timer: Deadline | None = None
        self.transfer: TransferKey | None = None
        self.observation: Observation | None = None
        self.block1: Any = None
        self.block1_szx = 0
