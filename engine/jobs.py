"""The protocol every long operation takes: a progress callback and a cancel token.

A long function accepts ``progress: Progress | None`` and ``cancel: CancelToken | None``,
wraps them in a :class:`Job`, and calls ``job.step(...)`` once per unit of work. A set
token makes the next ``step`` raise :class:`~engine.errors.Cancelled`; functions that
write files write them atomically at the very end, so a cancelled job leaves nothing.
"""

from __future__ import annotations

import threading
from typing import Any, Protocol

from engine.errors import Cancelled


class Progress(Protocol):
    def __call__(self, step: int, total: int, message: str, preview: Any | None = None) -> None: ...


class CancelToken:
    """A thread-safe flag that a front end sets and a running job polls."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def raise_if_cancelled(self) -> None:
        if self._event.is_set():
            raise Cancelled("cancelled by the user")


class Job:
    """Binds a progress callback and a cancel token to one job of ``total`` steps."""

    def __init__(self, total: int, progress: Progress | None = None, cancel: CancelToken | None = None):
        self.total = total
        self.progress = progress
        self.cancel = cancel

    def step(self, step: int, message: str = "", preview: Any | None = None) -> None:
        """Report that ``step`` of ``total`` is done; raise Cancelled if the token is set."""
        if self.cancel is not None:
            self.cancel.raise_if_cancelled()
        if self.progress is not None:
            self.progress(step, self.total, message, preview)

    def check(self) -> None:
        """Raise Cancelled if the token is set, without reporting progress."""
        if self.cancel is not None:
            self.cancel.raise_if_cancelled()
