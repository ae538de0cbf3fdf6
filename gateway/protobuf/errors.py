"""
The one failure of the schema compiler.

A leaf module like the rest of L{gateway.protobuf}: callers map it to a 400 /
4.00 with its text, which always says why and, where it applies, where.
"""

from __future__ import annotations

__all__ = ["SchemaError"]


class SchemaError(ValueError):
    """
    A schema was refused: C{reason} says why, C{file} and C{line} (1-based)
    where, when known.
    """

    def __init__(self, reason: str, *, file: str | None = None, line: int | None = None) -> None:
        self.reason = reason
        self.file = file
        self.line = line
        where = file or ""
        if line is not None:
            where = f"{where}, line {line}" if where else f"line {line}"
        super().__init__(f"{where}: {reason}" if where else reason)
