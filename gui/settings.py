"""Persistent user settings (``QSettings``, organisation and application "GANvas").

Everything the window remembers between runs goes through :class:`Settings`, so tests
can hand the window a settings object backed by a temporary INI file and never touch
the user's own settings. ``GANVAS_SETTINGS=/path/file.ini`` does the same for a whole
process (used by ``--screenshot`` runs in tests and scripts).
"""

from __future__ import annotations

import os
from pathlib import Path

from PySide6.QtCore import QByteArray, QSettings

from engine.images import DEFAULT_MAX_PIXELS

ORGANISATION = "GANvas"
APPLICATION = "GANvas"
ENV_VARIABLE = "GANVAS_SETTINGS"
MAX_RECENT = 10


def open_settings(path: str | os.PathLike | None = None) -> QSettings:
    """The settings store: an INI file at ``path`` (or ``$GANVAS_SETTINGS``), else the user's."""
    path = path or os.environ.get(ENV_VARIABLE)
    if path:
        return QSettings(str(path), QSettings.Format.IniFormat)
    return QSettings(QSettings.Format.IniFormat, QSettings.Scope.UserScope, ORGANISATION, APPLICATION)


class Settings:
    """Typed access to the few values GANvas keeps: recent files and models, geometry, export choices."""

    def __init__(self, store: QSettings | None = None):
        self.store = store if store is not None else open_settings()

    # Recent files and models -------------------------------------------------------

    def recent_files(self) -> list[Path]:
        """Most recent first; at most ``MAX_RECENT``."""
        return self._paths("recent/files")

    def add_recent(self, path: str | os.PathLike) -> list[Path]:
        return self._add_path("recent/files", path)

    def clear_recent(self) -> None:
        self._set_paths("recent/files", [])

    def recent_models(self) -> list[Path]:
        """Checkpoint files loaded lately, most recent first; at most ``MAX_RECENT``."""
        return self._paths("recent/models")

    def add_recent_model(self, path: str | os.PathLike) -> list[Path]:
        return self._add_path("recent/models", path)

    def clear_recent_models(self) -> None:
        self._set_paths("recent/models", [])

    def recent_sr_models(self) -> list[Path]:
        """Super-resolution model files opened in the Upscale panel, most recent first."""
        return self._paths("recent/sr_models")

    def add_recent_sr_model(self, path: str | os.PathLike) -> list[Path]:
        return self._add_path("recent/sr_models", path)

    def _paths(self, key: str) -> list[Path]:
        value = self.store.value(key, [])
        if isinstance(value, str):  # QSettings returns a lone string for one-item lists
            value = [value]
        return [Path(v) for v in (value or []) if v][:MAX_RECENT]

    def _add_path(self, key: str, path: str | os.PathLike) -> list[Path]:
        path = Path(path).resolve()
        self._set_paths(key, ([path] + [p for p in self._paths(key) if p != path])[:MAX_RECENT])
        return self._paths(key)

    def _set_paths(self, key: str, paths: list[Path]) -> None:
        self.store.setValue(key, [str(p) for p in paths])
        self.store.sync()

    # Window -------------------------------------------------------------------------

    def geometry(self) -> QByteArray | None:
        value = self.store.value("window/geometry")
        return value if isinstance(value, QByteArray) and not value.isEmpty() else None

    def window_state(self) -> QByteArray | None:
        value = self.store.value("window/state")
        return value if isinstance(value, QByteArray) and not value.isEmpty() else None

    def save_window(self, geometry: QByteArray, state: QByteArray) -> None:
        self.store.setValue("window/geometry", geometry)
        self.store.setValue("window/state", state)
        self.store.sync()

    # Files --------------------------------------------------------------------------

    def last_dir(self) -> Path | None:
        value = self.store.value("files/last_dir", "")
        return Path(value) if value else None

    def set_last_dir(self, folder: str | os.PathLike) -> None:
        self.store.setValue("files/last_dir", str(folder))

    def last_model_dir(self) -> Path | None:
        """The folder of the last checkpoint opened (where Open Checkpoint starts)."""
        value = self.store.value("models/last_dir", "")
        return Path(value) if value else None

    def set_last_model_dir(self, folder: str | os.PathLike) -> None:
        self.store.setValue("models/last_dir", str(folder))

    def jpeg_quality(self) -> int:
        return self._int("files/jpeg_quality", 92, 1, 100)

    def set_jpeg_quality(self, quality: int) -> None:
        self.store.setValue("files/jpeg_quality", int(quality))

    def max_pixels(self) -> int:
        """Images above this many pixels are refused at open (see ``engine.images``)."""
        return self._int("files/max_pixels", DEFAULT_MAX_PIXELS, 1, 2**40)

    def set_max_pixels(self, pixels: int) -> None:
        self.store.setValue("files/max_pixels", int(pixels))

    def _int(self, key: str, default: int, low: int, high: int) -> int:
        try:
            value = int(self.store.value(key, default))
        except (TypeError, ValueError):
            return default
        return value if low <= value <= high else default
