"""The Sketch panel's parts: tool buttons, colour swatches, the layer list, the result and the candidates.

Each part paints or lays out one thing and reports what the user did through signals; the
panel (``gui/sketch_panel.py``) decides what it means for the canvas layers and the document.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QIcon, QMouseEvent, QPainter, QPaintEvent, QPen, QPixmap, QResizeEvent
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QListView,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QRadioButton,
    QSizePolicy,
    QSlider,
    QToolButton,
    QWidget,
)

from gui.convert import to_qimage
from gui.widgets import FRAME, LABEL, snug_button

TOOL_NAMES = {"brush": ("Brush", "B", "Paint colour strokes: a rough stroke asks for a colour region"),
              "pen": ("Pen", "P", "Draw edges: thin black lines the result's outlines should follow"),
              "eraser": ("Eraser", "E", "Erase on the chosen layer (colour strokes, edges or keep)"),
              "picker": ("Picker", "I", "Take the brush colour from the canvas"),
              "keep": ("Keep", "K", "Paint the pixels of the image the result must keep")}


class ToolButtons(QWidget):
    """One checkable button per tool; a click on the checked one turns the tools off.

    Signals: ``toolChosen(str | None)`` (a key of :data:`TOOL_NAMES`, or None for off).
    """

    toolChosen = Signal(object)
    COLUMNS = 3  # five buttons in one row are wider than the dock

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        grid = QGridLayout(self)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.setSpacing(3)
        self.buttons: dict[str, QToolButton] = {}
        for index, (name, (text, key, tip)) in enumerate(TOOL_NAMES.items()):
            button = QToolButton()
            button.setText(text)
            button.setCheckable(True)
            button.setToolTip(f"{tip} ({key})")
            button.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
            button.clicked.connect(lambda on, n=name: self.toolChosen.emit(n if on else None))
            grid.addWidget(button, *divmod(index, self.COLUMNS))
            self.buttons[name] = button
        for column in range(self.COLUMNS):
            grid.setColumnStretch(column, 1)

    def show_tool(self, tool: str | None) -> None:
        for name, button in self.buttons.items():
            button.setChecked(name == tool)


class ColourSwatches(QWidget):
    """The brush colour (front) and the second colour (behind), as in every paint program.

    Signals: ``chooseRequested(str)`` (``"colour"`` or ``"background"``), ``swapRequested()``.
    """

    chooseRequested = Signal(str)
    swapRequested = Signal()
    SIDE = 22

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.colour, self.background = QColor(0, 0, 0), QColor(255, 255, 255)
        self.setFixedSize(QSize(int(self.SIDE * 1.6) + 14, int(self.SIDE * 1.6)))
        self.setToolTip("Brush colour (front) and second colour: click one to choose it; the arrow or X swaps them")
        self.setCursor(Qt.CursorShape.PointingHandCursor)

    def set_colours(self, colour: QColor, background: QColor) -> None:
        self.colour, self.background = QColor(colour), QColor(background)
        self.update()

    def _front(self) -> QRectF:
        return QRectF(1, 1, self.SIDE, self.SIDE)

    def _back(self) -> QRectF:
        offset = self.SIDE * 0.6
        return QRectF(1 + offset, 1 + offset, self.SIDE - 2, self.SIDE - 2)

    def _swap(self) -> QRectF:
        return QRectF(self.SIDE + 4, 0, 14, 14)

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        for rect, colour in ((self._back(), self.background), (self._front(), self.colour)):
            painter.setPen(QPen(QColor(20, 20, 22), 1))
            painter.setBrush(colour)
            painter.drawRect(rect)
            painter.setPen(QPen(QColor(200, 200, 204), 1))
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawRect(rect.adjusted(1, 1, -1, -1))
        swap = self._swap()
        painter.setPen(QPen(LABEL, 1.4))
        painter.drawLine(QPointF(swap.left() + 2, swap.top() + 4), QPointF(swap.right() - 2, swap.top() + 4))
        painter.drawLine(QPointF(swap.right() - 2, swap.top() + 4), QPointF(swap.right() - 2, swap.bottom() - 2))
        painter.drawLine(QPointF(swap.left() + 2, swap.top() + 4), QPointF(swap.left() + 5, swap.top() + 1))
        painter.drawLine(QPointF(swap.right() - 2, swap.bottom() - 2), QPointF(swap.right() - 5, swap.bottom() - 5))
        painter.end()

    def mousePressEvent(self, event: QMouseEvent) -> None:
        pos = event.position()
        if self._swap().contains(pos):
            self.swapRequested.emit()
        elif self._front().contains(pos):
            self.chooseRequested.emit("colour")
        elif self._back().contains(pos):
            self.chooseRequested.emit("background")


class LayerList(QWidget):
    """The sketch's layers: which one the eraser works on, shown or hidden, cleared.

    Signals: ``targetChosen(str)``, ``shownToggled(str, bool)``, ``clearRequested(str)``.
    """

    targetChosen = Signal(str)
    shownToggled = Signal(str, bool)
    clearRequested = Signal(str)

    def __init__(self, names: dict[str, str], parent: QWidget | None = None):
        super().__init__(parent)
        grid = QGridLayout(self)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.setHorizontalSpacing(8)
        grid.setVerticalSpacing(2)
        group = QButtonGroup(self)
        self.radios: dict[str, QRadioButton] = {}
        self.shows: dict[str, QCheckBox] = {}
        self.states: dict[str, QLabel] = {}
        self.clears: dict[str, QPushButton] = {}
        for row, (name, title) in enumerate(names.items()):
            radio = QRadioButton(title)
            radio.setToolTip("The layer the eraser works on (the brush paints strokes, the pen edges, Keep the mask)")
            radio.toggled.connect(lambda on, n=name: on and self.targetChosen.emit(n))
            group.addButton(radio)
            show = QCheckBox("Show")
            show.setChecked(True)
            show.setToolTip("Show or hide the layer on the canvas (a hidden layer still counts)")
            show.toggled.connect(lambda on, n=name: self.shownToggled.emit(n, on))
            state = QLabel()
            state.setObjectName("status")
            clear = snug_button(QPushButton("Clear"))
            clear.setToolTip("Remove everything on the layer (one undoable step)")
            clear.clicked.connect(lambda _=False, n=name: self.clearRequested.emit(n))
            for column, widget in enumerate((radio, state, show, clear)):
                grid.addWidget(widget, row, column)
            self.radios[name], self.shows[name], self.states[name], self.clears[name] = radio, show, state, clear
        grid.setColumnStretch(1, 1)

    def show_target(self, name: str) -> None:
        radio = self.radios[name]
        if not radio.isChecked():
            radio.blockSignals(True)
            radio.setChecked(True)
            radio.blockSignals(False)

    def show_state(self, name: str, drawn: bool, shown: bool) -> None:
        self.states[name].setText("drawn" if drawn else "empty")
        self.clears[name].setEnabled(drawn)
        show = self.shows[name]
        if show.isChecked() != shown:
            show.blockSignals(True)
            show.setChecked(shown)
            show.blockSignals(False)


def slider(low: int, high: int, value: int, tip: str, text: Callable[[int], str]) -> tuple[QSlider, QWidget]:
    """A horizontal slider with its value shown on its right; returns the slider and the row."""
    bar = QSlider(Qt.Orientation.Horizontal)
    bar.setRange(low, high)
    bar.setToolTip(tip)
    label = QLabel()
    label.setMinimumWidth(44)
    label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
    bar.valueChanged.connect(lambda v: label.setText(text(v)))
    bar.setValue(value)
    label.setText(text(value))
    row = QWidget()
    layout = QHBoxLayout(row)
    layout.setContentsMargins(0, 0, 0, 0)
    layout.addWidget(bar, 1)
    layout.addWidget(label)
    return bar, row


class ResultView(QWidget):
    """The latest result (a live search's, or the candidate under the pointer) with a caption."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.pixmap = QPixmap()
        self.caption = ""
        self.placeholder = "Results appear here"
        self.setMinimumHeight(150)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)

    def sizeHint(self) -> QSize:
        return QSize(220, 180)

    def set_image(self, pixels: np.ndarray | None, caption: str = "") -> None:
        self.pixmap = QPixmap.fromImage(to_qimage(pixels)) if pixels is not None else QPixmap()
        self.caption = caption
        self.update()

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(FRAME)
        painter.drawRoundedRect(QRectF(self.rect()).adjusted(0.5, 0.5, -0.5, -0.5), 4, 4)
        area = QRectF(self.rect()).adjusted(6, 6, -6, -6)
        if self.pixmap.isNull():
            painter.setPen(LABEL)
            painter.drawText(area, Qt.AlignmentFlag.AlignCenter, self.placeholder)
            painter.end()
            return
        size = self.pixmap.size()
        scale = min(area.width() / size.width(), area.height() / size.height())
        # Whole multiples keep a 64 px picture's pixels square and sharp.
        scale = float(int(scale)) if scale >= 2 else scale
        target = QRectF(0, 0, size.width() * scale, size.height() * scale)
        target.moveCenter(area.center())
        painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, scale < 2)
        painter.drawPixmap(target, self.pixmap, QRectF(self.pixmap.rect()))
        if self.caption:
            font = QFont(self.font())
            font.setPointSizeF(8.5)
            painter.setFont(font)
            width = painter.fontMetrics().horizontalAdvance(self.caption) + 12
            badge = QRectF(target.left() + 4, target.bottom() - 22, width, 18)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(QColor(20, 20, 20, 200))
            painter.drawRoundedRect(badge, 9, 9)
            painter.setPen(QColor(240, 240, 240))
            painter.drawText(badge, Qt.AlignmentFlag.AlignCenter, self.caption)
        painter.end()


class CandidateStrip(QListWidget):
    """Thumbnails of the candidates, best first; a click picks one.

    Signals: ``picked(int)`` (the candidate's index), ``hovered(int)``.
    """

    picked = Signal(int)
    hovered = Signal(int)
    THUMB = 64

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setViewMode(QListView.ViewMode.IconMode)
        self.setFlow(QListView.Flow.LeftToRight)
        self.setWrapping(True)
        self.setResizeMode(QListView.ResizeMode.Adjust)
        self.setMovement(QListView.Movement.Static)
        self.setIconSize(QSize(self.THUMB, self.THUMB))
        self.setSpacing(3)
        self.setUniformItemSizes(True)
        self.setMouseTracking(True)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.setFixedHeight(self.THUMB + 34)
        self.itemClicked.connect(lambda item: self.picked.emit(self.row(item)))
        self.itemEntered.connect(lambda item: self.hovered.emit(self.row(item)))

    def set_items(self, items: Sequence[tuple[np.ndarray, str, str]]) -> None:
        """``(image (R, R, 3) uint8, label, tooltip)`` per candidate, in order."""
        self.clear()
        for pixels, label, tip in items:
            pixmap = QPixmap.fromImage(to_qimage(pixels)).scaled(
                self.THUMB, self.THUMB, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.FastTransformation)
            item = QListWidgetItem(QIcon(pixmap), label)
            item.setToolTip(f"{tip}. Click to use it")
            item.setTextAlignment(Qt.AlignmentFlag.AlignHCenter)
            self.addItem(item)
        self.setVisible(bool(items))
        self._fit_height()

    def _fit_height(self) -> None:
        """As tall as the rows of thumbnails the width holds, at most two."""
        per_row = max((self.width() - 8) // (self.THUMB + 14), 1)
        rows = min(-(-self.count() // per_row), 2)
        self.setFixedHeight(max(rows, 1) * (self.THUMB + 28) + 6)

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self._fit_height()


__all__ = ["ToolButtons", "ColourSwatches", "LayerList", "slider", "ResultView", "CandidateStrip", "TOOL_NAMES"]
