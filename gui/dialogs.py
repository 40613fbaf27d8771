"""Dialogs: resize, About (with the credits), and non-blocking error boxes.

Dialogs that ask the user something are shown by the window through small hook
methods (``MainWindow.ask_resize`` ...), so tests can answer them without a nested
event loop; error boxes and the About box never block (``open()``, not ``exec()``).
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QFont
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QSpinBox,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

from engine import __version__
from gui.resources import CREDITS_FILE, icon

MAX_SIDE = 65536  # engine.ops.transform.resize refuses more
GAN_SIZES = (256, 512, 1024)  # the square sizes common GAN checkpoints were trained at


class ResizeDialog(QDialog):
    """Ask for a new size, optionally keeping the aspect ratio; presets for GAN sizes."""

    def __init__(self, width: int, height: int, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Resize Image")
        self._ratio = width / height
        self._syncing = False
        self.width_box = self._spin(width)
        self.height_box = self._spin(height)
        self.keep_ratio = QCheckBox("Keep aspect ratio")
        self.keep_ratio.setChecked(True)
        self.presets = QComboBox()
        self.presets.addItem("Custom")
        for side in GAN_SIZES:
            self.presets.addItem(f"{side} × {side} (square)", side)
        self.presets.currentIndexChanged.connect(self._preset_chosen)
        self.width_box.valueChanged.connect(lambda value: self._follow(value, from_width=True))
        self.height_box.valueChanged.connect(lambda value: self._follow(value, from_width=False))

        form = QFormLayout()
        form.addRow("Preset:", self.presets)
        form.addRow("Width:", self.width_box)
        form.addRow("Height:", self.height_box)
        form.addRow("", self.keep_ratio)
        form.addRow("", QLabel(f"Now {width} × {height} px"))
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(buttons)

    @staticmethod
    def _spin(value: int) -> QSpinBox:
        box = QSpinBox()
        box.setRange(1, MAX_SIDE)
        box.setValue(value)
        box.setSuffix(" px")
        box.setMinimumWidth(120)
        return box

    def _follow(self, value: int, from_width: bool) -> None:
        if self._syncing or not self.keep_ratio.isChecked():
            return
        self._syncing = True  # setting one box must not bounce back through the other
        if from_width:
            self.height_box.setValue(max(1, round(value / self._ratio)))
        else:
            self.width_box.setValue(max(1, round(value * self._ratio)))
        self._syncing = False

    def _preset_chosen(self, index: int) -> None:
        side = self.presets.itemData(index)
        if side:
            self.keep_ratio.setChecked(False)  # a square preset overrides the ratio
            self.width_box.setValue(side)
            self.height_box.setValue(side)

    def size_chosen(self) -> tuple[int, int]:
        return self.width_box.value(), self.height_box.value()


def credits_text() -> str:
    """The credits shown in the About box (Markdown); models and data add their lines here."""
    try:
        return CREDITS_FILE.read_text(encoding="utf-8")
    except OSError:
        return "GANvas — credits file missing."


class AboutDialog(QDialog):
    """Help → About GANvas: version, a line on what it is, and the credits."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("About GANvas")
        self.resize(520, 460)
        title = QLabel(f"GANvas {__version__}")
        font = QFont(title.font())
        font.setPointSizeF(font.pointSizeF() * 1.8)
        font.setBold(True)
        title.setFont(font)
        blurb = QLabel("An image editor whose tools are generative models:\ninvert, edit, sketch and upscale.")
        blurb.setWordWrap(True)
        logo = QLabel()
        logo.setPixmap(icon("ganvas").pixmap(64, 64))
        logo.setAlignment(Qt.AlignmentFlag.AlignTop)
        header = QHBoxLayout()
        words = QVBoxLayout()
        words.addWidget(title)
        words.addWidget(blurb)
        header.addWidget(logo)
        header.addSpacing(8)
        header.addLayout(words, 1)
        self.credits = QTextBrowser()
        self.credits.setOpenExternalLinks(True)
        self.credits.setMarkdown(credits_text())
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(header)
        layout.addSpacing(6)
        layout.addWidget(QLabel("<b>Credits</b>"))
        layout.addWidget(self.credits, 1)
        layout.addWidget(buttons)


def error_box(parent: QWidget, title: str, message: str) -> QMessageBox:
    """Show ``message`` in a window-modal error box without blocking the caller."""
    box = QMessageBox(QMessageBox.Icon.Critical, title, message, QMessageBox.StandardButton.Ok, parent)
    box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
    box.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)  # so it can be copied
    box.open()
    return box
