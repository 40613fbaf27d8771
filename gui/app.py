"""Start the GANvas window: ``run(args)`` is what ``main.py`` calls without a subcommand.

``--screenshot PNG`` runs the same start-up as a user gets (device, ``--model`` with its
first sample, ``--open`` image), waits until every start-up job has finished and the event
loop has gone quiet, saves ``window.grab()`` and exits, so a CI machine without a
display can check the window (the ``offscreen`` platform is chosen automatically).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication

from engine import __version__
from gui.resources import icon
from gui.settings import APPLICATION, ORGANISATION, Settings
from gui.theme import apply_theme

if TYPE_CHECKING:
    from gui.main_window import MainWindow

log = logging.getLogger(__name__)

DEFAULT_MODEL = "house-gan"
SETTLE_TICKS = 3  # consecutive idle polls before the window counts as settled
POLL_MS = 50
SCREENSHOT_TIMEOUT_S = float(os.environ.get("GANVAS_SCREENSHOT_TIMEOUT", "300"))


def _has_display() -> bool:
    if sys.platform.startswith(("linux", "freebsd", "openbsd", "netbsd")):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True  # Windows and macOS always have a window server


def _default_model() -> str | None:
    """The shipped house generator, so the app opens on a model even offline."""
    from engine.models.catalog import available

    return next((e.id for e in available() if e.id == DEFAULT_MODEL), None)


def create_app() -> QApplication:
    """The QApplication (reused if one exists), named and themed."""
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setOrganizationName(ORGANISATION)
    app.setApplicationName(APPLICATION)
    app.setApplicationVersion(__version__)
    app.setWindowIcon(icon("ganvas"))
    apply_theme(app)
    return app


def run(args: argparse.Namespace) -> int:
    """Open the main window and run the event loop; returns the process exit code."""
    logging.basicConfig(
        level=logging.DEBUG if getattr(args, "verbose", False) else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    screenshot = getattr(args, "screenshot", None)
    if not os.environ.get("QT_QPA_PLATFORM") and not _has_display():
        if not screenshot:
            print(
                "error: no display found (DISPLAY and WAYLAND_DISPLAY are unset). To check the window "
                "on a machine without a screen, run: python main.py --screenshot window.png",
                file=sys.stderr,
            )
            return 1
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
    app = create_app()
    from gui.main_window import MainWindow  # after the platform is chosen

    window = MainWindow(Settings())
    errors: list[str] = []
    window.errorShown.connect(lambda title, message: errors.append(f"{title}: {message}"))
    window.start_device_job(getattr(args, "device", None))
    model = getattr(args, "model", None) or _default_model()
    if model:
        window.model.load(model)  # a runner job like the others, so --screenshot waits for it
    if getattr(args, "open", None):
        window.open_path(args.open)
    window.show()
    if screenshot:
        return _screenshot(app, window, Path(screenshot), errors)
    return app.exec()


def _screenshot(app: QApplication, window: MainWindow, path: Path, errors: list[str]) -> int:
    """Wait for start-up jobs and a quiet event loop, save ``window.grab()`` to ``path``, quit."""
    state = {"idle_ticks": 0, "elapsed_ms": 0, "code": 0}
    timer = QTimer()

    def poll() -> None:
        state["elapsed_ms"] += POLL_MS
        timed_out = state["elapsed_ms"] > SCREENSHOT_TIMEOUT_S * 1000
        state["idle_ticks"] = 0 if window.runner.busy else state["idle_ticks"] + 1
        if state["idle_ticks"] < SETTLE_TICKS and not timed_out:
            return
        timer.stop()
        if timed_out:
            errors.append(f"start-up jobs still running after {SCREENSHOT_TIMEOUT_S:.0f} s")
        path.parent.mkdir(parents=True, exist_ok=True)
        if not window.grab().save(str(path)):
            errors.append(f"{path}: the screenshot could not be written")
        for error in errors:
            print(f"error: {error}", file=sys.stderr)
        state["code"] = 1 if errors else 0
        window.confirm_discard = lambda: True  # a generated sample counts as unsaved; no one is there to ask
        window.close()
        window.runner.shutdown()  # in case close() was refused: never leave the worker running
        app.exit(state["code"])

    timer.timeout.connect(poll)
    timer.start(POLL_MS)
    app.exec()
    return state["code"]
