"""The sketch on the canvas: a colour-stroke layer and an edge-map layer, with their tools.

:class:`SketchLayer` holds, for each image size, an ``(H, W, 4)`` ``uint8`` RGBA map of colour
strokes and an ``(H, W)`` ``uint8`` edge map (255 on a line), and shows them over the image:
the strokes as painted, the edges as black lines with a thin light halo, so they read on a
dark picture too. Tools: the brush (size, hardness, opacity, colour), the edge pen (thin black
lines on the edge map), the eraser (on the layer chosen as :attr:`SketchLayer.target`) and a
colour picker that samples what the canvas shows (the image with the strokes over it).

A brush stroke composites once over the layer as it was when the stroke began: each pixel
keeps the largest coverage any dab of the stroke gave it, so a stroke at 50 % opacity stays at
50 % where it crosses itself (Krita's "wash" mode), as a user expects of one stroke. A dab's
coverage falls off over ``radius * (1 - hardness)`` pixels (at least one pixel, which
antialiases a hard brush). Tablet pressure, when Qt reports it, scales the brush diameter.
Each stroke is one undoable step on the document's stack, stored as the changed box's pixels
before and after (as :class:`~gui.paint_layer.PaintLayer` does); like there, each image size
keeps its own maps, so undoing back to an image of another size brings its sketch back.

:class:`KeepLayer` is the mask of pixels the result must keep: a :class:`PaintLayer` that
also says when a change is finished, for live mode.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Callable

import cv2
import numpy as np
from PySide6.QtCore import QEvent, QObject, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import (
    QColor,
    QImage,
    QInputDevice,
    QMouseEvent,
    QPainter,
    QPen,
    QTabletEvent,
    QUndoStack,
)
from PySide6.QtWidgets import QStyleOptionGraphicsItem, QWidget

from gui.paint_layer import Box, CanvasLayer, PaintLayer, PixelEdit, Size

COLOUR, EDGES = "colour", "edges"
TOOLS = ("brush", "pen", "eraser", "picker")
PREVIEW_COLOUR = (64, 200, 255)  # Canny's proposal: not black, so it is not mistaken for drawn edges
HALO_ALPHA = 150
MIN_PRESSURE_SCALE = 0.2  # the lightest touch still paints a fifth of the diameter
_TABLET = {QEvent.Type.TabletPress, QEvent.Type.TabletMove, QEvent.Type.TabletRelease}
_STYLUS = {QInputDevice.DeviceType.Stylus, QInputDevice.DeviceType.Airbrush, QInputDevice.DeviceType.Puck}


@dataclass
class Brush:
    """The tools' settings. Sizes in image pixels; colours ``(r, g, b)`` 0-255."""

    size: float = 6.0  # brush and eraser diameter
    hardness: float = 0.8  # 1: a hard edge; 0: coverage falls off from the centre
    opacity: float = 1.0  # of one stroke
    colour: tuple[int, int, int] = (0, 0, 0)
    background: tuple[int, int, int] = (255, 255, 255)  # X swaps it with the colour
    pen_width: int = 1  # edge pen, pixels


def dab_coverage(box: Box, a: tuple[float, float], b: tuple[float, float], radius: float,
                 hardness: float) -> np.ndarray:
    """Coverage ``(y1 - y0, x1 - x0)`` float32 in ``[0, 1]`` of a round brush swept from ``a`` to ``b``.

    ``a``, ``b`` in scene units (pixel centres at +0.5). Full coverage within ``radius + 0.5 - f``
    of the segment, falling to 0 at ``radius + 0.5``, ``f = max(radius * (1 - hardness), 1)``;
    a smoothstep shapes the fall-off of a soft brush.
    """
    x0, y0, x1, y1 = box
    xs = np.arange(x0, x1, dtype=np.float32)[None, :] + 0.5
    ys = np.arange(y0, y1, dtype=np.float32)[:, None] + 0.5
    (ax, ay), (bx, by) = a, b
    dx, dy = bx - ax, by - ay
    length2 = dx * dx + dy * dy
    t = np.zeros((1, 1), np.float32) if length2 < 1e-12 else \
        np.clip(((xs - ax) * dx + (ys - ay) * dy) / length2, 0.0, 1.0)
    distance = np.hypot(xs - (ax + t * dx), ys - (ay + t * dy))
    falloff = max(radius * (1.0 - hardness), 1.0)
    c = np.clip((radius + 0.5 - distance) / falloff, 0.0, 1.0)
    if falloff > 1.0:
        c = c * c * (3.0 - 2.0 * c)
    return c.astype(np.float32)


def pressure_of(event: QEvent | None) -> float:
    """The pen pressure in ``[0, 1]`` of a tablet event (or a mouse event a stylus made); 1 for a mouse."""
    if isinstance(event, QTabletEvent):
        return float(min(max(event.pressure(), 0.0), 1.0))
    if isinstance(event, QMouseEvent) and event.pointingDevice() is not None \
            and event.pointingDevice().type() in _STYLUS and event.points():
        pressure = event.points()[0].pressure()
        return float(min(max(pressure, 0.0), 1.0)) if pressure > 0 else 1.0
    return 1.0


class SketchLayer(CanvasLayer):
    """Colour strokes and edges over the image; see the module docstring.

    ``image_source()`` returns the document's ``(H, W, 3)`` uint8 pixels for the picker (or None).
    Signals: ``changed()`` whenever what it shows changes (each dab too); ``edited(str)`` when a
    change of the named map is complete (a stroke's end, an undo, a redo, a set or clear);
    ``strokeFinished()`` after a stroke landed on the undo stack; ``colourPicked(QColor)``.
    """

    changed = Signal()
    edited = Signal(str)
    strokeFinished = Signal()
    colourPicked = Signal(QColor)

    def __init__(self, undo_stack: QUndoStack, image_source: Callable[[], np.ndarray | None]):
        super().__init__()
        self.undo_stack = undo_stack
        self.image_source = image_source
        self.brush = Brush()
        self.tool = "brush"
        self.target = COLOUR  # the map the eraser works on
        self.shown = {COLOUR: True, EDGES: True}
        self.version = 0  # bumped by every change of any map
        self._maps: dict[Size, dict[str, np.ndarray]] = {}
        self._edge_rgba = np.zeros((0, 0, 4), np.uint8)  # the edges' look; the QImage below views it
        self._views: dict[str, QImage] = {COLOUR: QImage(), EDGES: QImage()}
        self._preview = QImage()
        self._coverage = np.zeros((0, 0), np.float32)  # the running stroke's coverage
        self._stroke: tuple[str, np.ndarray] | None = None  # (map, its pixels when the stroke began)
        self._last: tuple[QPointF, float] | None = None
        self._dirty: Box | None = None
        self._hover: QPointF | None = None

    # The maps -----------------------------------------------------------------------

    def _map(self, name: str, size: Size | None = None) -> np.ndarray:
        width, height = size or self.size
        maps = self._maps.setdefault((width, height), {})
        if name not in maps:
            maps[name] = np.zeros((height, width, 4) if name == COLOUR else (height, width), np.uint8)
        return maps[name]

    @property
    def colour(self) -> np.ndarray:
        """``(H, W, 4)`` uint8 RGBA strokes at the current size (a copy)."""
        return self._map(COLOUR).copy()

    @property
    def edges(self) -> np.ndarray:
        """``(H, W)`` uint8, 255 on a drawn edge, at the current size (a copy)."""
        return self._map(EDGES).copy()

    def has(self, name: str) -> bool:
        pixels = self._map(name)
        return bool(pixels[..., 3].any()) if name == COLOUR else bool(pixels.any())

    def set_size(self, width: int, height: int) -> None:
        """Follow the image's size; each size keeps its own maps."""
        if (width, height) == self.size:
            return
        self._end_stroke()
        super().set_size(width, height)
        self._rebuild_views()

    def _rebuild_views(self) -> None:
        width, height = self.size
        colour = self._map(COLOUR)
        self._edge_rgba = np.zeros((height, width, 4), np.uint8)
        # The QImages view the arrays' memory (no copy): a stroke repaints by writing the arrays.
        self._views = {COLOUR: QImage(colour.data, width, height, width * 4, QImage.Format.Format_RGBA8888),
                       EDGES: QImage(self._edge_rgba.data, width, height, width * 4, QImage.Format.Format_RGBA8888)} \
            if width and height else {COLOUR: QImage(), EDGES: QImage()}
        self._coverage = np.zeros((height, width), np.float32)
        self._repaint_edges((0, 0, width, height))
        self.update()
        self.changed.emit()

    def write(self, size: Size, name: str, box: Box, pixels: np.ndarray) -> None:
        """Put ``pixels`` into ``box`` of map ``name`` of ``size`` (undo commands call this)."""
        x0, y0, x1, y1 = box
        self._map(name, size)[y0:y1, x0:x1] = pixels
        self.version += 1
        if size == self.size:
            self._map_changed(name, box)
            self.edited.emit(name)

    def set_map(self, name: str, pixels: np.ndarray, text: str) -> None:
        """Replace a whole map at the current size as one undoable step (nothing if it is unchanged)."""
        old = self._map(name)
        if pixels.shape != old.shape or pixels.dtype != np.uint8:
            raise ValueError(f"the {name} map must be {old.shape} uint8. Got: {pixels.shape} {pixels.dtype}")
        if not np.array_equal(old, pixels):
            box = (0, 0, *self.size)
            self.undo_stack.push(PixelEdit(partial(self.write, self.size, name, box), old.copy(), pixels.copy(), text))

    def clear(self, name: str) -> None:
        """Empty one map, as one undoable step."""
        if self.has(name):
            self.set_map(name, np.zeros_like(self._map(name)), f"Clear {'strokes' if name == COLOUR else 'edges'}")

    def load(self, maps: dict[str, np.ndarray]) -> None:
        """Start over: forget every size's maps and show ``maps`` (full-size arrays) now; not undoable."""
        self._end_stroke()
        self._maps = {}
        for name, pixels in maps.items():
            target = self._map(name)
            if pixels.shape != target.shape:
                raise ValueError(f"the {name} map must be {target.shape}. Got: {pixels.shape}")
            target[...] = pixels
        self._rebuild_views()
        self.version += 1
        for name in (COLOUR, EDGES):
            self.edited.emit(name)

    def _map_changed(self, name: str, box: Box) -> None:
        if name == EDGES:
            self._repaint_edges(box)
        x0, y0, x1, y1 = box
        self.update(QRectF(x0 - 1, y0 - 1, x1 - x0 + 2, y1 - y0 + 2))
        self.changed.emit()

    def _repaint_edges(self, box: Box) -> None:
        """Black lines with a light halo one pixel wide, in ``box`` of the edges' look."""
        width, height = self.size
        x0, y0, x1, y1 = max(box[0] - 2, 0), max(box[1] - 2, 0), min(box[2] + 2, width), min(box[3] + 2, height)
        if x1 <= x0 or y1 <= y0:
            return
        lines = self._map(EDGES)[y0:y1, x0:x1] > 0
        halo = cv2.dilate(lines.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool) & ~lines
        look = np.zeros((y1 - y0, x1 - x0, 4), np.uint8)
        look[halo] = (255, 255, 255, HALO_ALPHA)
        look[lines] = (0, 0, 0, 255)
        # The outer ring's halo depends on pixels outside the region: write the inside only.
        ix0, iy0 = (1 if x0 > 0 else 0), (1 if y0 > 0 else 0)
        ix1 = look.shape[1] - 1 if x1 < width else look.shape[1]
        iy1 = look.shape[0] - 1 if y1 < height else look.shape[0]
        self._edge_rgba[y0 + iy0:y0 + iy1, x0 + ix0:x0 + ix1] = look[iy0:iy1, ix0:ix1]

    # Canny's proposal and visibility ------------------------------------------------

    def set_preview(self, edges: np.ndarray | None) -> None:
        """Show an ``(h, w)`` bool edge map stretched over the image (None hides it)."""
        if edges is None:
            self._preview = QImage()
        else:
            height, width = edges.shape
            look = np.zeros((height, width, 4), np.uint8)
            look[edges] = (*PREVIEW_COLOUR, 255)
            self._preview = QImage(look.data, width, height, width * 4, QImage.Format.Format_RGBA8888).copy()
        self.update()

    @property
    def previewing(self) -> bool:
        return not self._preview.isNull()

    def set_shown(self, name: str, on: bool) -> None:
        if self.shown[name] != on:
            self.shown[name] = on
            self.update()

    # Strokes ------------------------------------------------------------------------

    def _radius(self, pressure: float = 1.0) -> float:
        if self.tool == "pen":
            return max(self.brush.pen_width / 2, 0.5)
        return max(self.brush.size / 2 * (MIN_PRESSURE_SCALE + (1 - MIN_PRESSURE_SCALE) * pressure), 0.5)

    def _stroke_map(self) -> str:
        return {"brush": COLOUR, "pen": EDGES}.get(self.tool, self.target)

    def press(self, point: QPointF, event: QEvent | None) -> None:
        if self.tool == "picker":
            self.colourPicked.emit(self.sample(point))
            return
        self._begin(point, pressure_of(event))

    def _begin(self, point: QPointF, pressure: float) -> None:
        name = self._stroke_map()
        self.set_shown(name, True)  # painting on a hidden layer would be painting blind
        self._stroke = (name, self._map(name).copy())
        self._dirty = None
        self._last = (point, pressure)
        self._dab(point, point, pressure)

    def drag(self, point: QPointF, event: QEvent | None) -> None:
        if self._last is not None and self._stroke is not None:
            pressure = pressure_of(event)
            self._dab(self._last[0], point, pressure)
            self._last = (point, pressure)

    def release(self, point: QPointF, event: QEvent | None) -> None:
        self.drag(point, event)
        self._end_stroke()

    def stroke(self, points: list[tuple[float, float]], pressures: list[float] | None = None) -> None:
        """Draw along ``points`` (image pixels) with the current tool as one stroke, as a drag does;
        ``pressures`` (one per point, ``[0, 1]``) as a stylus gives them."""
        pressures = pressures or [1.0] * len(points)
        if self.tool == "picker" or not self.size[0]:
            return
        self._begin(QPointF(*points[0]), pressures[0])
        for (x, y), pressure in zip(points[1:], pressures[1:]):
            self._dab(self._last[0], QPointF(x, y), pressure)
            self._last = (QPointF(x, y), pressure)
        self._end_stroke()

    def _dab(self, a: QPointF, b: QPointF, pressure: float) -> None:
        """Sweep the tool from ``a`` to ``b``; grows the stroke's dirty box."""
        name, before = self._stroke
        width, height = self.size
        r = self._radius(pressure)
        box = (max(int(min(a.x(), b.x()) - r) - 1, 0), max(int(min(a.y(), b.y()) - r) - 1, 0),
               min(int(max(a.x(), b.x()) + r) + 2, width), min(int(max(a.y(), b.y()) + r) + 2, height))
        if box[2] <= box[0] or box[3] <= box[1]:
            return
        x0, y0, x1, y1 = box
        target = self._map(name)
        if self.tool == "pen":
            # 4 bits of sub-pixel precision; cv2 puts pixel centres at integers, the scene at +0.5.
            pa = (round((a.x() - 0.5) * 16), round((a.y() - 0.5) * 16))
            pb = (round((b.x() - 0.5) * 16), round((b.y() - 0.5) * 16))
            cv2.line(target, pa, pb, 255, thickness=max(self.brush.pen_width, 1), lineType=cv2.LINE_8, shift=4)
        else:
            cover = dab_coverage(box, (a.x(), a.y()), (b.x(), b.y()), r, self.brush.hardness)
            stroke = self._coverage[y0:y1, x0:x1]
            np.maximum(stroke, cover, out=stroke)
            if name == COLOUR:
                target[y0:y1, x0:x1] = self._composite(before[y0:y1, x0:x1], stroke)
            else:  # erasing edges or any other binary map: a hard cut where the dab covers half a pixel
                target[y0:y1, x0:x1] = np.where(stroke >= 0.5, 0, before[y0:y1, x0:x1])
        d = self._dirty
        self._dirty = box if d is None else (min(d[0], x0), min(d[1], y0), max(d[2], x1), max(d[3], y1))
        self.version += 1
        self._map_changed(name, box)

    def _composite(self, before: np.ndarray, coverage: np.ndarray) -> np.ndarray:
        """The stroke over (or, erasing, out of) the layer as it was: ``(h, w, 4)`` uint8."""
        alpha = (coverage * self.brush.opacity)[..., None]  # (h, w, 1)
        old = before.astype(np.float32) / 255.0
        old_alpha = old[..., 3:]
        if self.tool == "eraser":
            out_alpha, rgb = old_alpha * (1.0 - alpha), old[..., :3]
        else:
            colour = np.array(self.brush.colour, np.float32) / 255.0
            out_alpha = alpha + old_alpha * (1.0 - alpha)
            rgb = (colour * alpha + old[..., :3] * old_alpha * (1.0 - alpha)) / np.maximum(out_alpha, 1e-6)
            rgb = np.where(out_alpha > 0, rgb, old[..., :3])
        return (np.concatenate([rgb, out_alpha], axis=2) * 255.0 + 0.5).astype(np.uint8)

    def _end_stroke(self) -> None:
        stroke, box = self._stroke, self._dirty
        self._stroke, self._dirty, self._last = None, None, None
        if stroke is None or box is None:
            return
        name, snapshot = stroke
        x0, y0, x1, y1 = box
        self._coverage[y0:y1, x0:x1] = 0.0
        if snapshot.shape != self._map(name).shape:
            return
        before, after = snapshot[y0:y1, x0:x1].copy(), self._map(name)[y0:y1, x0:x1].copy()
        if np.array_equal(before, after):
            return
        erased = "strokes" if name == COLOUR else "edges"
        text = {"brush": "Brush stroke", "pen": "Edge line", "eraser": f"Erase {erased}"}
        self.undo_stack.push(PixelEdit(partial(self.write, self.size, name, box), before, after, text[self.tool],
                                      applied=True))
        self.edited.emit(name)
        self.strokeFinished.emit()

    def sample(self, point: QPointF) -> QColor:
        """The colour the canvas shows at ``point``: the image with the strokes over it."""
        width, height = self.size
        x, y = min(max(int(point.x()), 0), width - 1), min(max(int(point.y()), 0), height - 1)
        image = self.image_source()
        base = np.asarray(image[y, x], np.float32) if image is not None and image.shape[:2] == (height, width) \
            else np.zeros(3, np.float32)
        stroke = self._map(COLOUR)[y, x].astype(np.float32)
        a = stroke[3] / 255.0 if self.shown[COLOUR] else 0.0
        rgb = stroke[:3] * a + base * (1 - a)
        return QColor(*(int(round(float(v))) for v in rgb))

    # Tablet input -------------------------------------------------------------------

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if event.type() not in _TABLET:
            return super().eventFilter(watched, event)
        if not self.active or self.view is None or not self.size[0]:
            return False
        # Handled here, with its pressure; accepting it stops Qt from repeating it as a mouse event.
        point = self.view.viewportTransform().inverted()[0].map(event.position())
        kind = event.type()
        if kind == QEvent.Type.TabletPress:
            if event.button() != Qt.MouseButton.LeftButton:
                return False
            self._pressed = True
            self.press(point, event)
        elif kind == QEvent.Type.TabletMove:
            self.hover(point)
            if self._pressed:
                self.drag(point, event)
        elif self._pressed:
            self._pressed = False
            self.release(point, event)
        event.accept()
        return True

    # Painting -----------------------------------------------------------------------

    def hover(self, point: QPointF | None) -> None:
        old, self._hover = self._hover, point
        if old is not None or point is not None:
            self.update()

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        rect = QRectF(0, 0, *self.size)
        for name in (COLOUR, EDGES):
            if self.shown[name] and not self._views[name].isNull():
                painter.drawImage(rect, self._views[name])
        if not self._preview.isNull():
            painter.drawImage(rect, self._preview)
        if self.active and self._hover is not None and self.tool != "picker":
            r = self._radius()
            painter.save()
            painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
            pen = QPen(QColor(255, 255, 255), 1.5)
            pen.setCosmetic(True)
            painter.setPen(pen)
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawEllipse(self._hover, r, r)
            pen.setColor(QColor(0, 0, 0, 160))
            pen.setStyle(Qt.PenStyle.DashLine)
            painter.setPen(pen)
            painter.drawEllipse(self._hover, r, r)
            painter.restore()

    def boundingRect(self) -> QRectF:
        r = max(self.brush.size, self.brush.pen_width) / 2 + 2  # room for the tool's outline at the edges
        return QRectF(-r, -r, self.size[0] + 2 * r, self.size[1] + 2 * r)

    def set_brush_size(self, size: float) -> None:
        self.prepareGeometryChange()  # the outline's room follows the size
        self.brush.size = max(float(size), 1.0)
        self.update()


class KeepLayer(PaintLayer):
    """The keep mask: a :class:`PaintLayer` that also emits ``edited()`` once a change is complete."""

    edited = Signal()

    def write(self, size: Size, box: Box, pixels: np.ndarray) -> None:
        super().write(size, box, pixels)
        if size == self.size:
            self.edited.emit()

    def _end_stroke(self) -> None:
        # Every stroke, dragged or drawn by stroke(), ends here; it is complete once on the stack.
        count = self.undo_stack.index()
        super()._end_stroke()
        if self.undo_stack.index() != count:
            self.edited.emit()


__all__ = ["COLOUR", "EDGES", "TOOLS", "Brush", "dab_coverage", "pressure_of", "SketchLayer",
           "KeepLayer"]
