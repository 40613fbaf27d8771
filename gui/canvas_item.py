"""What the canvas paints: the image item (with its before/after split) and the overlays.

:class:`ImageItem` lives in scene coordinates, one scene unit per image pixel. Its
"after" pixmap fills ``(0, 0, width, height)``; the "before" pixmap, which may have
another size (a crop, a rotation, a resize), is fitted into the same rectangle keeping
its aspect ratio, so a resize compares at equal display size and a crop shows the whole
original beside the cut. The overlay functions draw in viewport coordinates, so lines
and labels keep their size at every zoom.
"""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRect, QRectF, QSize, QSizeF, Qt
from PySide6.QtGui import QBrush, QColor, QFont, QPainter, QPainterPath, QPen, QPixmap, QPolygonF
from PySide6.QtWidgets import QGraphicsItem, QStyleOptionGraphicsItem, QWidget

ACCENT = QColor(74, 158, 255)
LETTERBOX = QColor(24, 24, 26)
CHECKER_DARK, CHECKER_LIGHT = QColor(90, 90, 90), QColor(120, 120, 120)


def fit_rect(size: QSizeF, into: QRectF) -> QRectF:
    """The largest rectangle of ``size``'s aspect ratio centred in ``into``."""
    if size.isEmpty():
        return QRectF(into)
    scale = min(into.width() / size.width(), into.height() / size.height())
    width, height = size.width() * scale, size.height() * scale
    return QRectF(into.center().x() - width / 2, into.center().y() - height / 2, width, height)


def _checker_brush() -> QBrush:
    tile = QPixmap(16, 16)
    tile.fill(CHECKER_LIGHT)
    painter = QPainter(tile)
    painter.fillRect(0, 0, 8, 8, CHECKER_DARK)
    painter.fillRect(8, 8, 8, 8, CHECKER_DARK)
    painter.end()
    return QBrush(tile)


class ImageItem(QGraphicsItem):
    """The image, with an optional before/after split or the before image alone.

    A job's preview may be smaller or larger than the document image (a GAN works at
    its own resolution); it is stretched over the document's rectangle, so the view
    does not jump while previews arrive.
    """

    def __init__(self) -> None:
        super().__init__()
        self.after = QPixmap()
        self.before: QPixmap | None = None
        self.size = QSize()  # the rectangle the after image fills, in scene units
        self.split: float | None = None  # fraction of the width left of the divider; None: no compare
        self.show_before = False
        self._checker: QBrush | None = None

    def set_pixmaps(self, after: QPixmap, before: QPixmap | None, size: QSize | None = None) -> None:
        """Show ``after`` scaled to ``size`` (default: its own size) and ``before`` fitted into it."""
        size = QSize(size) if size is not None else after.size()
        if size != self.size:
            self.prepareGeometryChange()
        self.after, self.before, self.size = after, before, size
        self.update()

    def set_split(self, split: float | None) -> None:
        self.split = split
        self.update()

    def set_show_before(self, show: bool) -> None:
        self.show_before = show
        self.update()

    def boundingRect(self) -> QRectF:
        return QRectF(0, 0, self.size.width(), self.size.height())

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        if self.after.isNull():
            return
        rect = self.boundingRect()
        # Smooth up to 200 % (aliasing otherwise); sharp pixels beyond, to inspect them.
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, painter.worldTransform().m11() < 2.0)
        if self.after.hasAlphaChannel() or (self.before is not None and self.before.hasAlphaChannel()):
            if self._checker is None:
                self._checker = _checker_brush()
            painter.fillRect(rect, self._checker)
        before = self.before if self.before is not None else self.after
        if self.show_before:
            self._draw_fitted(painter, before, rect)
            return
        painter.drawPixmap(rect, self.after, QRectF(self.after.rect()))
        if self.split is not None:
            painter.save()
            painter.setClipRect(QRectF(0, 0, rect.width() * self.split, rect.height()))
            painter.fillRect(rect, LETTERBOX)  # behind a before image of another shape
            self._draw_fitted(painter, before, rect)
            painter.restore()

    @staticmethod
    def _draw_fitted(painter: QPainter, pixmap: QPixmap, rect: QRectF) -> None:
        painter.drawPixmap(fit_rect(QSizeF(pixmap.size()), rect), pixmap, QRectF(pixmap.rect()))


# Overlays, drawn in viewport coordinates ----------------------------------------------


def draw_badge(painter: QPainter, text: str, anchor: QPointF, align_right: bool = False) -> None:
    """A small rounded label whose top-left (or top-right) corner is at ``anchor``."""
    font = QFont(painter.font())
    font.setPointSizeF(9.0)
    font.setBold(True)
    painter.setFont(font)
    metrics = painter.fontMetrics()
    width, height = metrics.horizontalAdvance(text) + 16, metrics.height() + 6
    left = anchor.x() - width if align_right else anchor.x()
    box = QRectF(left, anchor.y(), width, height)
    painter.setPen(Qt.PenStyle.NoPen)
    painter.setBrush(QColor(20, 20, 20, 190))
    painter.drawRoundedRect(box, height / 2, height / 2)
    painter.setPen(QColor(235, 235, 235))
    painter.drawText(box, Qt.AlignmentFlag.AlignCenter, text)


def draw_divider(painter: QPainter, x: float, image: QRectF, viewport: QRectF) -> None:
    """The compare divider at viewport ``x``: a line over the image and a round handle."""
    top, bottom = max(image.top(), viewport.top()), min(image.bottom(), viewport.bottom())
    if bottom <= top:
        return
    painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
    painter.setPen(QPen(QColor(0, 0, 0, 120), 3))
    painter.drawLine(QPointF(x, top), QPointF(x, bottom))
    painter.setPen(QPen(QColor(255, 255, 255), 1.5))
    painter.drawLine(QPointF(x, top), QPointF(x, bottom))
    centre = QPointF(x, (top + bottom) / 2)
    painter.setPen(QPen(QColor(255, 255, 255), 1.5))
    painter.setBrush(ACCENT)
    painter.drawEllipse(centre, 13, 13)
    painter.setPen(Qt.PenStyle.NoPen)
    painter.setBrush(QColor(255, 255, 255))
    for sign in (-1, 1):  # two arrowheads: "drag me sideways"
        tip = centre + QPointF(sign * 9, 0)
        painter.drawPolygon(QPolygonF([tip, tip + QPointF(-sign * 5, -5), tip + QPointF(-sign * 5, 5)]))


def draw_selection(painter: QPainter, selection: QRectF, image: QRectF, label: str) -> None:
    """Dim the image outside ``selection``, outline it, and write its size below it."""
    outside = QPainterPath()
    outside.addRect(image)
    inside = QPainterPath()
    inside.addRect(selection)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing, False)
    painter.fillPath(outside.subtracted(inside), QColor(0, 0, 0, 120))
    painter.setBrush(Qt.BrushStyle.NoBrush)
    painter.setPen(QPen(QColor(255, 255, 255), 1))
    painter.drawRect(selection)
    dashes = QPen(QColor(0, 0, 0), 1, Qt.PenStyle.DashLine)
    painter.setPen(dashes)
    painter.drawRect(selection)
    draw_badge(painter, label, QPointF(selection.right(), selection.bottom() + 6), align_right=True)


def draw_hint(painter: QPainter, viewport: QRect, lines: list[str]) -> None:
    """Centred hint text for an empty canvas."""
    font = QFont(painter.font())
    font.setPointSizeF(12.0)
    painter.setFont(font)
    painter.setPen(QColor(150, 150, 150))
    painter.drawText(viewport, Qt.AlignmentFlag.AlignCenter, "\n".join(lines))
