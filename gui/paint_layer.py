"""Paint layers: items drawn over the canvas image that the mouse edits while their tool is on.

:class:`CanvasLayer` is the shared part: a ``QGraphicsObject`` in scene coordinates (one unit
per image pixel, as :class:`~gui.canvas_item.ImageItem`), which, once attached to a canvas,
filters the viewport's mouse events while :attr:`~CanvasLayer.active` and leaves them to the
canvas otherwise (the middle button always pans).

:class:`PaintLayer` holds a mask as an array the size of the image (``(H, W)`` ``uint8``,
1 = painted) and shows it as a translucent overlay. A stroke (press, drag, release) is one
undoable step on the stack it is given, stored as the changed box's pixels before and after,
so undoing a stroke on a 12 MP image costs the box, not the image. The mask follows the
image's size: each size keeps its own mask, so undoing back to an image of another size (a
crop, an inversion's result) brings that image's mask back with it. The inpainting brush uses
it; the sketch tools paint on it too.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import cv2
import numpy as np
from PySide6.QtCore import QEvent, QObject, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QImage, QMouseEvent, QPainter, QPen, QUndoCommand, QUndoStack
from PySide6.QtWidgets import QGraphicsObject, QGraphicsView, QStyleOptionGraphicsItem, QWidget

Size = tuple[int, int]  # (width, height) in image pixels
Box = tuple[int, int, int, int]  # x0, y0, x1, y1 (exclusive)
MASK_COLOUR = QColor(255, 70, 110)
MASK_OPACITY = 0.45


class CanvasLayer(QGraphicsObject):
    """An item over the canvas image that takes the left mouse button while :attr:`active`.

    Subclasses implement :meth:`press`, :meth:`drag`, :meth:`release` and :meth:`hover`,
    all in image (scene) coordinates.
    """

    def __init__(self, parent: QGraphicsObject | None = None):
        super().__init__(parent)
        self.view: QGraphicsView | None = None
        self._active = False
        self._pressed = False
        self._size: Size = (0, 0)
        self.setZValue(10)  # over the image item

    def attach(self, view: QGraphicsView) -> None:
        """Put the layer in ``view``'s scene and start filtering its viewport's mouse events."""
        self.view = view
        view.scene().addItem(self)
        view.viewport().installEventFilter(self)

    def detach(self) -> None:
        """Leave the view: stop filtering its mouse events and leave its scene."""
        if self.view is not None:
            self.view.viewport().removeEventFilter(self)
            self.view.scene().removeItem(self)
            self.view = None

    @property
    def active(self) -> bool:
        return self._active

    def set_active(self, on: bool) -> None:
        """While active, a left press on the canvas goes to this layer instead of the selection."""
        if on == self._active:
            return
        self._active = on
        self._pressed = False
        if self.view is not None:
            self.view.viewport().setCursor(Qt.CursorShape.CrossCursor if on else Qt.CursorShape.ArrowCursor)
        self.hover(None)
        self.update()

    @property
    def size(self) -> Size:
        return self._size

    def set_size(self, width: int, height: int) -> None:
        if (width, height) != self._size:
            self.prepareGeometryChange()
            self._size = (width, height)
            self.update()

    def boundingRect(self) -> QRectF:
        return QRectF(0, 0, *self._size)

    def scene_point(self, event: QMouseEvent) -> QPointF:
        return self.view.viewportTransform().inverted()[0].map(event.position())

    def view_scale(self) -> float:
        """Viewport pixels per image pixel (for marks that keep their screen size)."""
        return self.view.transform().m11() if self.view is not None else 1.0

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if not self._active or self.view is None or not self._size[0]:
            return False
        kind = event.type()
        if kind == QEvent.Type.Leave:
            self.hover(None)
            return False
        if kind not in (QEvent.Type.MouseButtonPress, QEvent.Type.MouseMove, QEvent.Type.MouseButtonRelease,
                        QEvent.Type.MouseButtonDblClick):
            return False
        if kind in (QEvent.Type.MouseButtonPress, QEvent.Type.MouseButtonDblClick):
            if event.button() != Qt.MouseButton.LeftButton:
                return False  # the middle button still pans
            self._pressed = True
            self.press(self.scene_point(event), event)
            return True
        if kind == QEvent.Type.MouseMove:
            point = self.scene_point(event)
            self.hover(point)
            if self._pressed:
                self.drag(point, event)
                return True
            return False
        if event.button() == Qt.MouseButton.LeftButton and self._pressed:
            self._pressed = False
            self.release(self.scene_point(event), event)
            return True
        return False

    def press(self, point: QPointF, event: QMouseEvent | None) -> None: ...

    def drag(self, point: QPointF, event: QMouseEvent | None) -> None: ...

    def release(self, point: QPointF, event: QMouseEvent | None) -> None: ...

    def hover(self, point: QPointF | None) -> None: ...


class PixelEdit(QUndoCommand):
    """One change of a painted map's box: ``write(pixels)`` puts the before or after pixels back.

    ``applied``: the stroke is on the map already when the command is pushed, so the first redo does nothing.
    """

    def __init__(self, write: Callable[[np.ndarray], None], before: np.ndarray, after: np.ndarray, text: str,
                 applied: bool = False):
        super().__init__(text)
        self.write, self.before, self.after = write, before, after
        self._applied = applied

    def redo(self) -> None:
        if self._applied:
            self._applied = False
            return
        self.write(self.after)

    def undo(self) -> None:
        self.write(self.before)


class PaintLayer(CanvasLayer):
    """A painted mask over the image: brush, eraser, clear; strokes undoable on ``undo_stack``.

    Signals: ``maskChanged()`` after any change of the mask shown (a stroke segment, an undo,
    a clear, a new image size).
    """

    maskChanged = Signal()

    def __init__(self, undo_stack: QUndoStack | None = None, colour: QColor = MASK_COLOUR,
                 opacity: float = MASK_OPACITY, name: str = "Mask"):
        super().__init__()
        self.undo_stack = undo_stack if undo_stack is not None else QUndoStack(self)
        self.colour, self.name = QColor(colour), name
        self.setOpacity(opacity)
        self._radius = 12.0  # image pixels
        self.eraser = False
        self._masks: dict[Size, np.ndarray] = {}
        self._rgba = np.zeros((0, 0, 4), np.uint8)  # the overlay's pixels; the QImage below views them
        self._overlay = QImage()
        self._last: QPointF | None = None
        self._snapshot: np.ndarray | None = None  # the mask when the stroke began
        self._dirty: Box | None = None  # the box the stroke changed
        self._hover: QPointF | None = None

    @property
    def radius(self) -> float:
        """The brush radius in image pixels."""
        return self._radius

    def set_radius(self, radius: float) -> None:
        self.prepareGeometryChange()  # the outline's room at the edges follows the radius
        self._radius = max(float(radius), 0.5)
        self.update()

    # The mask -----------------------------------------------------------------------

    @property
    def mask(self) -> np.ndarray:
        """``(H, W)`` ``uint8``, 1 where painted, for the current size (a copy)."""
        return self._mask().copy()

    def has_paint(self) -> bool:
        return bool(self._mask().any())

    def _mask(self, size: Size | None = None) -> np.ndarray:
        width, height = size or self.size
        if (width, height) not in self._masks:
            self._masks[(width, height)] = np.zeros((height, width), np.uint8)
        return self._masks[(width, height)]

    def set_size(self, width: int, height: int) -> None:
        """Follow the image's size; each size keeps its own mask."""
        if (width, height) == self.size:
            return
        self._end_stroke()
        super().set_size(width, height)
        self._rgba = np.zeros((height, width, 4), np.uint8)
        # The QImage views _rgba's memory (no copy), so a stroke repaints by writing the array.
        self._overlay = QImage(self._rgba.data, width, height, width * 4, QImage.Format.Format_RGBA8888) \
            if width and height else QImage()
        self._repaint_overlay((0, 0, width, height))
        self.maskChanged.emit()

    def set_mask(self, mask: np.ndarray, text: str = "Set mask") -> None:
        """Replace the mask (``(H, W)``, non-zero = painted) as one undoable step."""
        height, width = self.size[1], self.size[0]
        if mask.shape != (height, width):
            raise ValueError(f"the mask must be {height} x {width}. Got: {mask.shape}")
        new = (np.asarray(mask) > 0).astype(np.uint8)
        old = self._mask()
        if not np.array_equal(old, new):
            self.undo_stack.push(PixelEdit(partial(self.write, self.size, (0, 0, width, height)), old.copy(), new, text))

    def clear(self) -> None:
        """Erase everything, as one undoable step (nothing happens on an empty mask)."""
        if self.has_paint():
            self.set_mask(np.zeros_like(self._mask()), f"Clear {self.name.lower()}")

    def write(self, size: Size, box: Box, pixels: np.ndarray) -> None:
        """Put ``pixels`` into ``box`` of the mask of ``size`` (undo commands call this)."""
        x0, y0, x1, y1 = box
        self._mask(size)[y0:y1, x0:x1] = pixels
        if size == self.size:
            self._repaint_overlay(box)
            self.maskChanged.emit()

    def _repaint_overlay(self, box: Box) -> None:
        x0, y0, x1, y1 = box
        if x1 <= x0 or y1 <= y0:
            return
        painted = self._mask()[y0:y1, x0:x1, None]
        rgba = np.array([self.colour.red(), self.colour.green(), self.colour.blue(), 255], np.uint8)
        self._rgba[y0:y1, x0:x1] = painted * rgba
        self.update(QRectF(x0, y0, x1 - x0, y1 - y0))

    # Strokes ------------------------------------------------------------------------

    def press(self, point: QPointF, event: QMouseEvent | None) -> None:
        self._snapshot = self._mask().copy()
        self._dirty = None
        self._last = point
        self._dab(point, point)

    def drag(self, point: QPointF, event: QMouseEvent | None) -> None:
        if self._last is not None:
            self._dab(self._last, point)
            self._last = point

    def release(self, point: QPointF, event: QMouseEvent | None) -> None:
        self.drag(point, event)
        self._end_stroke()

    def stroke(self, points: list[tuple[float, float]]) -> None:
        """Paint (or erase) along ``points`` in image pixels as one undoable stroke, as a drag does."""
        self.press(QPointF(*points[0]), None)
        for x, y in points[1:]:
            self.drag(QPointF(x, y), None)
        self._end_stroke()

    def _dab(self, a: QPointF, b: QPointF) -> None:
        """Paint the segment ``a``-``b`` with round ends; grows the stroke's dirty box."""
        width, height = self.size
        r = self.radius
        x0, x1 = sorted((a.x(), b.x()))
        y0, y1 = sorted((a.y(), b.y()))
        box = (max(int(x0 - r) - 1, 0), max(int(y0 - r) - 1, 0),
               min(int(x1 + r) + 2, width), min(int(y1 + r) + 2, height))
        if box[2] <= box[0] or box[3] <= box[1]:
            return
        mask = self._mask()
        value = 0 if self.eraser else 1
        # Pixel centres sit at +0.5 in scene units; cv2 draws at integer centres, with 4 bits of sub-pixel.
        shift = 4
        pa = (round((a.x() - 0.5) * 16), round((a.y() - 0.5) * 16))
        pb = (round((b.x() - 0.5) * 16), round((b.y() - 0.5) * 16))
        thickness = max(int(round(2 * r)), 1)
        cv2.line(mask, pa, pb, value, thickness=thickness, lineType=cv2.LINE_8, shift=shift)
        cv2.circle(mask, pa, round(r * 16), value, thickness=-1, lineType=cv2.LINE_8, shift=shift)
        cv2.circle(mask, pb, round(r * 16), value, thickness=-1, lineType=cv2.LINE_8, shift=shift)
        d = self._dirty
        self._dirty = box if d is None else (min(d[0], box[0]), min(d[1], box[1]), max(d[2], box[2]),
                                             max(d[3], box[3]))
        self._repaint_overlay(box)
        self.maskChanged.emit()

    def _end_stroke(self) -> None:
        snapshot, box = self._snapshot, self._dirty
        self._snapshot, self._dirty, self._last = None, None, None
        if snapshot is None or box is None or snapshot.shape != self._mask().shape:
            return
        x0, y0, x1, y1 = box
        before, after = snapshot[y0:y1, x0:x1].copy(), self._mask()[y0:y1, x0:x1].copy()
        if np.array_equal(before, after):
            return
        text = f"Erase {self.name.lower()}" if self.eraser else f"Paint {self.name.lower()}"
        self.undo_stack.push(PixelEdit(partial(self.write, self.size, box), before, after, text, applied=True))

    # Painting -----------------------------------------------------------------------

    def hover(self, point: QPointF | None) -> None:
        old, self._hover = self._hover, point
        if old is not None or point is not None:
            self.update()

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        if not self._overlay.isNull():
            painter.drawImage(QRectF(0, 0, *self.size), self._overlay)
        if self.active and self._hover is not None:
            painter.save()
            painter.setOpacity(1.0)  # the outline is not translucent
            painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
            pen = QPen(QColor(255, 255, 255), 1.5)
            pen.setCosmetic(True)
            painter.setPen(pen)
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawEllipse(self._hover, self.radius, self.radius)
            pen.setColor(QColor(0, 0, 0, 160))
            pen.setStyle(Qt.PenStyle.DashLine)
            painter.setPen(pen)
            painter.drawEllipse(self._hover, self.radius, self.radius)
            painter.restore()

    def boundingRect(self) -> QRectF:
        r = self.radius + 2  # room for the brush outline at the edges
        return QRectF(-r, -r, self.size[0] + 2 * r, self.size[1] + 2 * r)
