"""The canvas through real input events: wheel zoom, pan, fit, 100 %, compare split, selection."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QEvent, QPoint, QPointF, QRect, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import QApplication

from tests.conftest import gradient_rgb
from tests.gui.helpers import grab_viewport, image_pixel_in_viewport, open_via_menu, send_mouse

RED, BLUE = (255, 0, 0), (0, 0, 255)


def wheel(canvas, pos: QPointF, notches: int) -> None:
    event = QWheelEvent(pos, canvas.viewport().mapToGlobal(pos), QPoint(0, 0), QPoint(0, 120 * notches),
                        Qt.MouseButton.NoButton, Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False)
    QApplication.sendEvent(canvas.viewport(), event)


def drag(canvas, start: QPointF, end: QPointF, button=Qt.MouseButton.LeftButton,
         modifiers=Qt.KeyboardModifier.NoModifier) -> None:
    send_mouse(canvas, QEvent.Type.MouseButtonPress, start, button, modifiers)
    for t in (0.5, 1.0):
        send_mouse(canvas, QEvent.Type.MouseMove, start + (end - start) * t, button, modifiers)
    send_mouse(canvas, QEvent.Type.MouseButtonRelease, end, button, modifiers)


@pytest.fixture
def big_photo(window, qtbot, write_image, monkeypatch):
    open_via_menu(qtbot, window, write_image("big.png", gradient_rgb(900, 1200)), monkeypatch)
    return window


def test_wheel_zooms_around_the_cursor(big_photo):
    canvas = big_photo.canvas
    big_photo.act.actual_size.trigger()
    assert canvas.zoom == 1.0 and not canvas.fit_mode
    cursor = QPointF(200, 150)
    before = canvas.viewportTransform().inverted()[0].map(cursor)
    wheel(canvas, cursor, 1)
    assert canvas.zoom == pytest.approx(2 ** (1 / 3))
    after = canvas.viewportTransform().inverted()[0].map(cursor)
    assert abs(after.x() - before.x()) < 1.0 and abs(after.y() - before.y()) < 1.0  # same image point
    wheel(canvas, cursor, -2)
    assert canvas.zoom == pytest.approx(2 ** (-1 / 3))
    assert big_photo.zoom_label.text() == f"{canvas.zoom * 100:.0f} %"


def test_fit_and_actual_size_from_the_view_menu(big_photo):
    canvas = big_photo.canvas
    big_photo.act.actual_size.trigger()
    assert canvas.zoom == 1.0
    big_photo.act.fit.trigger()
    view = canvas.viewport().rect()
    shown = canvas.image_rect()
    assert canvas.fit_mode and canvas.zoom < 1.0
    assert shown.width() <= view.width() and shown.height() <= view.height()
    assert min(view.width() - shown.width(), view.height() - shown.height()) <= 2 * 12 + 1  # fills one side
    big_photo.act.zoom_in.trigger()
    assert canvas.zoom > shown.width() / 1200 and not canvas.fit_mode
    big_photo.act.zoom_out.trigger()
    assert canvas.zoom == pytest.approx(shown.width() / 1200, rel=1e-6)


def test_fit_follows_window_resizes(big_photo, qtbot):
    canvas = big_photo.canvas
    zoom = canvas.zoom
    big_photo.resize(700, 520)
    qtbot.waitUntil(lambda: canvas.zoom < zoom)
    assert canvas.fit_mode


@pytest.mark.parametrize("how", ["middle", "space"])
def test_pan_moves_the_image(big_photo, qtbot, how):
    canvas = big_photo.canvas
    canvas.set_zoom(2.0)
    start = canvas.image_rect().topLeft()
    canvas.setFocus()
    if how == "space":
        qtbot.keyPress(canvas, Qt.Key.Key_Space)
        drag(canvas, QPointF(300, 300), QPointF(240, 260))
        qtbot.keyRelease(canvas, Qt.Key.Key_Space)
    else:
        drag(canvas, QPointF(300, 300), QPointF(240, 260), Qt.MouseButton.MiddleButton)
    moved = canvas.image_rect().topLeft() - start
    assert (round(moved.x()), round(moved.y())) == (-60, -40)
    assert canvas.selection() is None  # panning never selects


def two_colour_photo(window, qtbot, write_image, monkeypatch):
    """Open a picture that is red on the left half and blue on the right, then flip it."""
    rgb = np.zeros((120, 160, 3), np.uint8)
    rgb[:, :80] = RED
    rgb[:, 80:] = BLUE
    open_via_menu(qtbot, window, write_image("halves.png", rgb), monkeypatch)
    window.act.flip_horizontal.trigger()  # after: blue | red; before: red | blue


def colours_at(window, fractions: list[float], fy: float = 0.8) -> list[tuple[int, int, int]]:
    shot = grab_viewport(window)
    found = []
    for fx in fractions:
        x, y = image_pixel_in_viewport(window, fx, fy)
        found.append(tuple(int(v) for v in shot[y, x]))
    return found


def test_compare_split_paints_before_left_and_after_right(window, qtbot, write_image, monkeypatch):
    two_colour_photo(window, qtbot, write_image, monkeypatch)
    canvas = window.canvas
    assert canvas.compare and window.act.compare.isChecked()  # an edit shows the compare
    canvas.set_split(0.25)
    assert colours_at(window, [0.1, 0.4, 0.6, 0.9]) == [RED, BLUE, RED, RED]
    canvas.set_split(0.75)
    assert colours_at(window, [0.1, 0.4, 0.6, 0.9]) == [RED, RED, BLUE, RED]
    window.act.compare.trigger()  # off: the after image only
    assert not canvas.compare
    assert colours_at(window, [0.1, 0.4, 0.6, 0.9]) == [BLUE, BLUE, RED, RED]


def test_dragging_the_divider_moves_the_split(window, qtbot, write_image, monkeypatch):
    two_colour_photo(window, qtbot, write_image, monkeypatch)
    canvas = window.canvas
    rect = canvas.image_rect()
    start = QPointF(rect.left() + 0.5 * rect.width(), rect.top() + 0.3 * rect.height())
    drag(canvas, start, QPointF(rect.left() + 0.2 * rect.width(), start.y()))
    assert canvas.split == pytest.approx(0.2, abs=0.01)
    assert canvas.selection() is None  # the divider drag is not a selection
    assert colours_at(window, [0.1, 0.3]) == [RED, BLUE]


def test_holding_backslash_shows_the_before_image(window, qtbot, write_image, monkeypatch):
    two_colour_photo(window, qtbot, write_image, monkeypatch)
    canvas = window.canvas
    window.act.compare.trigger()
    canvas.setFocus()
    assert colours_at(window, [0.1, 0.9]) == [BLUE, RED]
    qtbot.keyPress(canvas, Qt.Key.Key_Backslash)
    assert canvas.showing_before
    assert colours_at(window, [0.1, 0.9]) == [RED, BLUE]
    qtbot.keyRelease(canvas, Qt.Key.Key_Backslash)
    assert not canvas.showing_before
    assert colours_at(window, [0.1, 0.9]) == [BLUE, RED]


def test_drag_selects_a_rectangle_and_square_lock_makes_it_square(big_photo):
    canvas = big_photo.canvas
    big_photo.act.actual_size.trigger()
    origin = canvas.image_rect().topLeft()
    drag(canvas, origin + QPointF(10, 20), origin + QPointF(110, 80))
    assert canvas.selection() == QRect(10, 20, 100, 60)
    assert big_photo.act.crop.isEnabled()

    big_photo.act.square_lock.trigger()
    drag(canvas, origin + QPointF(50, 50), origin + QPointF(170, 90))
    assert canvas.selection() == QRect(50, 50, 120, 120)
    big_photo.act.square_lock.trigger()
    drag(canvas, origin + QPointF(50, 50), origin + QPointF(90, 170), modifiers=Qt.KeyboardModifier.ShiftModifier)
    assert canvas.selection() == QRect(50, 50, 120, 120)  # Shift squares one drag

    send_mouse(canvas, QEvent.Type.MouseButtonPress, origin + QPointF(300, 300))
    send_mouse(canvas, QEvent.Type.MouseButtonRelease, origin + QPointF(300, 300))
    assert canvas.selection() is None and not big_photo.act.crop.isEnabled()


def test_selection_is_clamped_to_the_image(big_photo):
    canvas = big_photo.canvas
    big_photo.act.fit.trigger()
    rect = canvas.image_rect()
    drag(canvas, rect.bottomRight() - QPointF(20, 20), rect.bottomRight() + QPointF(40, 40))
    selection = canvas.selection()
    assert selection.right() == 1199 and selection.bottom() == 899
    big_photo.act.select_all.trigger()
    assert canvas.selection() == QRect(0, 0, 1200, 900)
    big_photo.act.deselect.trigger()
    assert canvas.selection() is None
