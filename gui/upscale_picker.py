"""The Upscale panel's model picker: catalogue SR models, recent files, "Open model file…", and the facts.

A model loads as a job on the worker (``gui/upscale_jobs.py``); the picker keeps the last model
that loaded, so a bad file changes nothing but the error the window shows. Model files opened
here are remembered as recent SR models in the settings; catalogue models are known by id.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Callable

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QFileDialog, QFormLayout, QLabel, QVBoxLayout, QWidget

from gui.upscale_jobs import SR_FILTER, LoadedSR, SRInfo, load_sr_job, sr_catalogue
from gui.widgets import CompactComboBox, ElidedLabel, key_label

if TYPE_CHECKING:
    from gui.main_window import MainWindow

OPEN_ITEM = "<open>"  # the "Open model file…" entry's data (every other entry's data is a model spec)


class _ModelCombo(CompactComboBox):
    """A combo that says when its list is about to open, so the catalogue is re-read then."""

    aboutToShow = Signal()

    def showPopup(self) -> None:
        self.aboutToShow.emit()
        super().showPopup()


def figures_form(keys: tuple[str, ...]) -> tuple[QWidget, dict[str, QLabel]]:
    """A two-column form of grey keys and selectable values; the labels by key."""
    box = QWidget()
    form = QFormLayout(box)
    form.setContentsMargins(0, 0, 0, 0)
    form.setHorizontalSpacing(12)
    form.setVerticalSpacing(3)
    labels = {}
    for key in keys:
        value = ElidedLabel() if key == "File" else QLabel()
        value.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        value.setWordWrap(key != "File")
        labels[key] = value
        form.addRow(key_label(key), value)
    return box, labels


def _count(n: int) -> str:
    return f"{n / 1e6:.1f} M" if n >= 1e6 else f"{n / 1e3:.1f} k" if n >= 1e3 else str(n)


class ModelPicker(QWidget):
    """The SR model picker and the loaded model's facts; loads on the worker, keeps the last good model.

    Signals: ``modelLoaded(SRInfo)``, ``loadingChanged(bool)``, ``message(str)`` for the panel's status line.
    """

    modelLoaded = Signal(object)
    loadingChanged = Signal(bool)
    message = Signal(str)
    KEYS = ("File", "Architecture", "Scale", "Precision", "Tiling", "Parameters")

    def __init__(self, window: MainWindow, parent: QWidget | None = None):
        super().__init__(parent)
        self.window, self.runner = window, window.runner
        self.loaded: LoadedSR | None = None
        self.loading: str | None = None  # the spec being loaded
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(6)
        self.combo = _ModelCombo(16)
        self.combo.setToolTip("The super-resolution model: house models, recent files, or any "
                              ".pth/.safetensors that spandrel reads (Real-ESRGAN, SwinIR, HAT, DAT, SPAN, …)")
        self.combo.aboutToShow.connect(self.refresh)
        self.combo.activated.connect(self._chosen)
        self.facts, self.labels = figures_form(self.KEYS)
        layout.addWidget(self.combo)
        layout.addWidget(self.facts)
        self.refresh()
        self._show(None)

    def choose_model_path(self) -> Path | None:
        """The blocking question (tests replace it)."""
        folder = str(self.window.settings.last_model_dir() or Path.home())
        name, _ = QFileDialog.getOpenFileName(self.window, "Open Super-Resolution Model", folder, SR_FILTER)
        return Path(name) if name else None

    def refresh(self) -> None:
        """Re-read the catalogue and the recent files; the selection stays where it was."""
        current = self.selected_spec() or (self.loaded.info.spec if self.loaded is not None else None)
        combo = self.combo
        combo.blockSignals(True)
        combo.clear()
        entries = sr_catalogue()
        for entry in entries:
            combo.addItem(entry.id if entry.title == entry.id else f"{entry.id} — {entry.title}", entry.id)
            combo.setItemData(combo.count() - 1, str(entry.path), Qt.ItemDataRole.ToolTipRole)
        catalogued = {e.path.resolve() for e in entries}
        for path in self.window.settings.recent_sr_models():
            if path.is_file() and path.resolve() not in catalogued:
                combo.addItem(path.name, str(path))
                combo.setItemData(combo.count() - 1, str(path), Qt.ItemDataRole.ToolTipRole)
        if combo.count() == 0:
            combo.addItem("No model yet: open a file…", "")
        combo.insertSeparator(combo.count())
        combo.addItem("Open model file…", OPEN_ITEM)
        combo.setCurrentIndex(max(combo.findData(current) if current else -1, 0))
        combo.blockSignals(False)

    def selected_spec(self) -> str | None:
        data = self.combo.currentData()
        return data if isinstance(data, str) and data and data != OPEN_ITEM else None

    def _select(self, spec: str | None) -> None:
        self.combo.setCurrentIndex(max(self.combo.findData(spec) if spec else -1, 0))

    def _chosen(self, index: int) -> None:
        if self.combo.itemData(index) == OPEN_ITEM:
            self.open_model_file()
        elif self.selected_spec() is not None:
            self.load(self.selected_spec())

    def open_model_file(self) -> int | None:
        """Ask for a model file (the hook) and load it; the job id."""
        path = self.choose_model_path()
        if path is None:
            self._select(self.loaded.info.spec if self.loaded is not None else None)
            return None
        return self.load(path)

    def load(self, model: str | Path, then: Callable[[], object] | None = None) -> int:
        """Load a catalogue id or a model file on the worker; ``then()`` runs once it is in place.

        A file that fails to load fails the job (the window shows why); the previous model stays.
        """
        spec = str(Path(model).resolve()) if isinstance(model, Path) or Path(model).is_file() else str(model)
        self._set_loading(spec)
        self.message.emit(f"Loading {Path(spec).name}…")

        def failed(_: str) -> None:
            self._select(self.loaded.info.spec if self.loaded is not None else None)
            self._set_loading(None)
            self.message.emit(f"Could not load {Path(spec).name}; see the error.")

        return self.runner.submit(load_sr_job, spec, title=f"Load upscaler {Path(spec).name}",
                                  on_result=lambda loaded: self._loaded(loaded, then), on_error=failed)

    def _set_loading(self, spec: str | None) -> None:
        self.loading = spec
        self.loadingChanged.emit(spec is not None)

    def _loaded(self, loaded: LoadedSR, then: Callable[[], object] | None) -> None:
        self.loaded, info = loaded, loaded.info
        if Path(info.spec).is_absolute():  # a file, not a catalogue id: remember it
            self.window.settings.add_recent_sr_model(info.path)
            self.window.settings.set_last_model_dir(info.path.parent)
        self.refresh()
        self._select(info.spec)
        self._show(info)
        self._set_loading(None)
        self.message.emit(f"{info.architecture} ×{info.scale} ready.")
        self.modelLoaded.emit(info)
        if then is not None:
            then()

    def _show(self, info: SRInfo | None) -> None:
        self.facts.setVisible(info is not None)
        if info is None:
            return
        tags = f" ({', '.join(info.tags)})" if info.tags else ""
        values = {"Architecture": f"{info.architecture}{tags}", "Scale": f"×{info.scale}",
                  "Precision": info.precisions, "Tiling": f"{info.tiling}, at least {info.min_tile} px a tile",
                  "Parameters": _count(info.parameters)}
        self.labels["File"].set_full_text(info.name)
        self.labels["File"].setToolTip(str(info.path))
        for key, text in values.items():
            self.labels[key].setText(text)

    def with_model(self, then: Callable[[], object]) -> bool:
        """Run ``then`` with the selected model loaded (loading it first if needed); False if none is chosen."""
        spec = self.selected_spec()
        if spec is None:
            self.window.show_error("No upscaling model", "Choose a model in the Upscale panel, or open a "
                                   ".pth/.safetensors file. Got: no model")
            return False
        if self.loaded is not None and self.loaded.info.spec == spec:
            then()
        else:
            self.load(spec, then)
        return True
