"""Where the files that ship with GANvas live: icons, sample images, credits."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtGui import QIcon

RESOURCES = Path(__file__).resolve().parents[1] / "resources"
ICONS = RESOURCES / "icons"
SAMPLE_IMAGE = RESOURCES / "samples" / "sample.jpg"
CREDITS_FILE = RESOURCES / "CREDITS.md"


def icon(name: str) -> QIcon:
    """The SVG icon ``resources/icons/<name>.svg`` (an empty icon if it is missing)."""
    path = ICONS / f"{name}.svg"
    return QIcon(str(path)) if path.is_file() else QIcon()
