"""The File menu's work: open images and ``.ganvas`` documents, save, export, recent files.

Images open as pixels (``engine.images``) and export as PNG or JPEG. A ``.ganvas`` file
(``engine/document.py``) holds the latent that renders the picture, the edit stack and the
model's file name and SHA-256, so reopening re-renders it bit for bit.
Saving and opening run as runner jobs; the engine writes through a temporary file and a
rename, so a failed save leaves the previous file as it was, and the runner shows the error.

Opening finds the document's model (by catalogue id, then by path) and checks its hash. If
the model is missing or differs, the user is told why and may point at the right file; a
picked file whose hash differs is refused, because it would render another picture.

The blocking questions go through hook methods that tests replace: the window's
(``choose_open_path``, ``choose_save_path``, ``ask_jpeg_quality``, ``confirm_discard``) and
those of :class:`DocumentFiles` for documents and animations (``choose_document_path``,
``ask_locate_model``, ``ask_animation``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QDialog, QFileDialog, QMessageBox

from engine.errors import GanvasError, ModelNotFound, check
from engine.images import READ_SUFFIXES, WRITE_SUFFIXES, Image, load_image, save_image
from engine.jobs import Job
from gui.edit_state import AnimationRequest, export_animation_job
from gui.edit_widgets import AnimationDialog
from gui.model_state import LoadedModel, load_model

if TYPE_CHECKING:
    import numpy as np

    from engine.document import Document as Latent
    from engine.document import ModelRef
    from gui.main_window import MainWindow

SUFFIX = ".ganvas"  # engine.document.SUFFIX, repeated so the window opens without importing torch
OPEN_FILTER = "Documents and images (*{} {});;GANvas documents (*{});;All files (*)".format(
    SUFFIX, " ".join(f"*{s}" for s in READ_SUFFIXES), SUFFIX)
EXPORT_FILTER = "PNG image (*.png);;JPEG image (*.jpg *.jpeg)"
DOCUMENT_FILTER = "GANvas document (*.ganvas)"
ANIMATION_FILTER = "GIF animation (*.gif);;MP4 video (*.mp4)"


# Engine calls in the job shape fn(..., progress=, cancel=); they run on the worker thread.

def load_image_job(path: Path, max_pixels: int, progress: Any = None, cancel: Any = None) -> Image:
    return load_image(path, max_pixels=max_pixels)


def save_image_job(path: Path, image: Image, quality: int, progress: Any = None, cancel: Any = None) -> Path:
    return save_image(path, image.rgb, image.alpha, quality=quality)


@dataclass(frozen=True)
class OpenedDocument:
    path: Path
    latent: Latent
    image: np.ndarray | None  # (H, W, 3) uint8; None when the model was not found
    loaded: LoadedModel | None = None  # the document's model, when it is not the one loaded now
    problem: str = ""  # why the model could not be used: the user may locate it


def _find_model(ref: ModelRef) -> Path | None:
    """The weights file by catalogue id, else by the path saved in the document."""
    from engine.models.catalog import resolve

    for candidate in (ref.id, ref.path):
        if candidate:
            try:
                return resolve(candidate)
            except ModelNotFound:
                continue
    return None


def open_document_job(path: Path, current: LoadedModel | None, device: Any, model_path: Path | None = None,
                      progress: Any = None, cancel: Any = None) -> OpenedDocument:
    """Read a ``.ganvas`` file, get its model (the loaded one if the hash matches) and render it.

    ``model_path`` is a file the user picked for a missing model; it must have the saved hash.
    """
    from engine.document import open_document

    job = Job(3, progress, cancel)
    job.step(0, f"Reading {path.name}")
    latent = open_document(path)
    ref = latent.model
    check(ref is not None, f"{path}: the document names no model. Got: none")
    loaded = None
    if current is not None and ref.sha256 and current.info.sha256 == ref.sha256:
        generator = current.generator
    else:
        found = model_path or _find_model(ref)
        if found is None:
            return OpenedDocument(path, latent, None, problem=(
                f"{path.name} was made with the model {ref.id or Path(ref.path or '?').name}, which is not on this "
                f"computer or has moved. Locate the model file to open the document. Got: no file at {ref.path}"))
        job.step(1, f"Loading {found.name}")
        loaded = load_model(found, device, cancel=cancel)
        if ref.sha256 and loaded.info.sha256 != ref.sha256:
            hint = "" if model_path is not None else " Locate the right file to open the document."
            message = (f"{found.name} is not the model file {path.name} was made with: it would render another "
                       f"picture.{hint} Got: SHA-256 {loaded.info.sha256[:12]}…, the document needs "
                       f"{ref.sha256[:12]}…")
            if model_path is not None:
                raise GanvasError(message)  # the user picked it: refuse
            return OpenedDocument(path, latent, None, problem=message)
        generator = loaded.generator
    job.step(2, "Rendering")
    try:
        image = latent.render(generator)
    except GanvasError as exc:
        raise GanvasError(f"{path}: {exc}") from None
    job.step(3, "Ready")
    return OpenedDocument(path, latent, image, loaded)


def save_document_job(latent: Latent, path: Path, progress: Any = None, cancel: Any = None) -> Path:
    from engine.document import save_document

    Job(1, progress, cancel).check()
    return save_document(latent, path)


class DocumentFiles(QObject):
    """The File menu of ``window``: open, recent files, save, export, export animation.

    Signals: ``opened(Path)`` for a ``.ganvas`` document (an image emits the window's
    ``imageOpened``), ``saved(Path)``, ``animationExported(Path)``.
    """

    opened = Signal(object)
    saved = Signal(object)
    animationExported = Signal(object)

    def __init__(self, window: MainWindow):
        super().__init__(window)
        self.window = window
        self.document = window.document
        self.export_path: Path | None = None  # where File → Export writes without asking

    # Hooks: the blocking questions (tests replace them) -----------------------------

    def choose_document_path(self, suggestion: Path) -> Path | None:
        name, _ = QFileDialog.getSaveFileName(self.window, "Save Document", str(suggestion), DOCUMENT_FILTER)
        return Path(name) if name else None

    def ask_locate_model(self, message: str) -> Path | None:
        """Say why the document's model cannot be used; the file the user then picks, if any."""
        box = QMessageBox(QMessageBox.Icon.Warning, "Model Needed", message, QMessageBox.StandardButton.Cancel,
                          self.window)
        locate = box.addButton("Locate Model…", QMessageBox.ButtonRole.AcceptRole)
        box.exec()
        if box.clickedButton() is not locate:
            return None
        return self.window.choose_checkpoint_path()

    def ask_animation(self, choices: list[tuple[str, str | None]], suggestion: Path) -> AnimationRequest | None:
        dialog = AnimationDialog(choices, self.window)
        if dialog.exec() != QDialog.DialogCode.Accepted:
            return None
        name, _ = QFileDialog.getSaveFileName(self.window, "Export Animation", str(suggestion), ANIMATION_FILTER)
        if not name:
            return None
        return dialog.request(Path(name) if Path(name).suffix else Path(name).with_suffix(".gif"))

    # Open -------------------------------------------------------------------------

    def open_dialog(self) -> None:
        path = self.window.choose_open_path()
        if path is not None:
            self.open_path(path)

    def open_path(self, path: str | Path) -> int | None:
        """Open an image or a ``.ganvas`` document on the worker thread; the document changes only
        if it opens. Returns the job id (None if the user kept the current image)."""
        if not self.window.confirm_discard():
            return None
        path = Path(path)
        if path.suffix.lower() == SUFFIX:
            return self.open_document(path)
        return self.window.runner.submit(load_image_job, path, self.window.settings.max_pixels(),
                                         title=f"Open {path.name}", on_result=lambda image: self._shown(path, image))

    def _shown(self, path: Path, image: Image, latent: Latent | None = None) -> None:
        window = self.window
        self.document.open(image, path, latent)
        self.export_path = None
        window.canvas.set_compare(False)
        window.canvas.fit()
        self.remember(path)
        window.canvas.setFocus()
        window.statusBar().showMessage(f"Opened {path}", 5000)
        if latent is None:
            window.imageOpened.emit(path)

    def remember(self, path: Path) -> None:
        """Put ``path`` first in Open Recent, and its folder as the next dialogs' start."""
        self.window.settings.add_recent(path)
        self.window.settings.set_last_dir(path.resolve().parent)
        self.fill_recent_menu()

    def fill_recent_menu(self) -> None:
        window = self.window
        window.recent_menu.clear()
        files = window.settings.recent_files()
        for index, path in enumerate(files, start=1):
            action = window.recent_menu.addAction(f"&{index % 10}  {path.name}")
            action.setStatusTip(str(path))
            action.setToolTip(str(path))
            action.triggered.connect(lambda _=False, p=path: self.open_path(p))
        if files:
            window.recent_menu.addSeparator()
        window.recent_menu.addAction(window.act.clear_recent)
        window.act.clear_recent.setEnabled(bool(files))

    def clear_recent(self) -> None:
        self.window.settings.clear_recent()
        self.fill_recent_menu()

    # Export -------------------------------------------------------------------------

    def export(self) -> None:
        if self.export_path is None:
            self.export_as()
        else:
            self.export_to(self.export_path, self.window.settings.jpeg_quality())

    def export_as(self) -> None:
        window = self.window
        if self.document.image is None:
            return
        source = self.document.path or Path("untitled.png")
        suggestion = (window.settings.last_dir() or source.parent) / f"{source.stem}-edited.png"
        path = window.choose_save_path(self.export_path or suggestion)
        if path is None:
            return
        if not path.suffix:
            path = path.with_suffix(".png")
        quality = window.settings.jpeg_quality()
        if path.suffix.lower() in (".jpg", ".jpeg"):
            answer = window.ask_jpeg_quality(quality)
            if answer is None:
                return
            quality = answer
            window.settings.set_jpeg_quality(quality)
        self.export_to(path, quality)

    def export_to(self, path: str | Path, quality: int = 95) -> int | None:
        """Write the current image to ``path`` (PNG or JPEG by suffix) on the worker thread."""
        image = self.document.image
        if image is None:
            return None
        path = Path(path)
        if path.suffix.lower() not in WRITE_SUFFIXES:
            self.window.show_error("Cannot export", f"{path}: GANvas exports {', '.join(WRITE_SUFFIXES)}. "
                                                    f"Got: {path.suffix}")
            return None
        revision = self.document.revision
        return self.window.runner.submit(save_image_job, path, image, quality, title=f"Export {path.name}",
                                         on_result=lambda written: self._exported(written, revision))

    def _exported(self, path: Path, revision: int) -> None:
        self.export_path = path
        if revision == self.document.revision and self.current_path() is None:
            self.document.mark_saved()  # a document saved as .ganvas stays unsaved until saved there
        self.window.statusBar().showMessage(f"Exported {path}", 5000)
        self.window.exported.emit(path)

    # Save ---------------------------------------------------------------------------

    def current_path(self) -> Path | None:
        """The ``.ganvas`` file the document came from or was last saved to."""
        path = self.document.path
        return path if path is not None and path.suffix.lower() == SUFFIX else None

    def save(self) -> int | None:
        path = self.current_path()
        return self.save_to(path) if path is not None else self.save_as()

    def save_as(self) -> int | None:
        if not self._can_save():
            return None
        stem = self.document.path.stem if self.document.path else "untitled"
        folder = self.window.settings.last_dir() or Path.home()
        path = self.choose_document_path(self.current_path() or folder / f"{stem}{SUFFIX}")
        if path is None:
            return None
        return self.save_to(path if path.suffix else path.with_suffix(SUFFIX))

    def _can_save(self) -> bool:
        if self.document.latent is None:
            self.window.show_error("Cannot save", "A .ganvas document keeps the latent that renders the picture, "
                                   "and this image has none (it was opened, or changed by an image tool). Use "
                                   "File → Export to write it as PNG or JPEG. Got: no latent")
            return False
        return True

    def save_to(self, path: str | Path) -> int | None:
        """Write the latent document to ``path`` on the worker thread; the job id."""
        path = Path(path)
        if not self._can_save():
            return None
        if path.suffix.lower() != SUFFIX:
            self.window.show_error("Cannot save", f"{path}: documents are saved as {SUFFIX}. Got: {path.suffix!r}")
            return None
        revision = self.document.revision
        return self.window.runner.submit(save_document_job, self.document.latent, path, title=f"Save {path.name}",
                                         on_result=lambda written: self._saved(written, revision))

    def _saved(self, path: Path, revision: int) -> None:
        if revision == self.document.revision:  # later edits are not in the file
            self.document.mark_saved(path)
        self.remember(path)
        self.window.statusBar().showMessage(f"Saved {path}", 5000)
        self.saved.emit(path)

    def open_document(self, path: str | Path, model_path: Path | None = None) -> int:
        """Open a ``.ganvas`` file on the worker thread (``model_path``: the file the user located); the job id."""
        path, model = Path(path), self.window.model
        current = LoadedModel(model.generator, model.info) if model.generator is not None else None
        return self.window.runner.submit(open_document_job, path, current, model.device, model_path,
                                         title=f"Open {path.name}", on_result=self._opened)

    def _opened(self, opened: OpenedDocument) -> None:
        if opened.problem:
            located = self.ask_locate_model(opened.problem)
            if located is None:
                self.window.statusBar().showMessage(f"Not opened: {opened.problem.split('. ')[0]}", 10000)
            else:
                self.open_document(opened.path, located)
            return
        # The document first, then its model: a new model must not draw a sample over it.
        self._shown(opened.path, Image(opened.image), opened.latent)
        if opened.loaded is not None:
            self.window.model.adopt(opened.loaded)
        self.opened.emit(opened.path)

    # Export Animation ---------------------------------------------------------------

    def export_animation(self) -> int | None:
        """Ask what to animate and where, then render and write it as a job (progress, cancel)."""
        latent, generator, panel = self.document.latent, self.window.model.generator, self.window.edit_panel
        if latent is None or generator is None or not panel.controls.isEnabled():
            self.window.show_error("Cannot export an animation", "Generate a sample (or open a .ganvas document) "
                                   "with its model loaded first. Got: no latent to animate")
            return None
        stem = self.document.path.stem if self.document.path else "untitled"
        suggestion = (self.window.settings.last_dir() or Path.home()) / f"{stem}.gif"
        request = self.ask_animation(panel.animation_choices(), suggestion)
        if request is None:
            return None
        return self.window.runner.submit(export_animation_job, generator, latent, request, panel.directions,
                                         title=f"Export {request.path.name}",
                                         on_result=self._animation_written)

    def _animation_written(self, path: Path) -> None:
        self.window.statusBar().showMessage(f"Exported {path}", 5000)
        self.animationExported.emit(path)
