"""Event-loop stalls of the GUI while an inversion runs on the worker thread.

The real main window (offscreen Qt) loads a model, opens a photo-sized picture (a held-out
sample of the model, enlarged and set in a wider grey frame, so every preview is pasted into a
768 x 512 photo and drawn on the canvas), and starts a run from the Invert panel. A ``QTimer``
ticks every 10 ms on the GUI thread for the whole run; a stall is the gap between two ticks
(10 ms when nothing blocks). An idle stretch of the same length, before the run, is the baseline.

Usage: .venv/bin/python bench/gui_responsiveness.py [--model house-gan] [--threads 1]
       [--steps 300] [--pti-steps 200]; writes bench/results/gui_responsiveness.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from PySide6.QtCore import Qt, QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "gui_responsiveness.md"
TICK_MS = 10


def wait(app: QApplication, condition, timeout: float) -> None:
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            raise TimeoutError("the window did not get there in time")
        app.processEvents()
        time.sleep(0.002)


def photo(G: torch.nn.Module, seed: int = 10_001) -> np.ndarray:
    """A 768 x 512 picture: a sample from a seed no test or search used, 512 px, in a grey frame."""
    from engine.ops.generate import sample

    face = cv2.resize(sample(G, seed).image, (512, 512), interpolation=cv2.INTER_CUBIC)
    grey = np.full((512, 128, 3), 90, np.uint8)
    return np.ascontiguousarray(np.concatenate([grey, face, grey], axis=1))


def ticks_while(app: QApplication, busy, seconds: float | None = None) -> np.ndarray:
    """Gaps (ms) between 10 ms timer ticks while ``busy()`` (or for ``seconds``)."""
    stamps: list[float] = []
    timer = QTimer()
    timer.setTimerType(Qt.TimerType.PreciseTimer)
    timer.timeout.connect(lambda: stamps.append(time.perf_counter()))
    timer.start(TICK_MS)
    start = time.perf_counter()
    while (busy() if seconds is None else time.perf_counter() - start < seconds):
        app.processEvents()
        time.sleep(0.001)
    timer.stop()
    return np.diff(np.array(stamps)) * 1000.0


def run_mode(app: QApplication, window, mode: str, steps: int, pti_steps: int, task: str = "Invert") -> dict:
    """One run from the panel (``steps`` 0: the engine's choice); the tick gaps while it ran."""
    panel = window.invert_panel
    panel.set_mode(mode)
    panel.set_task(task)
    panel.steps_spin.setValue(steps)
    panel.tune_spin.setValue(pti_steps)
    previews, progress = [], []
    on_preview = window.runner.jobPreview.connect(lambda m: previews.append(time.perf_counter()))
    on_progress = window.runner.jobProgress.connect(lambda m: progress.append(time.perf_counter()))
    landed = []
    panel.finished.connect(landed.append)
    start = time.perf_counter()
    panel.start()
    gaps = ticks_while(app, lambda: not landed)
    seconds = time.perf_counter() - start
    window.runner.jobPreview.disconnect(on_preview)
    window.runner.jobProgress.disconnect(on_progress)
    panel.finished.disconnect()
    wait(app, lambda: not window.runner.busy, 30)
    done = landed[0]
    return {"mode": mode, "task": task, "steps": done.result.steps, "seconds": seconds, "gaps": gaps,
            "previews": len(previews), "progress": len(progress), "psnr": done.result.psnr,
            "samples": 1 if done.result.candidates is None else len(done.result.candidates)}


def row(label: str, gaps: np.ndarray, extra: dict | None = None) -> str:
    extra = extra or {}
    over = int((gaps > 50).sum())
    return (f"| {label} | {extra.get('steps', '—')} | {extra.get('seconds', 0):.1f} | {len(gaps)} | "
            f"{np.median(gaps):.1f} | {np.percentile(gaps, 95):.1f} | {np.percentile(gaps, 99):.1f} | "
            f"{gaps.max():.1f} | {over} | {extra.get('previews', '—')} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="house-gan")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (the machine may be shared)")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--pti-steps", type=int, default=200)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    from engine.images import save_image
    from engine.models.catalog import resolve
    from engine.models.checkpoint import load_generator
    from gui.main_window import MainWindow
    from gui.settings import Settings, open_settings
    from gui.theme import apply_theme

    app = QApplication.instance() or QApplication([])
    apply_theme(app)
    folder = Path(tempfile.mkdtemp(prefix="ganvas-bench-"))
    window = MainWindow(Settings(open_settings(folder / "settings.ini")))
    window.confirm_discard = lambda: True
    window.resize(1280, 800)
    window.show()
    window.model.load(resolve(args.model))
    wait(app, lambda: window.model.info is not None and not window.runner.busy, 120)
    picture = folder / "photo.png"
    save_image(picture, photo(load_generator(resolve(args.model))))
    window.open_path(picture)
    wait(app, lambda: window.document.image is not None and window.document.image.width == 768
         and not window.runner.busy, 60)
    window.invert_dock.raise_()
    app.processEvents()

    idle = ticks_while(app, lambda: True, seconds=3.0)
    runs = [run_mode(app, window, "w+", args.steps, args.pti_steps),
            run_mode(app, window, "pti", args.steps, args.pti_steps),
            run_mode(app, window, "w+", 0, args.pti_steps, "Super-resolve ×4")]
    window.close()

    machine = f"{platform.machine()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}, torch {torch.__version__}"
    lines = [
        "# GUI responsiveness during an inversion",
        "",
        "The main window (offscreen Qt) runs an inversion from the Invert panel on its worker thread while a",
        f"`QTimer` ticks every {TICK_MS} ms on the GUI thread; a gap between two ticks longer than {TICK_MS} ms is",
        "the event loop stalling. The picture is 768 × 512 (a held-out sample enlarged to 512 px in a grey frame),",
        "so each preview is pasted into the photo on the worker and drawn on the canvas at that size.",
        f"Model {args.model}, {args.threads} torch thread(s), {machine}. Written by `bench/gui_responsiveness.py`.",
        "",
        "| run | steps | s | ticks | p50 gap ms | p95 gap ms | p99 gap ms | max gap ms | gaps > 50 ms | previews shown |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        row("idle (baseline, 3 s)", idle, {"seconds": 3.0}),
    ]
    for r in runs:
        what = "inversion" if r["task"] == "Invert" else f"{r['task'].lower()}, mean of {r['samples']}"
        lines.append(row(f"{r['mode'].upper()} {what} ({r['psnr']:.1f} dB)", r["gaps"], r))
    text = "\n".join(lines) + "\n"
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(text, encoding="utf-8")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
