"""The paint layer on its own: strokes, undo, eraser, masks that follow the image size, mouse input on a view."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QEvent, QPointF, Qt
from PySide6.QtGui import QMouseEvent, QUndoStack
from PySide6.QtWidgets import QGraphicsScene, QGraphicsView

from gui.paint_layer import PaintLayer
from tests.gui.helpers import send_mouse


@pytest.fixture
def view(qtbot):
    view = QGraphicsView()
    view.setScene(QGraphicsScene(view))  # owned by the view, not collected with a temporary
    view.resize(300, 300)
    view.show()
    qtbot.waitExposed(view)
    yield view
    view.close()


@pytest.fixture
def layer(view):
    layer = PaintLayer(QUndoStack())
    layer.attach(view)
    layer.set_size(40, 30)
    view.setSceneRect(0, 0, 40, 30)
    view.resetTransform()
    view.scale(5, 5)  # 5 viewport pixels per image pixel
    view.centerOn(20, 15)
    yield layer
    layer.detach()


def test_a_stroke_is_one_undoable_step_with_round_ends(layer):
    layer.set_radius(3)
    layer.stroke([(10.5, 10.5), (20.5, 10.5)])
    mask = layer.mask
    assert mask[10, 10:21].all() and mask[7:14, 10].all() and mask[7:14, 20].all()
    assert not mask[10, 24:].any() and not mask[:6].any() and mask[10, 7] == 1 and mask[6, 6] == 0
    assert layer.undo_stack.count() == 1 and layer.undo_stack.text(0) == "Paint mask"
    layer.undo_stack.undo()
    assert not layer.has_paint()
    layer.undo_stack.redo()
    np.testing.assert_array_equal(layer.mask, mask)


def test_eraser_clear_and_set_mask(layer):
    layer.set_radius(4)
    layer.stroke([(5.5, 15.5), (35.5, 15.5)])
    layer.eraser = True
    layer.stroke([(20.5, 5.5), (20.5, 25.5)])
    assert not layer.mask[15, 17:24].any() and layer.mask[15, 10] == 1
    assert layer.undo_stack.text(1) == "Erase mask"
    layer.clear()
    assert not layer.has_paint() and layer.undo_stack.text(2) == "Clear mask"
    layer.undo_stack.undo()
    assert layer.mask[15, 10] == 1
    layer.clear()
    layer.clear()  # nothing left to clear: no empty step
    assert layer.undo_stack.count() == 3
    with pytest.raises(ValueError, match="must be 30 x 40"):
        layer.set_mask(np.ones((40, 30)))


def test_each_image_size_keeps_its_own_mask(layer):
    layer.stroke([(5.5, 5.5)])
    first = layer.mask
    layer.set_size(64, 64)
    assert layer.mask.shape == (64, 64) and not layer.has_paint()
    layer.stroke([(30.5, 30.5)])
    layer.undo_stack.undo()  # undoes the 64 px stroke
    assert not layer.has_paint()
    layer.set_size(40, 30)
    np.testing.assert_array_equal(layer.mask, first)
    layer.undo_stack.undo()  # a stroke on the mask shown
    assert not layer.has_paint()


def send(view, kind, x, y):
    """A left-button event at image point ``(x, y)``."""
    pos = view.mapFromScene(QPointF(x, y))
    return send_mouse(view, kind, QPointF(pos.x() + 0.5, pos.y() + 0.5))


def test_the_mouse_paints_only_while_active_and_the_middle_button_passes(view, layer):
    layer.set_radius(2)
    send(view, QEvent.Type.MouseButtonPress, 10, 10)
    send(view, QEvent.Type.MouseButtonRelease, 10, 10)
    assert not layer.has_paint()
    layer.set_active(True)
    press = send(view, QEvent.Type.MouseButtonPress, 10, 10)
    send(view, QEvent.Type.MouseMove, 30, 10)
    send(view, QEvent.Type.MouseButtonRelease, 30, 10)
    mask = layer.mask
    assert press.isAccepted() and mask[10, 10:30].all() and not mask[20:].any()
    assert layer.undo_stack.count() == 1
    pos = view.mapFromScene(QPointF(20, 20))
    middle = QMouseEvent(QEvent.Type.MouseButtonPress, QPointF(pos), view.viewport().mapToGlobal(QPointF(pos)),
                         Qt.MouseButton.MiddleButton, Qt.MouseButton.MiddleButton, Qt.KeyboardModifier.NoModifier)
    assert not layer.eventFilter(view.viewport(), middle)
    layer.detach()
    layer.set_active(True)
    send(view, QEvent.Type.MouseButtonPress, 20, 20)
    send(view, QEvent.Type.MouseButtonRelease, 20, 20)
    assert layer.scene() is None and not layer.mask[20].any()
