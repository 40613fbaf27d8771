"""The canvas: a ``QGraphicsView`` that shows the document with zoom, pan, compare and selection.

Input map (all from the user's side of the screen):

* wheel: zoom around the cursor; View menu: zoom in/out, fit, 100 %;
* middle-drag, or space + left-drag: pan;
* left-drag on the image: rectangle selection (square while the lock is on or Shift
  is held); a click clears it; Esc clears it;
* left-drag on the compare divider: move the before/after split;
* hold backslash: show the before image alone.

The canvas keeps no document state: the window hands it images (:meth:`set_images`)
and live job previews (:meth:`show_preview`), and reads the selection back.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, QRect, QRectF, QSize, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QFocusEvent,
    QKeyEvent,
    QMouseEvent,
    QPainter,
    QPixmap,
    QResizeEvent,
    QTransform,
    QWheelEvent,
)
from PySide6.QtWidgets import QFrame, QGraphicsScene, QGraphicsView, QWidget

from engine.images import Image
from gui.canvas_item import ImageItem, draw_badge, draw_divider, draw_hint, draw_selection
from gui.convert import image_to_qimage, to_qimage

MIN_ZOOM, MAX_ZOOM = 0.01, 64.0
ZOOM_STEP = 2 ** 0.25  # four steps per doubling: 100 -> 119 -> 141 -> 168 -> 200 %
FIT_MARGIN = 12  # viewport pixels left free around a fitted image
DIVIDER_GRAB = 8  # how close (viewport pixels) a press must be to pick up the divider
BACKGROUND = QColor(38, 38, 40)


class Canvas(QGraphicsView):
    """Signals: ``zoomChanged(float)``, ``splitChanged(float)``, ``compareChanged(bool)``,
    ``selectionChanged(QRect | None)`` in image pixels, ``showingBeforeChanged(bool)``."""

    zoomChanged = Signal(float)
    splitChanged = Signal(float)
    compareChanged = Signal(bool)
    selectionChanged = Signal(object)
    showingBeforeChanged = Signal(bool)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setScene(QGraphicsScene(self))
        self.item = ImageItem()
        self.scene().addItem(self.item)
        self.setBackgroundBrush(BACKGROUND)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.NoAnchor)
        self.setResizeAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        # The overlays move with the divider and the selection: repaint the whole viewport.
        self.setViewportUpdateMode(QGraphicsView.ViewportUpdateMode.FullViewportUpdate)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self.setMouseTracking(True)
        self.setAcceptDrops(False)  # dropped files go to the window
        self.viewport().setAcceptDrops(False)

        self._zoom = 1.0
        self._fit_mode = True
        self._compare = False
        self._split = 0.5
        self._showing_before = False
        self._selection: QRect | None = None
        self.square_lock = False
        self._has_image = False
        self._doc_pixmaps: tuple[QPixmap, QPixmap | None] = (QPixmap(), None)
        self._previewing = False
        self._drag: str | None = None  # "pan", "split" or "select"
        self._drag_origin = QPointF()
        self._space_held = False

    # Images -------------------------------------------------------------------------

    def set_images(self, image: Image | None, before: Image | None) -> None:
        """Show the document's image (and its "before", for the compare)."""
        after = QPixmap.fromImage(image_to_qimage(image)) if image is not None else QPixmap()
        previous = QPixmap.fromImage(image_to_qimage(before)) if before is not None else None
        self._doc_pixmaps = (after, previous)
        self._has_image = image is not None
        self.set_selection(None)
        if not self._previewing:
            self._show(after, previous)

    def show_preview(self, pixels: np.ndarray) -> None:
        """Show a job's ``(H, W, 3)`` uint8 preview in place of the image until :meth:`clear_preview`.

        The compare's "before" side shows the current document image meanwhile.
        """
        self._previewing = True
        document = self._doc_pixmaps[0] if self._has_image else None
        self._show(QPixmap.fromImage(to_qimage(pixels)), document, document.size() if document is not None else None)

    def clear_preview(self) -> None:
        if self._previewing:
            self._previewing = False
            self._show(*self._doc_pixmaps)

    @property
    def previewing(self) -> bool:
        return self._previewing

    def _show(self, after: QPixmap, before: QPixmap | None, size: QSize | None = None) -> None:
        resized = (size if size is not None else after.size()) != self.item.size
        self.item.set_pixmaps(after, before, size)
        self.setSceneRect(self.item.boundingRect())
        if resized:
            self.fit()
        self.viewport().update()

    def image_rect(self) -> QRectF:
        """The image's rectangle in viewport coordinates."""
        return self.viewportTransform().mapRect(self.item.boundingRect())

    # Zoom ---------------------------------------------------------------------------

    @property
    def zoom(self) -> float:
        """Screen pixels per image pixel."""
        return self._zoom

    @property
    def fit_mode(self) -> bool:
        return self._fit_mode

    def set_zoom(self, zoom: float, anchor: QPointF | None = None) -> None:
        """Zoom so that the image point under viewport ``anchor`` (default: centre) stays put."""
        self._fit_mode = False
        self._apply_zoom(zoom, anchor)

    def zoom_in(self) -> None:
        self.set_zoom(self._zoom * ZOOM_STEP)

    def zoom_out(self) -> None:
        self.set_zoom(self._zoom / ZOOM_STEP)

    def actual_size(self) -> None:
        self.set_zoom(1.0)

    def fit(self) -> None:
        """Fit the whole image in the view, and keep fitting it as the view resizes."""
        self._fit_mode = True
        rect = self.item.boundingRect()
        if rect.isEmpty():
            return
        width = max(self.viewport().width() - 2 * FIT_MARGIN, 1)
        height = max(self.viewport().height() - 2 * FIT_MARGIN, 1)
        self._apply_zoom(min(width / rect.width(), height / rect.height()))
        self.centerOn(rect.center())

    def _apply_zoom(self, zoom: float, anchor: QPointF | None = None) -> None:
        zoom = min(max(zoom, MIN_ZOOM), MAX_ZOOM)
        if anchor is None:
            anchor = QPointF(self.viewport().rect().center())
        scene_point = self.viewportTransform().inverted()[0].map(anchor)
        self.setTransform(QTransform.fromScale(zoom, zoom))
        # Scroll so the scene point is back under the anchor (clamped at the image edges).
        moved = self.viewportTransform().map(scene_point) - anchor
        self.horizontalScrollBar().setValue(self.horizontalScrollBar().value() + round(moved.x()))
        self.verticalScrollBar().setValue(self.verticalScrollBar().value() + round(moved.y()))
        if zoom != self._zoom:
            self._zoom = zoom
            self.zoomChanged.emit(zoom)
        self.viewport().update()

    def wheelEvent(self, event: QWheelEvent) -> None:
        delta = event.angleDelta().y() or event.angleDelta().x()
        if delta == 0:
            event.ignore()
            return
        # One wheel notch (120) zooms by a third of a doubling; trackpads send smaller deltas.
        self.set_zoom(self._zoom * 2 ** (delta / 360), event.position())
        event.accept()

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        if self._fit_mode:
            self.fit()

    # Compare ------------------------------------------------------------------------

    @property
    def compare(self) -> bool:
        return self._compare

    def set_compare(self, on: bool) -> None:
        if on != self._compare:
            self._compare = on
            self.item.set_split(self._split if on else None)
            self.viewport().update()
            self.compareChanged.emit(on)

    @property
    def split(self) -> float:
        """Fraction of the image width, from the left, that shows the before image."""
        return self._split

    def set_split(self, split: float) -> None:
        split = min(max(float(split), 0.0), 1.0)
        if split != self._split:
            self._split = split
            if self._compare:
                self.item.set_split(split)
            self.viewport().update()
            self.splitChanged.emit(split)

    @property
    def showing_before(self) -> bool:
        return self._showing_before

    def set_showing_before(self, show: bool) -> None:
        if show != self._showing_before:
            self._showing_before = show
            self.item.set_show_before(show)
            self.viewport().update()
            self.showingBeforeChanged.emit(show)

    def _divider_x(self) -> float:
        rect = self.image_rect()
        return rect.left() + rect.width() * self._split

    # Selection ----------------------------------------------------------------------

    def selection(self) -> QRect | None:
        """The selected rectangle in image pixels, or None."""
        return QRect(self._selection) if self._selection is not None else None

    def set_selection(self, rect: QRect | None) -> None:
        if rect is not None:
            rect = rect.normalized().intersected(self.item.boundingRect().toAlignedRect())
            if rect.width() < 1 or rect.height() < 1:
                rect = None
        if rect != self._selection:
            self._selection = rect
            self.viewport().update()
            self.selectionChanged.emit(self.selection())

    def select_all(self) -> None:
        self.set_selection(self.item.boundingRect().toAlignedRect())

    def _image_point(self, viewport_pos: QPointF) -> QPointF:
        """A viewport position as image coordinates, clamped to the image."""
        point = self.viewportTransform().inverted()[0].map(viewport_pos)
        rect = self.item.boundingRect()
        return QPointF(min(max(point.x(), 0.0), rect.width()), min(max(point.y(), 0.0), rect.height()))

    def _drag_selection(self, pos: QPointF, square: bool) -> None:
        start, end = self._drag_origin, self._image_point(pos)
        dx, dy = end.x() - start.x(), end.y() - start.y()
        if square:
            bounds = self.item.boundingRect()
            room_x = bounds.width() - start.x() if dx >= 0 else start.x()
            room_y = bounds.height() - start.y() if dy >= 0 else start.y()
            side = min(max(abs(dx), abs(dy)), room_x, room_y)
            dx, dy = (side if dx >= 0 else -side), (side if dy >= 0 else -side)
        corners = QRectF(start, QPointF(start.x() + dx, start.y() + dy)).normalized()
        left, top = round(corners.left()), round(corners.top())
        width, height = round(corners.right()) - left, round(corners.bottom()) - top
        if square:
            width = height = min(width, height)
        self.set_selection(QRect(left, top, width, height))

    # Mouse and keys -----------------------------------------------------------------

    def mousePressEvent(self, event: QMouseEvent) -> None:
        pos, button = event.position(), event.button()
        if button == Qt.MouseButton.MiddleButton or (button == Qt.MouseButton.LeftButton and self._space_held):
            self._start_drag("pan", pos, Qt.CursorShape.ClosedHandCursor)
        elif button == Qt.MouseButton.LeftButton and self._has_image:
            if self._compare and abs(pos.x() - self._divider_x()) <= DIVIDER_GRAB:
                self._start_drag("split", pos, Qt.CursorShape.SplitHCursor)
            else:
                self._start_drag("select", self._image_point(pos), Qt.CursorShape.CrossCursor)
        else:
            super().mousePressEvent(event)

    def _start_drag(self, kind: str, origin: QPointF, cursor: Qt.CursorShape) -> None:
        self._drag, self._drag_origin = kind, origin
        self.viewport().setCursor(cursor)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        pos = event.position()
        if self._drag == "pan":
            delta = pos - self._drag_origin
            self._drag_origin = pos
            self.horizontalScrollBar().setValue(self.horizontalScrollBar().value() - round(delta.x()))
            self.verticalScrollBar().setValue(self.verticalScrollBar().value() - round(delta.y()))
            self._fit_mode = False
        elif self._drag == "split":
            rect = self.image_rect()
            self.set_split((pos.x() - rect.left()) / rect.width() if rect.width() > 0 else 0.5)
        elif self._drag == "select":
            square = self.square_lock or bool(event.modifiers() & Qt.KeyboardModifier.ShiftModifier)
            self._drag_selection(pos, square)
        else:
            self._update_cursor(pos)
            super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if self._drag is None:
            super().mouseReleaseEvent(event)
            return
        if self._drag == "select" and self._image_point(event.position()) == self._drag_origin:
            self.set_selection(None)  # a plain click clears the selection
        self._drag = None
        self._update_cursor(event.position())

    def _update_cursor(self, pos: QPointF) -> None:
        if self._space_held:
            shape = Qt.CursorShape.OpenHandCursor
        elif self._compare and self._has_image and abs(pos.x() - self._divider_x()) <= DIVIDER_GRAB:
            shape = Qt.CursorShape.SplitHCursor
        elif self._has_image and self.image_rect().contains(pos):
            shape = Qt.CursorShape.CrossCursor
        else:
            shape = Qt.CursorShape.ArrowCursor
        self.viewport().setCursor(shape)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        key = event.key()
        if key == Qt.Key.Key_Backslash:
            if not event.isAutoRepeat():
                self.set_showing_before(True)
        elif key == Qt.Key.Key_Space:
            if not event.isAutoRepeat():
                self._space_held = True
                self.viewport().setCursor(Qt.CursorShape.OpenHandCursor)
        elif key == Qt.Key.Key_Escape and self._selection is not None:
            self.set_selection(None)
        else:
            super().keyPressEvent(event)

    def keyReleaseEvent(self, event: QKeyEvent) -> None:
        if event.isAutoRepeat():
            return
        if event.key() == Qt.Key.Key_Backslash:
            self.set_showing_before(False)
        elif event.key() == Qt.Key.Key_Space:
            self._space_held = False
            self.viewport().setCursor(Qt.CursorShape.ArrowCursor)
        else:
            super().keyReleaseEvent(event)

    def focusOutEvent(self, event: QFocusEvent) -> None:
        # A key released while another widget has focus never reaches us: don't stick.
        self._space_held = False
        self.set_showing_before(False)
        super().focusOutEvent(event)

    # Overlays -----------------------------------------------------------------------

    def drawForeground(self, painter: QPainter, rect: QRectF) -> None:
        painter.save()
        painter.resetTransform()  # from here on, viewport coordinates
        viewport = QRectF(self.viewport().rect())
        if not self._has_image and not self._previewing:
            draw_hint(painter, self.viewport().rect(), ["Open an image (Ctrl+O)", "or drop one here"])
            painter.restore()
            return
        image = self.image_rect()
        if self._selection is not None and not self._showing_before:
            selection = self.viewportTransform().mapRect(QRectF(self._selection))
            label = f"{self._selection.width()} × {self._selection.height()}"
            draw_selection(painter, selection, image, label)
        top = max(image.top(), viewport.top()) + 10
        if self._showing_before:
            draw_badge(painter, "Before", QPointF(max(image.left(), viewport.left()) + 10, top))
        elif self._compare:
            x = self._divider_x()
            draw_divider(painter, x, image, viewport)
            draw_badge(painter, "Before", QPointF(x - 10, top), align_right=True)
            draw_badge(painter, "After", QPointF(x + 10, top))
        if self._previewing:
            draw_badge(painter, "Preview", QPointF(viewport.right() - 10, viewport.top() + 10), align_right=True)
        painter.restore()
