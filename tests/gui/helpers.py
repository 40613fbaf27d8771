"""Helpers that drive the window the way a user does and read back what it shows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QEvent, QPointF, Qt
from PySide6.QtGui import QImage, QMouseEvent
from PySide6.QtWidgets import QAbstractScrollArea, QApplication

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


def send_mouse(view: QAbstractScrollArea, kind: QEvent.Type, pos: QPointF, button=Qt.MouseButton.LeftButton,
               modifiers=Qt.KeyboardModifier.NoModifier) -> QMouseEvent:
    """Send ``view``'s viewport a ``button`` event at viewport point ``pos`` as Qt does (a move names no
    button, a release holds none); the event, to ask whether it was accepted."""
    held = Qt.MouseButton.NoButton if kind == QEvent.Type.MouseButtonRelease else button
    if kind == QEvent.Type.MouseMove:
        button = Qt.MouseButton.NoButton
    event = QMouseEvent(kind, pos, view.viewport().mapToGlobal(pos), button, held, modifiers)
    QApplication.sendEvent(view.viewport(), event)
    return event


def mouse(window: MainWindow, kind: QEvent.Type, fx: float, fy: float) -> None:
    """A left-button event at the image point at fractions ``(fx, fy)`` of its size, sent to the canvas."""
    send_mouse(window.canvas, kind, QPointF(*image_pixel_in_viewport(window, fx, fy)))


def drag(window: MainWindow, points: list[tuple[float, float]]) -> None:
    """Press at the first image point (fractions of its size), move through the others, release at the last."""
    mouse(window, QEvent.Type.MouseButtonPress, *points[0])
    for point in points[1:]:
        mouse(window, QEvent.Type.MouseMove, *point)
    mouse(window, QEvent.Type.MouseButtonRelease, *points[-1])
