"""The job runner: a real multi-step computation on the worker thread, reported back live."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from PySide6.QtCore import QTimer

from engine.errors import ImageError
from engine.jobs import Job
from gui.jobs import JobCancelled, JobFailed, JobProgress, JobResult, JobRunner
from tests.conftest import gradient_rgb


def blur(rgb: np.ndarray, steps: int, progress=None, cancel=None, done: list | None = None) -> np.ndarray:
    """Diffuse ``rgb`` by ``steps`` rounds of a 5-point average, reporting each round."""
    job = Job(steps, progress, cancel)
    out = rgb.astype(np.float32) / 255.0
    for step in range(1, steps + 1):
        out = (out + np.roll(out, 1, 0) + np.roll(out, -1, 0) + np.roll(out, 1, 1) + np.roll(out, -1, 1)) / 5.0
        job.step(step, f"round {step}", preview=out)
        if done is not None:
            done.append(step)
    return (out * 255.0 + 0.5).astype(np.uint8)


@pytest.fixture
def runner(qapp):
    r = JobRunner()
    yield r
    assert r.shutdown()


def test_result_arrives_with_progress_and_preview(qtbot, runner: JobRunner):
    rgb = gradient_rgb(64, 64)
    results, previews, progress = [], [], []
    runner.jobProgress.connect(progress.append)
    with qtbot.waitSignal(runner.jobResult, timeout=10000) as blocker:
        job_id = runner.submit(blur, rgb, 12, title="Blur", on_result=results.append, on_preview=previews.append)
    message = blocker.args[0]
    assert isinstance(message, JobResult) and message.job_id == job_id and message.title == "Blur"
    np.testing.assert_array_equal(results[0], blur(rgb, 12))
    assert progress[-1] == JobProgress(job_id, 12, 12, "round 12")  # the last step always gets through
    assert previews and previews[-1].dtype == np.uint8 and previews[-1].shape == (64, 64, 3)
    qtbot.waitUntil(lambda: not runner.busy)


def test_jobs_run_in_order_on_one_worker_thread(qtbot, runner: JobRunner):
    threads, order = [], []

    def record(tag: str, progress=None, cancel=None) -> str:
        threads.append(threading.get_ident())
        time.sleep(0.01)
        return tag

    for tag in "abc":
        runner.submit(record, tag, on_result=order.append)
    qtbot.waitUntil(lambda: not runner.busy, timeout=5000)
    assert order == ["a", "b", "c"]
    assert len(set(threads)) == 1 and threads[0] != threading.get_ident()


def test_cancel_mid_way_stops_within_one_step_and_loop_keeps_running(qtbot, runner: JobRunner):
    ticks, done, results = [], [], []
    timer = QTimer(interval=5)
    timer.timeout.connect(lambda: ticks.append(time.monotonic()))
    timer.start()
    rgb = gradient_rgb(384, 384)
    job_id = runner.submit(blur, rgb, 100000, title="Long blur", on_result=results.append, done=done)
    # The GUI thread's timer keeps firing while the worker computes:
    qtbot.waitUntil(lambda: len(done) >= 5 and len(ticks) >= 5, timeout=10000)
    assert runner.running_job == job_id
    at_cancel = len(done)
    with qtbot.waitSignal(runner.jobCancelled, timeout=5000) as blocker:
        runner.cancel()
    timer.stop()
    assert blocker.args[0] == JobCancelled(job_id, "Long blur")
    assert len(done) <= at_cancel + 1  # the worker raised Cancelled at the next step
    assert results == [] and not runner.busy


def test_error_in_job_becomes_a_failure_message(qtbot, runner: JobRunner):
    def broken(progress=None, cancel=None):
        raise ImageError("photo.png: not an image file")

    errors = []
    with qtbot.waitSignal(runner.jobFailed, timeout=5000) as blocker:
        runner.submit(broken, title="Open photo.png", on_error=errors.append)
    message = blocker.args[0]
    assert isinstance(message, JobFailed) and message.message == "photo.png: not an image file"
    assert errors == ["photo.png: not an image file"]


def test_unexpected_exception_and_failing_result_handler_are_reported(qtbot, runner: JobRunner):
    def bug(progress=None, cancel=None):
        return 1 // 0

    with qtbot.waitSignal(runner.jobFailed, timeout=5000) as blocker:
        runner.submit(bug)
    assert blocker.args[0].message.startswith("ZeroDivisionError")

    def refuse(value):
        raise ImageError(f"refused {value}")

    with qtbot.waitSignal(runner.jobFailed, timeout=5000) as blocker:
        runner.submit(lambda progress=None, cancel=None: 7, on_result=refuse)
    assert blocker.args[0].message == "refused 7"


def test_queued_job_cancelled_before_it_starts_never_runs(qtbot, runner: JobRunner):
    gate, ran = threading.Event(), []

    def wait_for_gate(progress=None, cancel=None):
        gate.wait(5)

    runner.submit(wait_for_gate, title="first")
    second = runner.submit(lambda progress=None, cancel=None: ran.append(1), title="second")
    runner.cancel(second)
    with qtbot.waitSignal(runner.jobCancelled, timeout=5000) as blocker:
        gate.set()
    assert blocker.args[0].job_id == second and ran == []


def test_busy_changes_when_queue_fills_and_drains(qtbot, runner: JobRunner):
    states = []
    runner.busyChanged.connect(states.append)
    runner.submit(lambda progress=None, cancel=None: None)
    runner.submit(lambda progress=None, cancel=None: None)
    assert runner.busy
    qtbot.waitUntil(lambda: not runner.busy, timeout=5000)
    assert states == [True, False]


def test_submit_after_shutdown_is_refused(qapp):
    runner = JobRunner()
    assert runner.shutdown()
    with pytest.raises(RuntimeError, match="shut down"):
        runner.submit(lambda progress=None, cancel=None: None)
