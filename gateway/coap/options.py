"""
Reading a txThings message's options: the one place that knows where it keeps them.

txThings stores a message's options in the private dict C{message.opt._options}
(number -> list of option objects).  The engine reads that dict on every
datagram, so it reads it here, once, instead of through txThings' per-call
property helpers; everything else asks these functions.
"""

from __future__ import annotations

from typing import Any

__all__ = ["table", "values"]


def table(message: Any) -> dict[int, list[Any]]:
    """The message's options by number (live: changes to it change the message)."""
    options: dict[int, list[Any]] = message.opt._options
    return options


def values(message: Any, number: int) -> tuple[Any, ...]:
    """The values of every option C{number} of the message, in order."""
    found = message.opt._options.get(number)
    return () if found is None else tuple(option.value for option in found)

