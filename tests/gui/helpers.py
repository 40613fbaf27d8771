"""Helpers that drive the window the way a user does and read back what it shows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QPointF
from PySide6.QtGui import QImage

from gui.convert import qimage_to_array
from gui.main_window import MainWindow


def open_via_menu(qtbot, window: MainWindow, path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """File > Open with the file dialog answered by ``path``; waits for the image to load."""
    monkeypatch.setattr(window, "choose_open_path", lambda: path)
    with qtbot.waitSignal(window.imageOpened, timeout=10000):
        window.act.open.trigger()
    qtbot.waitUntil(lambda: not window.runner.busy, timeout=10000)


def grab_viewport(window: MainWindow) -> np.ndarray:
    """What the canvas shows now, as ``(H, W, 3)`` uint8."""
    window.canvas.viewport().repaint()
    image = window.canvas.viewport().grab().toImage().convertToFormat(QImage.Format.Format_RGB888)
    return qimage_to_array(image)


def image_pixel_in_viewport(window: MainWindow, fx: float, fy: float) -> tuple[int, int]:
    """The viewport pixel showing the image point at fractions ``(fx, fy)`` of its size."""
    rect = window.canvas.image_rect()
    point = QPointF(rect.left() + fx * rect.width(), rect.top() + fy * rect.height())
    return int(point.x()), int(point.y())
