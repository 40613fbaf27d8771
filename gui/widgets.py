"""The small building blocks every panel shares: labels, the status line, the accent and cancel
buttons, the scrolling column of controls, and the style sheet that gives them their look."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QAbstractButton,
    QComboBox,
    QFormLayout,
    QFrame,
    QLabel,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QStyle,
    QStyleOptionComboBox,
    QStylePainter,
    QVBoxLayout,
    QWidget,
)

# Colours of the panels' painted views (curves, result strips): their background and their dimmed text.
FRAME = QColor(30, 30, 32)
LABEL = QColor(154, 154, 160)

STYLE = """
QLabel#section { color: #8c8c92; font-size: 9pt; font-weight: 600; letter-spacing: 1px; padding-top: 6px; }
QLabel[role="key"] { color: #9a9aa0; }
QLabel#status { color: #9a9aa0; }
QFrame#rule { color: #3a3a3e; }
QPushButton#generate, QPushButton#upscale { padding: 6px 12px; font-weight: 600; color: white; background: #2f73c4;
                                            border: 1px solid #1c1c1e; border-radius: 3px; }
QPushButton#generate:hover, QPushButton#upscale:hover { background: #3a82d6; }
QPushButton#generate:pressed, QPushButton#upscale:pressed { background: #28629f; }
QPushButton#generate:disabled, QPushButton#upscale:disabled { color: #78787c; background: #3a3a3e; }
QPushButton#cancel { padding: 6px 12px; }
"""


def section_label(title: str) -> QLabel:
    """A section's heading, in capitals."""
    label = QLabel(title.upper())
    label.setObjectName("section")
    return label


def key_label(text: str) -> QLabel:
    """The dimmed name in front of a value or a control."""
    label = QLabel(text)
    label.setProperty("role", "key")
    return label


def status_label(text: str = "") -> QLabel:
    """A dimmed line saying what the panel does or waits for; it wraps, so a long message never widens the dock."""
    label = QLabel(text)
    label.setObjectName("status")
    label.setWordWrap(True)
    return label


def accent_button(text: str, tip: str, name: str = "generate") -> QPushButton:
    """The panel's main action (Generate, Start, Run), drawn in the accent colour; ``name`` is its style id."""
    button = QPushButton(text)
    button.setObjectName(name)
    button.setToolTip(tip)
    return button


def cancel_button(tip: str) -> QPushButton:
    """The Cancel button beside an accent button, as tall as it."""
    button = QPushButton("Cancel")
    button.setObjectName("cancel")
    button.setToolTip(tip)
    return button


def snug_button(button: QAbstractButton) -> QAbstractButton:
    """Let ``button`` narrow down to its (fixed) text: Fusion keeps every push button with text at least 80 px
    wide, which a row of three short buttons cannot afford in a dock."""
    style = button.style()
    padding = 2 * (style.pixelMetric(QStyle.PixelMetric.PM_ButtonMargin, None, button)
                   + style.pixelMetric(QStyle.PixelMetric.PM_DefaultFrameWidth, None, button)) + 8
    button.setMinimumWidth(button.fontMetrics().horizontalAdvance(button.text()) + padding)
    return button


class CompactComboBox(QComboBox):
    """A combo box as narrow as about ``chars`` characters, not as wide as its longest item, so a long
    model name never widens the dock: the current text is elided, the open list shows the items whole."""

    def __init__(self, chars: int = 12, parent: QWidget | None = None):
        super().__init__(parent)
        self.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.setMinimumContentsLength(chars)

    def paintEvent(self, event: Any) -> None:
        painter = QStylePainter(self)
        option = QStyleOptionComboBox()
        self.initStyleOption(option)
        painter.drawComplexControl(QStyle.ComplexControl.CC_ComboBox, option)
        field = self.style().subControlRect(QStyle.ComplexControl.CC_ComboBox, option,
                                            QStyle.SubControl.SC_ComboBoxEditField, self)
        width = field.width() - 2
        if not option.currentIcon.isNull():
            width -= option.iconSize.width() + 4
        option.currentText = self.fontMetrics().elidedText(option.currentText, Qt.TextElideMode.ElideRight, width)
        painter.drawControl(QStyle.ControlElement.CE_ComboBoxLabel, option)


def column(widget: QWidget) -> QVBoxLayout:
    """``widget``'s layout as a panel's column of controls: the margins and spacing every panel uses."""
    layout = QVBoxLayout(widget)
    layout.setContentsMargins(10, 6, 10, 10)
    layout.setSpacing(6)
    return layout


def form_layout(parent: QWidget | None = None, row_spacing: int = 8) -> QFormLayout:
    """Key labels beside controls that take the rest of the width (``parent``'s layout, if given)."""
    form = QFormLayout(parent)
    form.setContentsMargins(0, 0, 0, 0)
    form.setHorizontalSpacing(12)
    form.setVerticalSpacing(row_spacing)
    form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
    return form


def scrolling_column(panel: QWidget) -> tuple[QVBoxLayout, QScrollArea]:
    """Fill ``panel`` with a frameless scroll area, up and down only, around a :func:`column`.

    Returns the column's layout, to add the controls to, and the scroll area.
    """
    content = QWidget()
    layout = column(content)
    scroll = QScrollArea()
    scroll.setWidget(content)
    scroll.setWidgetResizable(True)
    scroll.setFrameShape(QFrame.Shape.NoFrame)
    scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    outer = QVBoxLayout(panel)
    outer.setContentsMargins(0, 0, 0, 0)
    outer.addWidget(scroll)
    return layout, scroll


class ElidedLabel(QLabel):
    """A one-line label that shortens its text in the middle instead of widening the panel."""

    def __init__(self, text: str = "", parent: QWidget | None = None):
        super().__init__(parent)
        self._full = text
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.set_full_text(text)

    def set_full_text(self, text: str) -> None:
        self._full = text
        self.setToolTip(text)
        self._elide()

    def full_text(self) -> str:
        return self._full

    def resizeEvent(self, event: Any) -> None:
        super().resizeEvent(event)
        self._elide()

    def _elide(self) -> None:
        width = max(self.width(), 40)
        super().setText(self.fontMetrics().elidedText(self._full, Qt.TextElideMode.ElideMiddle, width))
