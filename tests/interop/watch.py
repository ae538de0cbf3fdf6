"""
L{OutputWatcher}: a subprocess's output, read as it comes, that tests wait on.

A reader thread appends each chunk (and tees it to a log file) and wakes the
waiters, so a test blocks until the text it expects arrives, the stream ends,
or its deadline passes; nothing polls.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import IO, Callable, Optional, TypeVar

T = TypeVar("T")


class OutputWatcher:
    def __init__(self, stream: IO[bytes], tee: Optional[Path] = None) -> None:
        self._stream = stream
        self._tee = tee
        self._chunks: list[str] = []
        self._closed = False
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    @property
    def text(self) -> str:
        with self._changed:
            return "".join(self._chunks)

    def _read(self) -> None:
        log = open(self._tee, "ab") if self._tee else None  # noqa: SIM115
        try:
            while chunk := self._stream.read1(65536):  # type: ignore[attr-defined]
                if log is not None:
                    log.write(chunk)
                    log.flush()
                with self._changed:
                    self._chunks.append(chunk.decode("utf-8", "replace"))
                    self._changed.notify_all()
        finally:
            if log is not None:
                log.close()
            with self._changed:
                self._closed = True
                self._changed.notify_all()

    def ended(self, timeout: float) -> str:
        """All the output, once the stream has ended (L{TimeoutError} at the deadline)."""
        return self.wait_until(lambda text: (self._closed and text) or None, timeout, "the end")

    def wait_until(self, found: Callable[[str], Optional[T]], timeout: float, what: str) -> T:
        """
        Block until C{found(text)} is truthy and return it; L{TimeoutError}
        naming C{what} at the deadline or when the stream ends first.
        """
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                result = found("".join(self._chunks))
                if result:
                    return result
                left = deadline - time.monotonic()
                if self._closed or left <= 0:
                    state = "output ended" if self._closed else f"{timeout} s passed"
                    raise TimeoutError(f"{what} ({state}); output so far:\n{''.join(self._chunks)}")
                self._changed.wait(left)
