import threading

import pytest

from engine.errors import Cancelled
from engine.jobs import CancelToken, Job


def count_to(n, progress=None, cancel=None, out=None):
    job = Job(n, progress, cancel)
    for i in range(1, n + 1):
        job.step(i, f"step {i}", preview=i)
        out.append(i)
    return out


def test_progress_reports_every_step():
    seen = []
    count_to(3, progress=lambda s, t, m, p=None: seen.append((s, t, m, p)), out=[])
    assert seen == [(1, 3, "step 1", 1), (2, 3, "step 2", 2), (3, 3, "step 3", 3)]


def test_cancel_stops_within_one_step():
    token, done = CancelToken(), []

    def progress(step, total, message, preview=None):
        if step == 2:
            token.cancel()

    with pytest.raises(Cancelled):
        count_to(10, progress, token, done)
    assert done == [1, 2]


def test_cancel_from_another_thread():
    token, started = CancelToken(), threading.Event()
    errors = []

    def work():
        job = Job(10**9, None, token)
        started.set()
        try:
            i = 0
            while True:
                i += 1
                job.step(i)
        except Cancelled as exc:
            errors.append(exc)

    worker = threading.Thread(target=work)
    worker.start()
    started.wait(5)
    token.cancel()
    worker.join(5)
    assert not worker.is_alive() and len(errors) == 1
