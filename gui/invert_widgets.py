"""The Invert panel's parts: the live curve of a search, its quality figures, and the canvas tools' controls.

:class:`CurveView` paints, with QPainter alone, the distance the search minimises (log
scale) and the fit's PSNR over the steps, so the user sees whether more steps would still
help: a PSNR curve that has flattened says no. :class:`FiguresView` lists the finished
run's figures (PSNR, SSIM, LPIPS or the distance used, time) beside the result.
:class:`MaskControls` drives the inpainting brush (``gui/paint_layer.py``) and
:class:`AlignControls` the face points (``gui/landmark_layer.py``).
"""

from __future__ import annotations

import math
from typing import Sequence

from PySide6.QtCore import QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFont, QPainter, QPaintEvent, QPen, QPolygonF
from PySide6.QtWidgets import (
    QCheckBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from gui.landmark_layer import LandmarkLayer
from gui.paint_layer import PaintLayer
from gui.widgets import FRAME, LABEL, ElidedLabel, key_label, section_label, snug_button, status_label

DISTANCE_COLOUR = QColor(240, 160, 64)
PSNR_COLOUR = QColor(74, 158, 255)
GRID = QColor(58, 58, 62)


class CurveView(QWidget):
    """Distance (orange, log scale) and PSNR (blue, dB) against the step.

    ``marks``: steps where a phase begins (PTI's weight tuning), drawn as dashed lines.
    """

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.steps: list[int] = []
        self.distance: list[float] = []
        self.psnr: list[float] = []
        self.total = 0
        self.marks: tuple[int, ...] = ()
        self.setMinimumHeight(120)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setToolTip("The distance the search minimises (orange, log scale) and the fit's PSNR (blue) per step: "
                        "a flat PSNR curve says more steps would not help")

    def sizeHint(self) -> QSize:
        return QSize(240, 128)

    def reset(self, total: int, marks: Sequence[int] = ()) -> None:
        self.steps, self.distance, self.psnr = [], [], []
        self.total, self.marks = total, tuple(marks)
        self.update()

    def add(self, step: int, distance: float, psnr: float) -> None:
        """One step's figures; steps arrive in order (the runner may skip some)."""
        if self.steps and step <= self.steps[-1]:
            return
        self.steps.append(step)
        self.distance.append(distance)
        self.psnr.append(psnr)
        self.update()

    def set_history(self, history: Sequence[tuple[int, float, float]], total: int) -> None:
        """The whole run at once, ``(step, distance, psnr)`` rows (a finished search's record)."""
        self.steps = [int(s) for s, _, _ in history]
        self.distance = [float(d) for _, d, _ in history]
        self.psnr = [float(p) for _, _, p in history]
        self.total = total
        self.update()

    # Painting -----------------------------------------------------------------------

    def _plot_rect(self) -> QRectF:
        return QRectF(self.rect()).adjusted(8, 22, -8, -20)

    @staticmethod
    def _span(values: list[float]) -> tuple[float, float]:
        finite = [v for v in values if math.isfinite(v)]
        if not finite:
            return 0.0, 1.0
        low, high = min(finite), max(finite)
        if high - low < 1e-9:
            low, high = low - 0.5, high + 0.5
        return low, high

    def _polyline(self, values: list[float], plot: QRectF) -> QPolygonF:
        low, high = self._span(values)
        total = max(self.total, self.steps[-1] if self.steps else 1, 1)
        points = QPolygonF()
        for step, value in zip(self.steps, values):
            if not math.isfinite(value):
                continue
            x = plot.left() + plot.width() * step / total
            y = plot.bottom() - plot.height() * (value - low) / (high - low)
            points.append(QPointF(x, y))
        return points

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(FRAME)
        painter.drawRoundedRect(QRectF(self.rect()).adjusted(0.5, 0.5, -0.5, -0.5), 4, 4)
        plot = self._plot_rect()
        painter.setPen(QPen(GRID, 1))
        for i in range(4):
            y = plot.top() + plot.height() * i / 3
            painter.drawLine(QPointF(plot.left(), y), QPointF(plot.right(), y))
        total = max(self.total, 1)
        for mark in self.marks:
            x = plot.left() + plot.width() * mark / total
            painter.setPen(QPen(LABEL, 1, Qt.PenStyle.DashLine))
            painter.drawLine(QPointF(x, plot.top()), QPointF(x, plot.bottom()))
        font = QFont(self.font())
        font.setPointSizeF(8.0)
        painter.setFont(font)
        if self.steps:
            log_distance = [math.log10(max(d, 1e-12)) if math.isfinite(d) else d for d in self.distance]
            for values, colour in ((log_distance, DISTANCE_COLOUR), (self.psnr, PSNR_COLOUR)):
                painter.setPen(QPen(colour, 1.6))
                painter.drawPolyline(self._polyline(values, plot))
        self._draw_labels(painter, plot)
        painter.end()

    def _draw_labels(self, painter: QPainter, plot: QRectF) -> None:
        top = QRectF(plot.left(), 3, plot.width(), 16)
        bottom = QRectF(plot.left(), plot.bottom() + 3, plot.width(), 16)
        if not self.steps:
            painter.setPen(LABEL)
            painter.drawText(QRectF(plot), Qt.AlignmentFlag.AlignCenter, "The search's curve appears here")
            return
        painter.setPen(DISTANCE_COLOUR)
        painter.drawText(top, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                         f"distance {self.distance[-1]:.4g}")
        painter.setPen(PSNR_COLOUR)
        low, high = self._span(self.psnr)
        painter.drawText(top, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                         f"PSNR {self.psnr[-1]:.1f} dB  ({low:.0f}–{high:.0f})")
        painter.setPen(LABEL)
        painter.drawText(bottom, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                         f"step {self.steps[-1]} / {self.total}")
        if self.marks:
            painter.drawText(bottom, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
                             "┆ weight tuning from here")


class FiguresView(QWidget):
    """The finished run's figures as ``label: value`` rows."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.form = QFormLayout(self)
        self.form.setContentsMargins(0, 0, 0, 0)
        self.form.setHorizontalSpacing(12)
        self.form.setVerticalSpacing(3)
        self.values: dict[str, ElidedLabel] = {}

    def set_rows(self, rows: Sequence[tuple[str, str]]) -> None:
        while self.form.rowCount():
            self.form.removeRow(0)
        self.values = {}
        for label, text in rows:
            value = ElidedLabel(text)  # a long distance name must not widen the panel
            value.setObjectName("figure")
            value.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            self.values[label] = value
            self.form.addRow(key_label(label), value)
        self.setVisible(bool(rows))

    def text(self, label: str) -> str:
        return self.values[label].full_text() if label in self.values else ""


class MaskControls(QWidget):
    """Brush on/off, eraser, clear and brush size of a :class:`~gui.paint_layer.PaintLayer`."""

    def __init__(self, layer: PaintLayer, title: str = "Region to fill", parent: QWidget | None = None):
        super().__init__(parent)
        self.layer = layer
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(4)
        layout.addWidget(section_label(title))
        row = QHBoxLayout()
        self.brush_button = QPushButton("Brush")
        self.brush_button.setCheckable(True)
        self.brush_button.setToolTip("Paint the region on the image (each stroke is one undoable step)")
        self.brush_button.toggled.connect(layer.set_active)
        self.eraser_check = QCheckBox("Eraser")
        self.eraser_check.setToolTip("Strokes remove paint instead of adding it")
        self.eraser_check.toggled.connect(lambda on: setattr(layer, "eraser", on))
        self.clear_button = QPushButton("Clear")
        self.clear_button.setToolTip("Remove all paint (one undoable step)")
        self.clear_button.clicked.connect(layer.clear)
        row.addWidget(self.brush_button)
        row.addWidget(self.eraser_check, 1)
        row.addWidget(self.clear_button)
        layout.addLayout(row)
        size_row = QHBoxLayout()
        self.size_slider = QSlider(Qt.Orientation.Horizontal)
        self.size_slider.setRange(1, 256)
        self.size_slider.setToolTip("Brush diameter in image pixels")
        self.size_label = QLabel()
        self.size_label.setMinimumWidth(48)
        self.size_label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.size_slider.valueChanged.connect(self._size_changed)
        self.size_slider.setValue(16)
        size_row.addWidget(key_label("Size"))
        size_row.addWidget(self.size_slider, 1)
        size_row.addWidget(self.size_label)
        layout.addLayout(size_row)

    def _size_changed(self, diameter: int) -> None:
        self.layer.set_radius(diameter / 2)
        self.size_label.setText(f"{diameter} px")


class AlignControls(QWidget):
    """The Align face toggle and the face points' buttons: Detect (with a detector), Place points, Reset."""

    def __init__(self, layer: LandmarkLayer, detector: bool, parent: QWidget | None = None):
        super().__init__(parent)
        self.layer = layer
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(4)
        row = QHBoxLayout()
        self.align_check = QCheckBox("Align face")
        self.align_check.setToolTip("Cut the FFHQ-aligned square around the face (eyes and mouth corners) instead of "
                                    "the centre square, as face models were trained")
        self.detect_button = QPushButton("Detect")
        self.detect_button.setToolTip("Find the eyes and mouth with dlib")
        self.detect_button.setVisible(detector)
        self.place_button = QPushButton("Place points")
        self.place_button.setCheckable(True)
        self.place_button.setToolTip("Click the eyes and the mouth corners on the image; drag a point to move it")
        self.place_button.toggled.connect(layer.set_active)
        self.reset_button = QPushButton("Reset")
        self.reset_button.setToolTip("Remove the four points")
        self.reset_button.clicked.connect(layer.reset)
        layout.addWidget(self.align_check)  # the buttons get a row of their own: the dock is narrow
        for button in (self.detect_button, self.place_button, self.reset_button):
            row.addWidget(snug_button(button), 1)
        layout.addLayout(row)
        self.status = status_label()
        layout.addWidget(self.status)
        self.align_check.toggled.connect(self._toggled)
        layer.pointsChanged.connect(self.show_state)
        self._toggled(False)

    @property
    def on(self) -> bool:
        return self.align_check.isChecked()

    def _toggled(self, on: bool) -> None:
        self.layer.setVisible(on)
        self.place_button.setChecked(on and not self.layer.complete)
        self.show_state()

    def show_state(self) -> None:
        self.status.setVisible(self.on)
        self.status.setText(self.layer.instruction())

    def set_enabled(self, running: bool, has_image: bool) -> None:
        self.align_check.setEnabled(not running)
        for button in (self.place_button, self.reset_button, self.detect_button):
            button.setEnabled(not running and self.on and has_image)
        if not self.on or running:
            self.place_button.setChecked(False)
