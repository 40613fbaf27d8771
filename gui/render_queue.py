"""Latest-request-wins jobs: what a slider or a spin box needs from the worker thread.

A control that re-renders on every change must never build a backlog. A
:class:`LatestRenderer` keeps at most one of its jobs on the runner and at most one request
waiting; a newer request replaces the waiting one, so a burst of changes costs two renders,
not one per change, and the last request always runs.

Results come back in request order (the runner has one worker). A panel that stores each
result as a step of its own drops a result whose request has been overtaken
(``keep_overtaken=False``: only the newest lands); a panel whose steps merge keeps them, so
the picture follows a drag instead of freezing until the drag pauses. :meth:`invalidate`
drops everything requested so far, for when what the requests were made from has changed
(an undo, a new model).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from PySide6.QtCore import QObject, Signal

from gui.jobs import JobRunner


@dataclass(frozen=True)
class _Request:
    serial: int
    epoch: int
    fn: Callable[..., Any]
    args: tuple
    title: str
    on_result: Callable[[Any], None]
    on_error: Callable[[str], None] | None


class LatestRenderer(QObject):
    """Run one kind of job on ``runner``, latest request wins.

    Signals: ``busyChanged(bool)`` when the first request starts and when the last one is done.
    """

    busyChanged = Signal(bool)

    def __init__(self, runner: JobRunner, keep_overtaken: bool = False, parent: QObject | None = None):
        super().__init__(parent)
        self.runner = runner
        self.keep_overtaken = keep_overtaken
        self._serial = 0  # bumped by every request
        self._epoch = 0  # bumped by invalidate(); results of an older epoch never land
        self._job: int | None = None
        self._waiting: _Request | None = None
        runner.jobFinished.connect(self._finished)

    @property
    def busy(self) -> bool:
        """True while a request runs or waits."""
        return self._job is not None or self._waiting is not None

    def request(self, fn: Callable[..., Any], *args: Any, title: str, on_result: Callable[[Any], None],
                on_error: Callable[[str], None] | None = None) -> None:
        """Ask for ``fn(*args)`` on the worker; replaces a request that has not started yet.

        ``on_result(value)`` runs on the GUI thread unless the request was overtaken (see the
        module docstring) or invalidated; so does ``on_error(message)``.
        """
        was_busy = self.busy
        self._serial += 1
        self._waiting = _Request(self._serial, self._epoch, fn, args, title, on_result, on_error)
        if self._job is None:
            self._submit()
        if not was_busy:
            self.busyChanged.emit(True)

    def invalidate(self) -> None:
        """Forget the waiting request and drop the result of the running one."""
        was_busy = self.busy
        self._epoch += 1
        self._waiting = None
        if was_busy and not self.busy:
            self.busyChanged.emit(False)

    def _submit(self) -> None:
        request, self._waiting = self._waiting, None
        self._job = self.runner.submit(request.fn, *request.args, title=request.title,
                                       on_result=lambda value: self._landed(request, value),
                                       on_error=lambda message: self._failed(request, message))

    def _current(self, request: _Request) -> bool:
        return request.epoch == self._epoch and (self.keep_overtaken or request.serial == self._serial)

    def _landed(self, request: _Request, value: Any) -> None:
        if self._current(request):
            request.on_result(value)

    def _failed(self, request: _Request, message: str) -> None:
        if request.on_error is not None and self._current(request):
            request.on_error(message)

    def _finished(self, job_id: int) -> None:
        if job_id != self._job:
            return
        self._job = None
        if self._waiting is not None:
            self._submit()
        else:
            self.busyChanged.emit(False)
