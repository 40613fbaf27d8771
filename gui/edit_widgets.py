"""The Edit panel's widgets: a direction's row, a strength slider centred on 0, the animation dialog.

They show values and report the user's changes; what a change does is the panel's business
(``gui/edit_panel.py``).
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QRectF, Qt, Signal
from PySide6.QtGui import QColor, QPainter, QPaintEvent
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QFrame,
    QGridLayout,
    QLabel,
    QSizePolicy,
    QSlider,
    QSpinBox,
    QStyle,
    QStyleOptionSlider,
    QVBoxLayout,
    QWidget,
)
from superqt import QRangeSlider

from gui.edit_state import AnimationRequest, direction_title
from gui.generate_panel import MAX_SEED
from gui.theme import ACCENT, DISABLED_TEXT
from gui.widgets import STYLE, ElidedLabel

STRENGTH_MAX, STEPS = 6.0, 100  # slider ticks per standard deviation; house-gan directions reach 6
TITLE_WIDTH = 92  # px: "GANSpace 10" in bold fits
EDIT_STYLE = STYLE + """
QLabel#title { font-weight: 600; }
QLabel#layers { color: #9a9aa0; font-size: 8pt; }
QLabel#group { color: #b8b8be; font-weight: 600; padding-top: 4px; }
DirectionRow { border-left: 2px solid transparent; }
DirectionRow[selected="true"] { border-left: 2px solid #4a9eff; background: #35353a; }
"""


def value_spin(low: float, high: float, decimals: int = 2, step: float = 0.1, width: int = 52) -> QDoubleSpinBox:
    box = QDoubleSpinBox()
    box.setRange(low, high)
    box.setDecimals(decimals)
    box.setSingleStep(step)
    box.setKeyboardTracking(False)  # a typed "1.5" is one change, not "1" and then "1.5"
    box.setButtonSymbols(QDoubleSpinBox.ButtonSymbols.NoButtons)
    box.setAlignment(Qt.AlignmentFlag.AlignRight)
    box.setFixedWidth(width)
    return box


def seed_spin(tip: str) -> QSpinBox:
    box = QSpinBox()
    box.setRange(0, MAX_SEED)
    box.setKeyboardTracking(False)
    box.setToolTip(tip)
    # Qt asks 120 px for ten digits and the arrows, more than they take; beside a check box and a
    # combo that would widen the dock.
    box.setMinimumWidth(box.fontMetrics().horizontalAdvance("9" * len(str(MAX_SEED))) + 30)
    return box


def range_slider(num_ws: int, tip: str) -> QRangeSlider:
    slider = QRangeSlider(Qt.Orientation.Horizontal)
    slider.setRange(0, num_ws - 1)
    slider.setToolTip(tip)
    slider.setProperty("barColor", QColor(86, 110, 142))  # quieter than the strength fill: a setting, not a value
    return slider


class BipolarSlider(QSlider):
    """A horizontal slider whose fill runs from 0 to the handle, with a mark at 0.

    A strength slider is signed: Fusion's fill from the left end would read as "a little"
    at -3 and "a lot" at +3.
    """

    def paintEvent(self, event: QPaintEvent) -> None:
        option = QStyleOptionSlider()
        self.initStyleOption(option)
        style, cc = self.style(), QStyle.ComplexControl.CC_Slider
        groove = style.subControlRect(cc, option, QStyle.SubControl.SC_SliderGroove, self)
        handle = style.subControlRect(cc, option, QStyle.SubControl.SC_SliderHandle, self)
        span = groove.width() - handle.width()
        zero = groove.left() + handle.width() / 2 + QStyle.sliderPositionFromValue(
            self.minimum(), self.maximum(), 0, span)
        x, y = handle.center().x(), groove.center().y()
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(QColor(24, 24, 26))
        painter.drawRoundedRect(QRectF(groove.left() + 1, y - 2, groove.width() - 2, 4), 2, 2)
        painter.setBrush(ACCENT if self.isEnabled() else DISABLED_TEXT)
        painter.drawRect(QRectF(min(zero, x), y - 2, abs(x - zero), 4))
        painter.setBrush(QColor(140, 140, 146))
        painter.drawRect(QRectF(zero - 0.5, y - 5, 1, 10))
        option.subControls = QStyle.SubControl.SC_SliderHandle  # the handle on top, drawn by the style
        style.drawComplexControl(cc, option, painter, self)
        painter.end()


def slots_text(layers: tuple[int, int]) -> str:
    return f"{layers[0]}–{layers[1] - 1}" if layers[1] - layers[0] > 1 else str(layers[0])


class DirectionRow(QFrame):
    """One direction: title, layer range (w slots, inclusive as shown), strength slider and box.

    Signals: ``edited(spec, strength)``, ``layersEdited(spec, (start, stop))`` half-open,
    ``touched(spec)`` when a drag begins or a value is typed (a new undo step; selects the row).
    """

    edited = Signal(str, float)
    layersEdited = Signal(str, object)
    touched = Signal(str)

    def __init__(self, spec: str, tip: str, num_ws: int, parent: QWidget | None = None):
        super().__init__(parent)
        self.spec = spec
        self.setToolTip(tip)
        self.title = ElidedLabel(direction_title(spec))
        self.title.setObjectName("title")
        self.title.setFixedWidth(TITLE_WIDTH)  # every row's layer slider starts at the same x
        self.title.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Preferred)
        self.layers = range_slider(num_ws, "The w slots this direction moves: coarse (pose, shape) on the "
                                            "left, fine (colour, texture) on the right")
        self.layers_label = QLabel()
        self.layers_label.setObjectName("layers")
        self.layers_label.setFixedWidth(30)
        self.layers_label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.slider = BipolarSlider(Qt.Orientation.Horizontal)
        self.slider.setRange(-round(STRENGTH_MAX * STEPS), round(STRENGTH_MAX * STEPS))
        self.slider.setPageStep(25)
        self.slider.setToolTip("Strength in standard deviations of the model's latents; double-click the box to type")
        self.value = value_spin(-STRENGTH_MAX, STRENGTH_MAX)
        self.value.setToolTip(self.slider.toolTip())
        grid = QGridLayout(self)
        grid.setContentsMargins(6, 3, 2, 3)
        grid.setHorizontalSpacing(6)
        grid.setVerticalSpacing(1)
        grid.addWidget(self.title, 0, 0)
        grid.addWidget(self.layers, 0, 1)
        grid.addWidget(self.layers_label, 0, 2)
        grid.addWidget(self.slider, 1, 0, 1, 2)
        grid.addWidget(self.value, 1, 2)
        grid.setColumnStretch(1, 1)
        self.slider.sliderPressed.connect(lambda: self.touched.emit(spec))
        self.layers.sliderPressed.connect(lambda: self.touched.emit(spec))
        self.slider.valueChanged.connect(lambda ticks: self._changed(ticks / STEPS, from_slider=True))
        self.value.valueChanged.connect(lambda value: self._changed(value, from_slider=False))
        self.layers.valueChanged.connect(self._layers_changed)

    def strength(self) -> float:
        return round(self.value.value(), 2)

    def set_values(self, strength: float, layers: tuple[int, int]) -> None:
        """Show values without emitting anything (undo, reopen)."""
        for widget, value in ((self.slider, round(strength * STEPS)), (self.value, strength),
                              (self.layers, (layers[0], layers[1] - 1))):
            widget.blockSignals(True)
            widget.setValue(value)
            widget.blockSignals(False)
        self.layers_label.setText(slots_text(layers))

    def set_selected(self, selected: bool) -> None:
        self.setProperty("selected", selected)
        self.style().unpolish(self)
        self.style().polish(self)

    def _changed(self, strength: float, from_slider: bool) -> None:
        other = self.value if from_slider else self.slider
        other.blockSignals(True)
        other.setValue(strength if from_slider else round(strength * STEPS))
        other.blockSignals(False)
        if not from_slider or not self.slider.isSliderDown():
            self.touched.emit(self.spec)  # a typed value or a key press: a step of its own
        self.edited.emit(self.spec, round(strength, 2))

    def _layers_changed(self, value: tuple[int, int]) -> None:
        layers = (int(value[0]), int(value[1]) + 1)
        self.layers_label.setText(slots_text(layers))
        if not self.layers.isSliderDown():
            self.touched.emit(self.spec)
        self.layersEdited.emit(self.spec, layers)


class AnimationDialog(QDialog):
    """What to animate (a direction sweep or the interpolation), how long, how fast; then where."""

    def __init__(self, choices: list[tuple[str, str | None]], parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Export Animation")
        self.what = QComboBox()
        for text, spec in choices:
            self.what.addItem(text, spec)
        self.amplitude = QDoubleSpinBox()
        self.amplitude.setRange(0.25, 8.0)
        self.amplitude.setValue(3.0)
        self.amplitude.setPrefix("± ")
        self.amplitude.setSuffix(" σ")
        self.frames = QSpinBox()
        self.frames.setRange(2, 1000)
        self.frames.setValue(48)
        self.fps = QSpinBox()
        self.fps.setRange(1, 60)
        self.fps.setValue(24)
        self.fps.setSuffix(" fps")
        self.what.currentIndexChanged.connect(lambda _: self.amplitude.setEnabled(self.what.currentData() is not None))
        self.amplitude.setEnabled(self.what.currentData() is not None)
        form = QFormLayout()
        form.addRow("Animate:", self.what)
        form.addRow("Sweep:", self.amplitude)
        form.addRow("Frames:", self.frames)
        form.addRow("Speed:", self.fps)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        buttons.addButton("Export…", QDialogButtonBox.ButtonRole.AcceptRole)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(buttons)

    def request(self, path: Path) -> AnimationRequest:
        return AnimationRequest(path, self.what.currentData(), self.frames.value(), float(self.fps.value()),
                                self.amplitude.value())
