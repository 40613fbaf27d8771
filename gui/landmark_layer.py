"""Face landmarks placed by hand on the canvas: two eye centres and two mouth corners.

FFHQ-style alignment (``engine/ops/align.py``) needs these four points. Without a landmark
detector the user places them: each click on the image puts the next missing point, in the
order the status names; a press near a placed point drags it instead. Once all four are
there the layer outlines the square that will be cut out, so a wrong point shows at once.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QFont, QMouseEvent, QPainter, QPen, QPolygonF
from PySide6.QtWidgets import QStyleOptionGraphicsItem, QWidget

from engine.errors import GanvasError
from engine.ops.align import Landmarks, ffhq_quad
from gui.paint_layer import CanvasLayer

POINT_NAMES = ("left eye", "right eye", "left mouth corner", "right mouth corner")  # as seen on screen
SHORT_NAMES = ("L eye", "R eye", "L mouth", "R mouth")
GRAB = 10.0  # viewport pixels within which a press picks a point up
POINT_COLOUR = QColor(74, 158, 255)  # the accent: it stands out on skin, hair and background


class LandmarkLayer(CanvasLayer):
    """Four points in image coordinates. Signals: ``pointsChanged()``."""

    pointsChanged = Signal()

    def __init__(self) -> None:
        super().__init__()
        self.points: list[QPointF | None] = [None] * 4
        self._moving: int | None = None
        self._by_size: dict[tuple[int, int], list[QPointF | None]] = {}

    # State --------------------------------------------------------------------------

    @property
    def complete(self) -> bool:
        return all(p is not None for p in self.points)

    def next_missing(self) -> int | None:
        return next((i for i, p in enumerate(self.points) if p is None), None)

    def landmarks(self) -> Landmarks | None:
        """The points as :class:`~engine.ops.align.Landmarks` (pixel centres at integers), once all are placed."""
        if not self.complete:
            return None
        xy = [(p.x() - 0.5, p.y() - 0.5) for p in self.points]  # scene units put pixel centres at +0.5
        return Landmarks(*xy)

    def set_landmarks(self, landmarks: Landmarks | None) -> None:
        """Show ``landmarks`` (e.g. from a detector), or remove every point."""
        self.prepareGeometryChange()
        if landmarks is None:
            self.points = [None] * 4
        else:
            self.points = [QPointF(x + 0.5, y + 0.5) for x, y in landmarks.array()]
        self.update()
        self.pointsChanged.emit()

    def reset(self) -> None:
        self.set_landmarks(None)

    def set_size(self, width: int, height: int) -> None:
        """Follow the image's size; points placed on an image of another size wait for it to come back."""
        if (width, height) == self.size:
            return
        self._by_size[self.size] = self.points
        super().set_size(width, height)
        self.points = self._by_size.pop((width, height), [None] * 4)
        self._moving = None
        self.pointsChanged.emit()

    def instruction(self) -> str:
        missing = self.next_missing()
        if missing is None:
            return "Drag a point to adjust it."
        return f"Click the {POINT_NAMES[missing]} ({missing + 1} of 4)."

    # Mouse --------------------------------------------------------------------------

    def _nearest(self, point: QPointF) -> int | None:
        reach = GRAB / max(self.view_scale(), 1e-6)
        best, best_d = None, reach
        for i, p in enumerate(self.points):
            if p is not None:
                d = float(np.hypot(p.x() - point.x(), p.y() - point.y()))
                if d <= best_d:
                    best, best_d = i, d
        return best

    def _clamped(self, point: QPointF) -> QPointF:
        width, height = self.size
        return QPointF(min(max(point.x(), 0.0), width), min(max(point.y(), 0.0), height))

    def press(self, point: QPointF, event: QMouseEvent | None) -> None:
        self._moving = self._nearest(point)
        if self._moving is None:
            self._moving = self.next_missing()
        if self._moving is not None:
            self.prepareGeometryChange()  # the crop square moves with the point
            self.points[self._moving] = self._clamped(point)
            self.update()
            self.pointsChanged.emit()

    def drag(self, point: QPointF, event: QMouseEvent | None) -> None:
        if self._moving is not None:
            self.prepareGeometryChange()
            self.points[self._moving] = self._clamped(point)
            self.update()
            self.pointsChanged.emit()

    def release(self, point: QPointF, event: QMouseEvent | None) -> None:
        self.drag(point, event)
        self._moving = None

    def click(self, x: float, y: float) -> None:
        """Place (or move) a point at image pixel ``(x, y)`` as a click there does."""
        self.press(QPointF(x, y), None)
        self.release(QPointF(x, y), None)

    # Painting -----------------------------------------------------------------------

    def boundingRect(self) -> QRectF:
        # The crop square may reach past the image; marks and labels need room too.
        rect = QRectF(0, 0, *self.size)
        quad = self._quad()
        if quad is not None:
            rect = rect.united(quad.boundingRect())
        pad = float(max(self.size))  # labels keep their screen size: at low zoom they span many image pixels
        return rect.adjusted(-pad, -pad, pad, pad)

    def _quad(self) -> QPolygonF | None:
        landmarks = self.landmarks()
        if landmarks is None:
            return None
        try:
            quad = ffhq_quad(landmarks)
        except GanvasError:  # degenerate points (eyes on top of each other): nothing to outline yet
            return None
        return QPolygonF([QPointF(x + 0.5, y + 0.5) for x, y in quad])

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        if not any(p is not None for p in self.points):
            return
        scale = max(self.view_scale(), 1e-6)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        quad = self._quad()
        if quad is not None:
            pen = QPen(QColor(255, 255, 255, 220), 1.5, Qt.PenStyle.DashLine)
            pen.setCosmetic(True)
            painter.setPen(pen)
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawPolygon(quad)
        font = QFont(painter.font())
        font.setPointSizeF(8.0 / scale)
        font.setBold(True)
        painter.setFont(font)
        metrics = painter.fontMetrics()
        radius = 4.5 / scale
        for name, p in zip(SHORT_NAMES, self.points):
            if p is None:
                continue
            outline = QPen(QColor(255, 255, 255), 1.5)
            outline.setCosmetic(True)
            painter.setPen(outline)
            painter.setBrush(POINT_COLOUR)
            painter.drawEllipse(p, radius, radius)
            # The label sits in a dark pill beside the point, readable on any picture.
            width, height = metrics.horizontalAdvance(name) + 10 / scale, metrics.height() + 2 / scale
            label = QRectF(p.x() + 2.2 * radius, p.y() - height - radius * 0.6, width, height)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(QColor(20, 20, 20, 200))
            painter.drawRoundedRect(label, height / 2, height / 2)
            painter.setPen(QColor(240, 240, 240))
            painter.drawText(label, Qt.AlignmentFlag.AlignCenter, name)
