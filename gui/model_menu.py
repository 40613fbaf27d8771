"""The Model menu: Open Checkpoint…, Open Recent Model, and the catalogue's models by id.

The menu's fixed part (the Open Checkpoint action) is declared with the other actions in
``gui/menus.py``; this module fills what changes: the recent checkpoints (kept in
``QSettings`` through :class:`~gui.settings.Settings`) and the models the catalogue
(``engine.models.catalog.available``) knows, re-read each time the menu opens so a file
dropped into a model folder shows up without a restart. Every entry loads through
:meth:`gui.model_state.ModelState.load`, a job on the worker thread.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QMenu

from engine.models.catalog import available, search_dirs

if TYPE_CHECKING:
    from gui.main_window import MainWindow

# Catalogue entries whose card names another kind (an upscaler, say) are not generators.
GENERATOR_KINDS = ("generator", "unknown")


class ModelMenu(QObject):
    """Fills ``menu`` below its Open Checkpoint action and loads what the user picks."""

    def __init__(self, window: MainWindow, menu: QMenu):
        super().__init__(window)
        self.window, self.menu = window, menu
        self.recent_menu = menu.addMenu("Open &Recent Model")
        self.clear_recent = QAction("&Clear Recent Models", self)
        self.clear_recent.triggered.connect(self._clear_recent)
        menu.addSection("Catalogue")
        self.catalogue_actions: list[QAction] = []
        menu.aboutToShow.connect(self.refresh)
        self.recent_menu.aboutToShow.connect(self._fill_recent)
        window.model.loaded.connect(self._remember)
        self.refresh()

    def open_dialog(self) -> int | None:
        """Ask for a checkpoint file (the window's hook) and load it; the job id."""
        path = self.window.choose_checkpoint_path()
        return self.window.model.load(path) if path is not None else None

    def refresh(self) -> None:
        self._fill_recent()
        self._fill_catalogue()

    def _remember(self, path: Path) -> None:
        settings = self.window.settings
        settings.add_recent_model(path)
        settings.set_last_model_dir(path.parent)
        self._fill_recent()

    def _clear_recent(self) -> None:
        self.window.settings.clear_recent_models()
        self._fill_recent()

    def _fill_recent(self) -> None:
        self.recent_menu.clear()
        paths = self.window.settings.recent_models()
        for index, path in enumerate(paths, start=1):
            action = self.recent_menu.addAction(f"&{index % 10}  {path.name}")
            self._mark(action, path, str(path))
            action.triggered.connect(lambda _=False, p=path: self.window.model.load(p))
        if paths:
            self.recent_menu.addSeparator()
        self.recent_menu.addAction(self.clear_recent)
        self.clear_recent.setEnabled(bool(paths))
        self.recent_menu.setEnabled(bool(paths))

    def _fill_catalogue(self) -> None:
        for action in self.catalogue_actions:
            self.menu.removeAction(action)
            action.deleteLater()
        self.catalogue_actions = []
        entries = [e for e in available() if e.kind in GENERATOR_KINDS]
        for entry in entries:
            action = QAction(entry.id, self.menu)
            tip = f"{entry.title} — {entry.path} ({entry.size_mb:.1f} MB)"
            self._mark(action, entry.path, tip)
            action.triggered.connect(lambda _=False, model_id=entry.id: self.window.model.load(model_id))
            self.catalogue_actions.append(action)
        if not entries:
            placeholder = QAction("No models in the catalogue", self.menu)
            placeholder.setEnabled(False)
            placeholder.setToolTip("Put checkpoints in: " + ", ".join(str(d) for d in search_dirs()))
            self.catalogue_actions.append(placeholder)
        self.menu.addActions(self.catalogue_actions)
        self.menu.setToolTipsVisible(True)

    def _mark(self, action: QAction, path: Path, tip: str) -> None:
        """Tool tip and status tip; a check mark on the model that is loaded now."""
        action.setToolTip(tip)
        action.setStatusTip(tip)
        loaded = self.window.model.path is not None and self.window.model.path == path.resolve()
        action.setCheckable(loaded)  # only the loaded one: Fusion draws empty boxes for the rest
        action.setChecked(loaded)
