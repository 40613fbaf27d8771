"""The main window: menus, the canvas, the status bar with the job area, and the panels.

The window wires three things together and keeps no pixels of its own: the
:class:`~gui.document.Document` (what is being edited, with undo), the
:class:`~gui.canvas.Canvas` (how it is seen) and the :class:`~gui.jobs.JobRunner` (the
worker thread). Questions to the user go through the ``choose_*`` / ``ask_*`` /
``confirm_*`` hook methods, the only places that open blocking dialogs.

A later panel plugs in with :meth:`MainWindow.add_panel` and runs its work with
``window.runner.submit(fn, ..., on_result=...)``; a result that replaces the image goes
through ``window.edits.apply_result`` (``gui/edits.py``), which makes it one undoable step.
The loaded generator lives in ``window.model`` (:class:`~gui.model_state.ModelState`); the
File menu's work (open, recent files, save, export) in ``window.files`` (``gui/files.py``).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from PySide6.QtCore import QSize, Qt, QTimer, Signal
from PySide6.QtGui import QCloseEvent, QDragEnterEvent, QDragMoveEvent, QDropEvent
from PySide6.QtWidgets import (
    QDockWidget,
    QFileDialog,
    QInputDialog,
    QLabel,
    QMainWindow,
    QMessageBox,
    QTabWidget,
    QUndoView,
    QWidget,
)

from engine.errors import GanvasError
from engine.images import READ_SUFFIXES
from gui.canvas import Canvas
from gui.dialogs import AboutDialog, ResizeDialog, error_box
from gui.document import Document
from gui.drag_tool import DragTool
from gui.edit_panel import EditPanel
from gui.edits import ImageEdits
from gui.files import EXPORT_FILTER, OPEN_FILTER, SUFFIX, DocumentFiles
from gui.generate_panel import GeneratePanel
from gui.invert_panel import InvertPanel
from gui.job_area import JobArea
from gui.jobs import JobFailed, JobRunner
from gui.menus import build_actions, build_menus, build_toolbar
from gui.model_menu import ModelMenu
from gui.model_state import CHECKPOINT_FILTER, CHECKPOINT_SUFFIXES, ModelState
from gui.resources import SAMPLE_IMAGE
from gui.settings import Settings
from gui.sketch_panel import SketchPanel
from gui.upscale_panel import UpscalePanel

log = logging.getLogger(__name__)


class MainWindow(QMainWindow):
    """Signals: ``errorShown(title, message)``, ``imageOpened(Path)``, ``exported(Path)``,
    ``deviceChanged(DeviceChoice)``."""

    errorShown = Signal(str, str)
    imageOpened = Signal(object)
    exported = Signal(object)
    deviceChanged = Signal(object)

    def __init__(self, settings: Settings | None = None, parent: QWidget | None = None):
        super().__init__(parent)
        self.settings = settings if settings is not None else Settings()
        self.runner = JobRunner(self)
        self.document = Document(self)
        self.canvas = Canvas(self)
        self.edits = ImageEdits(self.document, self.canvas, self.runner, self)
        self.model = ModelState(self.runner, self)
        self.files = DocumentFiles(self)
        self.device: Any = None  # engine.device.DeviceChoice once the start-up job has run
        self.last_error_box: QMessageBox | None = None
        self.about_dialog: AboutDialog | None = None
        self.setCentralWidget(self.canvas)
        self.setAcceptDrops(True)
        self.setDockNestingEnabled(True)
        self.setTabPosition(Qt.DockWidgetArea.AllDockWidgetAreas, QTabWidget.TabPosition.North)

        self.act = build_actions(self)  # not "actions": that would hide QWidget.actions()
        self.recent_menu, self.panels_menu, model_menu = build_menus(self, self.act)
        self.model_menu = ModelMenu(self, model_menu)
        self.recent_menu.aboutToShow.connect(self.files.fill_recent_menu)
        self.toolbar = build_toolbar(self, self.act)
        self.toolbar.setIconSize(QSize(20, 20))
        self.addToolBar(Qt.ToolBarArea.TopToolBarArea, self.toolbar)
        self._build_status_bar()
        self.files.fill_recent_menu()
        history = QUndoView(self.document.undo_stack)
        history.setEmptyLabel("Original")
        self.add_panel("History", history)
        self.generate_panel = GeneratePanel(self.model, self.document, self.runner, self.act.open_model)
        generate_dock = self.add_panel("Generate", self.generate_panel)
        self.edit_panel = EditPanel(self.model, self.document, self.runner)
        edit_dock = self.add_panel("Edit", self.edit_panel)
        self.files.opened.connect(lambda _: edit_dock.raise_())  # a reopened document is there to be edited
        self.drag_tool = DragTool(self.model, self.document, self.runner, self.canvas, self)
        self.edit_panel.add_section("Drag", self.drag_tool.controls)
        self.addAction(self.drag_tool.action)  # D works wherever the focus is
        self.drag_tool.action.toggled.connect(lambda on: on and edit_dock.raise_())
        self.invert_panel = InvertPanel(self.model, self.document, self.runner, self.canvas)
        self.invert_dock = self.add_panel("Invert", self.invert_panel)
        self.invert_dock.visibilityChanged.connect(lambda shown: shown or self.invert_panel.release_canvas())
        self.upscale_panel = UpscalePanel(self)
        self.add_panel("Upscale", self.upscale_panel)
        self.sketch_panel = SketchPanel(self)
        self.sketch_dock = self.add_panel("Sketch", self.sketch_panel)

        self.document.stateChanged.connect(self._document_changed)
        self.document.latentChanged.connect(lambda _: self._document_changed())
        self.document.pathChanged.connect(lambda _: self._update_title())
        self.document.modifiedChanged.connect(lambda _: self._update_title())
        self.canvas.zoomChanged.connect(lambda zoom: self.zoom_label.setText(f"{zoom * 100:.0f} %"))
        self.canvas.selectionChanged.connect(lambda rect: self.act.crop.setEnabled(rect is not None))
        self.runner.jobPreview.connect(lambda message: self.canvas.show_preview(message.image))
        self.runner.jobFinished.connect(lambda _: self.canvas.clear_preview())
        self.runner.jobFailed.connect(self._job_failed)
        self.edits.failed.connect(self.show_error)
        self.deviceChanged.connect(lambda choice: self.model.set_device(choice.device))
        self.edits.message.connect(lambda text: self.statusBar().showMessage(text, 8000))
        self.runner.jobCancelled.connect(lambda m: self.statusBar().showMessage(f"Cancelled: {m.title}", 5000))

        self.resize(1280, 800)
        if not self._restore_window():  # a first start: Generate on top, where a new user begins
            QTimer.singleShot(0, generate_dock.raise_)  # after add_panel raised the newest panel
        self._document_changed()

    def _build_status_bar(self) -> None:
        bar = self.statusBar()
        self.job_area = JobArea(self.runner)
        self.size_label = QLabel("No image")
        self.zoom_label = QLabel()
        self.zoom_label.setMinimumWidth(56)
        self.zoom_label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.device_label = QLabel("Device: …")
        for widget in (self.job_area, self.size_label, self.zoom_label, self.device_label):
            bar.addPermanentWidget(widget)

    # Panels -------------------------------------------------------------------------

    def add_panel(
        self, title: str, widget: QWidget, area: Qt.DockWidgetArea = Qt.DockWidgetArea.RightDockWidgetArea
    ) -> QDockWidget:
        """Dock ``widget`` as a panel (right side by default, tabbed with the panels there)."""
        dock = QDockWidget(title, self)
        dock.setObjectName(f"panel-{title.lower().replace(' ', '-')}")  # saveState() keys on it
        dock.setWidget(widget)
        features = QDockWidget.DockWidgetFeature
        dock.setFeatures(features.DockWidgetMovable | features.DockWidgetClosable | features.DockWidgetFloatable)
        neighbours = [d for d in self.findChildren(QDockWidget) if d is not dock and self.dockWidgetArea(d) == area]
        self.addDockWidget(area, dock)
        if neighbours:
            self.tabifyDockWidget(neighbours[-1], dock)
            QTimer.singleShot(0, dock.raise_)  # once the tabs exist: the newest panel comes first
        self.panels_menu.addAction(dock.toggleViewAction())
        return dock

    # Hooks: the only blocking questions (tests replace them) ----------------------------

    def choose_open_path(self) -> Path | None:
        folder = str(self.settings.last_dir() or Path.home())
        name, _ = QFileDialog.getOpenFileName(self, "Open Image", folder, OPEN_FILTER)
        return Path(name) if name else None

    def choose_checkpoint_path(self) -> Path | None:
        folder = str(self.settings.last_model_dir() or Path.home())
        name, _ = QFileDialog.getOpenFileName(self, "Open Checkpoint", folder, CHECKPOINT_FILTER)
        return Path(name) if name else None

    def choose_save_path(self, suggestion: Path) -> Path | None:
        name, _ = QFileDialog.getSaveFileName(self, "Export Image", str(suggestion), EXPORT_FILTER)
        return Path(name) if name else None

    def ask_jpeg_quality(self, default: int) -> int | None:
        value, ok = QInputDialog.getInt(self, "JPEG Quality", "Quality (1–100):", default, 1, 100)
        return value if ok else None

    def ask_resize(self, width: int, height: int) -> tuple[int, int] | None:
        dialog = ResizeDialog(width, height, self)
        return dialog.size_chosen() if dialog.exec() == ResizeDialog.DialogCode.Accepted else None

    def confirm_discard(self) -> bool:
        """True if the current image may be replaced or closed (asks when it has unsaved changes)."""
        if not self.document.modified:
            return True
        buttons = QMessageBox.StandardButton.Discard | QMessageBox.StandardButton.Cancel
        text = "The image has changes that were not saved or exported. Discard them?"
        answer = QMessageBox.question(self, "Discard Changes?", text, buttons)
        return answer == QMessageBox.StandardButton.Discard

    # Files (gui/files.py does the work) ----------------------------------------------

    def open_path(self, path: str | Path) -> int | None:
        """Open an image or a ``.ganvas`` document on the worker thread; the job id."""
        return self.files.open_path(path)

    def open_sample(self) -> None:
        self.files.open_path(SAMPLE_IMAGE)

    # Drag and drop ------------------------------------------------------------------

    @staticmethod
    def dropped_path(event: QDropEvent | QDragEnterEvent | QDragMoveEvent) -> Path | None:
        """The first local file among the dragged URLs that GANvas opens: an image, a document or a checkpoint."""
        for url in event.mimeData().urls() if event.mimeData().hasUrls() else []:
            suffixes = READ_SUFFIXES + CHECKPOINT_SUFFIXES + (SUFFIX,)
            if url.isLocalFile() and Path(url.toLocalFile()).suffix.lower() in suffixes:
                return Path(url.toLocalFile())
        return None

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if self.dropped_path(event) is not None:
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragMoveEvent(self, event: QDragMoveEvent) -> None:
        self.dragEnterEvent(event)

    def dropEvent(self, event: QDropEvent) -> None:
        path = self.dropped_path(event)
        if path is None:
            event.ignore()
            return
        event.acceptProposedAction()
        if path.suffix.lower() in CHECKPOINT_SUFFIXES:
            self.model.load(path)
        else:
            self.open_path(path)

    # Image menu -------------------------------------------------------------------

    def resize_dialog(self) -> None:
        image = self.document.image
        if image is None:
            return
        size = self.ask_resize(image.width, image.height)
        if size is not None and size != (image.width, image.height):
            self.edits.resize(*size)

    # Device, errors, About ----------------------------------------------------------

    def start_device_job(self, preference: str | None = None) -> int:
        """Pick the compute device on the worker thread (importing torch takes a while)."""
        return self.runner.submit(_pick_device, preference, title="Find compute device", on_result=self.set_device)

    def set_device(self, found: tuple[Any, str | None]) -> None:
        choice, problem = found
        self.device = choice
        self.device_label.setText(f"Device: {choice.description}")
        self.device_label.setToolTip(f"Models run on {choice.device}")
        if problem:
            self.show_error("Device not available", f"{problem}\nUsing {choice.description} instead.")
        self.deviceChanged.emit(choice)

    def show_error(self, title: str, message: str) -> None:
        """Show an error without blocking: a window-modal box, the status bar, ``errorShown``."""
        log.warning("%s: %s", title, message)
        if self.last_error_box is not None and self.last_error_box.isVisible():
            self.last_error_box.close()
        self.last_error_box = error_box(self, title, message)
        self.last_error_box.destroyed.connect(lambda *_: setattr(self, "last_error_box", None))
        self.statusBar().showMessage(f"{title}: {message.splitlines()[0]}", 10000)
        self.errorShown.emit(title, message)

    def _job_failed(self, message: JobFailed) -> None:
        self.show_error(f"{message.title} failed", message.message)

    def show_about(self) -> None:
        if self.about_dialog is None:
            self.about_dialog = AboutDialog(self)
        self.about_dialog.open()

    # Window state -------------------------------------------------------------------

    def _document_changed(self) -> None:
        image, before = self.document.image, self.document.before
        self.canvas.set_images(image, before)
        has_image = image is not None
        for action in self.act.image_actions():
            action.setEnabled(has_image)
        for action in self.act.latent_actions():
            action.setEnabled(self.document.latent is not None)
        self.act.crop.setEnabled(self.canvas.selection() is not None)
        if has_image:
            depth = f", {image.bit_depth}-bit" if image.bit_depth != 8 else ""
            alpha = " + alpha" if image.alpha is not None else ""
            self.size_label.setText(f"{image.width} × {image.height} px{depth}{alpha}")
            self.zoom_label.setText(f"{self.canvas.zoom * 100:.0f} %")
        else:
            self.size_label.setText("No image")
            self.zoom_label.setText("")
        self._update_title()

    def _update_title(self) -> None:
        path = self.document.path
        name = path.name if path else "Untitled"
        self.setWindowTitle(f"{name}[*] — GANvas" if self.document.image is not None else "GANvas")
        self.setWindowModified(self.document.modified and self.document.image is not None)  # "GANvas" has no [*]

    def _restore_window(self) -> bool:
        """Put the window and its panels back as they were; False on a first start."""
        geometry, state = self.settings.geometry(), self.settings.window_state()
        if geometry is not None:
            self.restoreGeometry(geometry)
        return state is not None and self.restoreState(state)

    def closeEvent(self, event: QCloseEvent) -> None:
        if not self.confirm_discard():
            event.ignore()
            return
        self.settings.save_window(self.saveGeometry(), self.saveState())
        self.runner.shutdown()
        event.accept()


def _pick_device(preference: str | None, progress: Any = None, cancel: Any = None) -> tuple[Any, str | None]:
    """The preferred device, or the best available one and why the preferred one is not."""
    from engine.device import pick_device  # imports torch: keep it off the GUI thread

    try:
        return pick_device(preference), None
    except GanvasError as exc:
        return pick_device("auto"), str(exc)
