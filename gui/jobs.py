"""The job runner: one worker thread runs engine functions, typed messages come back.

Every long operation in the engine has the shape ``fn(*args, progress=, cancel=)``
(``engine/jobs.py``). :meth:`JobRunner.submit` queues such a call; a single worker
thread runs the queue in order, so it alone touches the compute device, and a model
loaded by one job is there for the next. Whatever the worker has to say travels to
the GUI thread as one of the frozen message classes below, through queued signals:
the GUI thread never waits on the worker and the worker never touches a widget.

Progress and previews are rate-limited in the worker (a job may step thousands of
times a second; the screen needs ~30 updates), but the last step always gets through.
"""

from __future__ import annotations

import itertools
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
from PySide6.QtCore import QObject, QThread, Signal, Slot

from engine.errors import Cancelled, GanvasError
from engine.jobs import CancelToken
from gui.convert import preview_pixels

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class JobStarted:
    job_id: int
    title: str


@dataclass(frozen=True)
class JobProgress:
    job_id: int
    step: int
    total: int
    message: str

    @property
    def fraction(self) -> float:
        return min(max(self.step / self.total, 0.0), 1.0) if self.total > 0 else 0.0


@dataclass(frozen=True)
class JobPreview:
    job_id: int
    image: np.ndarray  # (H, W, 3) uint8, a private copy


@dataclass(frozen=True)
class JobResult:
    job_id: int
    title: str
    value: Any


@dataclass(frozen=True)
class JobFailed:
    job_id: int
    title: str
    message: str
    error: BaseException


@dataclass(frozen=True)
class JobCancelled:
    job_id: int
    title: str


JobMessage = JobStarted | JobProgress | JobPreview | JobResult | JobFailed | JobCancelled


@dataclass
class _Job:
    job_id: int
    title: str
    fn: Callable[..., Any]
    args: tuple
    kwargs: dict
    token: CancelToken = field(default_factory=CancelToken)
    on_result: Callable[[Any], None] | None = None
    on_preview: Callable[[np.ndarray], None] | None = None
    on_error: Callable[[str], None] | None = None


class _Reporter:
    """The ``progress`` callback handed to a job: turns calls into rate-limited messages."""

    interval = 1 / 30  # seconds between two messages of the same kind

    def __init__(self, job_id: int, emit: Callable[[JobMessage], None]):
        self.job_id = job_id
        self.emit = emit
        self.last_progress = self.last_preview = float("-inf")

    def __call__(self, step: int, total: int, message: str = "", preview: Any | None = None) -> None:
        now = time.monotonic()
        final = step >= total
        if final or now - self.last_progress >= self.interval:
            self.last_progress = now
            self.emit(JobProgress(self.job_id, int(step), int(total), str(message)))
        if preview is not None and (final or now - self.last_preview >= self.interval):
            pixels = preview_pixels(preview)
            if pixels is not None:
                self.last_preview = now
                self.emit(JobPreview(self.job_id, pixels))


class _Worker(QObject):
    """Lives on the worker thread; runs one job at a time, in submission order."""

    message = Signal(object)  # JobMessage

    @Slot(object)
    def run(self, job: _Job) -> None:
        if job.token.cancelled:  # cancelled while still queued
            self.message.emit(JobCancelled(job.job_id, job.title))
            return
        self.message.emit(JobStarted(job.job_id, job.title))
        reporter = _Reporter(job.job_id, self.message.emit)
        try:
            value = job.fn(*job.args, progress=reporter, cancel=job.token, **job.kwargs)
        except Cancelled:
            self.message.emit(JobCancelled(job.job_id, job.title))
        except GanvasError as exc:
            self.message.emit(JobFailed(job.job_id, job.title, str(exc), exc))
        except Exception as exc:  # a bug or an out-of-memory: show it, keep the app alive
            log.exception("job %d (%s) failed", job.job_id, job.title)
            self.message.emit(JobFailed(job.job_id, job.title, f"{type(exc).__name__}: {exc}", exc))
        else:
            # A job that finished after the user pressed Cancel still counts as cancelled:
            # the user expects the document to stay as it was.
            if job.token.cancelled:
                self.message.emit(JobCancelled(job.job_id, job.title))
            else:
                self.message.emit(JobResult(job.job_id, job.title, value))


class JobRunner(QObject):
    """Queue engine calls on one worker thread and report back through typed signals.

    Each signal carries one message object: ``jobStarted(JobStarted)``,
    ``jobProgress(JobProgress)``, ``jobPreview(JobPreview)``, ``jobResult(JobResult)``,
    ``jobFailed(JobFailed)``, ``jobCancelled(JobCancelled)``; then ``jobFinished(job_id)``
    after any of the last three. ``busyChanged(bool)`` flips when the queue fills or drains.
    """

    jobStarted = Signal(object)
    jobProgress = Signal(object)
    jobPreview = Signal(object)
    jobResult = Signal(object)
    jobFailed = Signal(object)
    jobCancelled = Signal(object)
    jobFinished = Signal(int)
    busyChanged = Signal(bool)
    _dispatch = Signal(object)

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._ids = itertools.count(1)
        self._jobs: dict[int, _Job] = {}
        self._running: int | None = None
        # The thread has no Qt parent: it must outlive nothing and be stopped by shutdown(),
        # because Qt aborts the process if a running QThread is destroyed.
        self._thread = QThread()
        self._thread.setObjectName("ganvas-worker")
        self._worker = _Worker()
        self._worker.moveToThread(self._thread)
        self._dispatch.connect(self._worker.run)
        self._worker.message.connect(self._receive)
        self._thread.start()

    # Submitting and cancelling ------------------------------------------------------

    def submit(
        self,
        fn: Callable[..., Any],
        *args: Any,
        title: str = "",
        on_result: Callable[[Any], None] | None = None,
        on_preview: Callable[[np.ndarray], None] | None = None,
        on_error: Callable[[str], None] | None = None,
        **kwargs: Any,
    ) -> int:
        """Queue ``fn(*args, progress=..., cancel=..., **kwargs)``; return its job id.

        The callbacks run on the GUI thread: ``on_result(value)`` when ``fn`` returns,
        ``on_preview(pixels)`` with ``(H, W, 3)`` uint8 for each preview it reports,
        ``on_error(message)`` when it raises. An exception raised by ``on_result`` turns
        the job into a failure.
        """
        if not self._thread.isRunning():
            raise RuntimeError("the job runner has been shut down")
        job = _Job(next(self._ids), title or getattr(fn, "__name__", "job"), fn, args, kwargs)
        job.on_result, job.on_preview, job.on_error = on_result, on_preview, on_error
        was_busy = self.busy
        self._jobs[job.job_id] = job
        self._dispatch.emit(job)
        if not was_busy:
            self.busyChanged.emit(True)
        return job.job_id

    def cancel(self, job_id: int | None = None) -> None:
        """Cancel one job; ``None`` means the running one (or the next to run)."""
        if job_id is None:
            job_id = self._running if self._running is not None else min(self._jobs, default=None)
        job = self._jobs.get(job_id) if job_id is not None else None
        if job is not None:
            job.token.cancel()

    def cancel_all(self) -> None:
        for job in self._jobs.values():
            job.token.cancel()

    def shutdown(self, timeout_ms: int = 30000) -> bool:
        """Cancel everything and stop the worker thread; True if it stopped in time."""
        self.cancel_all()
        self._thread.quit()
        return self._thread.wait(timeout_ms)

    # State --------------------------------------------------------------------------

    @property
    def busy(self) -> bool:
        """True while any job is queued or running."""
        return bool(self._jobs)

    @property
    def running_job(self) -> int | None:
        return self._running

    def pending_jobs(self) -> list[int]:
        return sorted(self._jobs)

    def title(self, job_id: int) -> str:
        job = self._jobs.get(job_id)
        return job.title if job is not None else ""

    # Messages from the worker (GUI thread) ------------------------------------------

    @Slot(object)
    def _receive(self, message: JobMessage) -> None:
        job = self._jobs.get(message.job_id)
        if job is None:
            return
        if isinstance(message, JobStarted):
            self._running = job.job_id
            self.jobStarted.emit(message)
        elif isinstance(message, JobProgress):
            self.jobProgress.emit(message)
        elif isinstance(message, JobPreview):
            if job.on_preview is not None:
                job.on_preview(message.image)
            self.jobPreview.emit(message)
        else:
            self._finish(job, message)

    def _finish(self, job: _Job, message: JobResult | JobFailed | JobCancelled) -> None:
        del self._jobs[job.job_id]
        if self._running == job.job_id:
            self._running = None
        if isinstance(message, JobResult) and job.on_result is not None:
            try:
                job.on_result(message.value)
            except Exception as exc:  # e.g. a result the document refuses: a failure, shown
                log.exception("job %d (%s): applying the result failed", job.job_id, job.title)
                text = str(exc) if isinstance(exc, GanvasError) else f"{type(exc).__name__}: {exc}"
                message = JobFailed(job.job_id, job.title, text, exc)
        if isinstance(message, JobResult):
            self.jobResult.emit(message)
        elif isinstance(message, JobFailed):
            if job.on_error is not None:
                job.on_error(message.message)
            self.jobFailed.emit(message)
        else:
            self.jobCancelled.emit(message)
        self.jobFinished.emit(job.job_id)
        if not self._jobs:
            self.busyChanged.emit(False)
