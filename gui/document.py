"""The document view-model: the image being edited, the one before the last change, undo.

Widgets never hold pixels of their own; they observe a :class:`Document` through its
change signals, which fire only when a value really changes. Every edit goes through
the document's ``QUndoStack`` (see ``gui/commands.py``), so undo/redo and the
before/after compare always agree: ``before`` is the image as it was before the last
change and ``image`` is the image now.

Images are never changed in place (every engine operation returns new arrays), so a
job may read the document's image on the worker thread while the user goes on editing.
The same holds for ``latent``: the latent document (``engine.document.Document``: base
latent, model, edit stack) that renders the image, or None when no latent does (a photo,
a crop); each change makes a new one, and undo restores it with the image.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QUndoStack

from engine.images import Image
from gui.commands import ReplaceImage

if TYPE_CHECKING:
    from engine.document import Document as Latent

UNDO_LIMIT = 50  # full-image states; a 12 MP photo is 36 MB per distinct state


class Document(QObject):
    """One open image and its history.

    Signals: ``imageChanged(Image | None)``, ``beforeChanged(Image | None)``,
    ``stateChanged()`` once after either or both changed (views that show the pair
    listen to this one), ``latentChanged(Latent | None)`` (emitted before ``stateChanged``),
    ``pathChanged(Path | None)``, ``modifiedChanged(bool)``.
    """

    stateChanged = Signal()
    imageChanged = Signal(object)
    beforeChanged = Signal(object)
    latentChanged = Signal(object)
    pathChanged = Signal(object)
    modifiedChanged = Signal(bool)

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._image: Image | None = None
        self._before: Image | None = None
        self._latent: Latent | None = None
        self._path: Path | None = None
        self.revision = 0  # bumped on every change; a job result made from an older revision is stale
        self.undo_stack = QUndoStack(self)
        self.undo_stack.setUndoLimit(UNDO_LIMIT)
        self.undo_stack.cleanChanged.connect(self._clean_changed)

    @property
    def image(self) -> Image | None:
        return self._image

    @property
    def before(self) -> Image | None:
        """The image before the last change; None right after opening."""
        return self._before

    @property
    def latent(self) -> Latent | None:
        """The latent document that renders :attr:`image`, if any."""
        return self._latent

    @property
    def path(self) -> Path | None:
        return self._path

    @property
    def modified(self) -> bool:
        return not self.undo_stack.isClean()

    def open(self, image: Image, path: str | Path | None = None, latent: Latent | None = None) -> None:
        """Start over with ``image`` (rendered by ``latent``, if given): clears the history
        (opening is not undoable)."""
        self.undo_stack.clear()
        self.set_state(image, None, latent)
        self._set_path(Path(path) if path is not None else image.source)

    def apply(self, image: Image, text: str) -> None:
        """Replace the image as one undoable step named ``text``."""
        self.undo_stack.push(ReplaceImage(self, image, text))

    def mark_saved(self, path: str | Path | None = None) -> None:
        """The current state is on disk (at ``path``, which becomes the document's, if given)."""
        self.undo_stack.setClean()
        if path is not None:
            self._set_path(Path(path))

    def set_state(self, image: Image | None, before: Image | None, latent: Latent | None = None) -> None:
        """Set both images and the latent at once (used by undo commands); emits only what changed."""
        self.revision += 1
        image_changed, before_changed = image is not self._image, before is not self._before
        latent_changed = latent is not self._latent
        self._image, self._before, self._latent = image, before, latent
        if latent_changed:
            self.latentChanged.emit(latent)
        if before_changed:
            self.beforeChanged.emit(before)
        if image_changed:
            self.imageChanged.emit(image)
        if image_changed or before_changed:
            self.stateChanged.emit()

    def _clean_changed(self, clean: bool) -> None:
        self.modifiedChanged.emit(not clean)

    def _set_path(self, path: Path | None) -> None:
        if path != self._path:
            self._path = path
            self.pathChanged.emit(path)
