"""The look: Qt's Fusion style with a dark neutral palette.

An image editor wants a dark, colourless frame so the photo's own colours are judged
against neutral grey; the one accent colour marks selection and focus.
"""

from __future__ import annotations

from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QApplication

WINDOW = QColor(45, 45, 48)
BASE = QColor(30, 30, 32)
TEXT = QColor(228, 228, 228)
DISABLED_TEXT = QColor(120, 120, 124)
BUTTON = QColor(58, 58, 62)
ACCENT = QColor(74, 158, 255)

STYLE_SHEET = """
QStatusBar { border-top: 1px solid #1c1c1e; }
QStatusBar QLabel { padding: 0 6px; }
QStatusBar::item { border: none; }
QToolBar { border: none; spacing: 2px; padding: 2px; }
QDockWidget::title { padding: 5px 8px; background: #38383c; }
QProgressBar { border: 1px solid #1c1c1e; border-radius: 3px; background: #1e1e20; text-align: center; }
QProgressBar::chunk { background: #4a9eff; border-radius: 2px; }
"""


def dark_palette() -> QPalette:
    palette = QPalette()
    roles = QPalette.ColorRole
    for role, colour in (
        (roles.Window, WINDOW),
        (roles.WindowText, TEXT),
        (roles.Base, BASE),
        (roles.AlternateBase, WINDOW),
        (roles.ToolTipBase, BASE),
        (roles.ToolTipText, TEXT),
        (roles.PlaceholderText, DISABLED_TEXT),
        (roles.Text, TEXT),
        (roles.Button, BUTTON),
        (roles.ButtonText, TEXT),
        (roles.BrightText, QColor(255, 80, 80)),
        (roles.Link, ACCENT),
        (roles.Highlight, ACCENT),
        (roles.HighlightedText, QColor(255, 255, 255)),
        (roles.Light, QColor(72, 72, 76)),
        (roles.Midlight, QColor(62, 62, 66)),
        (roles.Mid, QColor(40, 40, 42)),
        (roles.Dark, QColor(24, 24, 26)),
        (roles.Shadow, QColor(0, 0, 0)),
    ):
        palette.setColor(role, colour)
    disabled = QPalette.ColorGroup.Disabled
    for role in (roles.WindowText, roles.Text, roles.ButtonText):
        palette.setColor(disabled, role, DISABLED_TEXT)
    palette.setColor(disabled, roles.Highlight, QColor(80, 80, 84))
    return palette


def apply_theme(app: QApplication) -> None:
    """Fusion style, dark palette and the few style-sheet touches above."""
    app.setStyle("Fusion")
    app.setPalette(dark_palette())
    app.setStyleSheet(STYLE_SHEET)
