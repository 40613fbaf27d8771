"""The document view-model: the image being edited, the one before the last change, undo.

Widgets never hold pixels of their own; they observe a :class:`Document` through its
change signals, which fire only when a value really changes. Every edit goes through
the document's ``QUndoStack`` (see ``gui/commands.py``), so undo/redo and the
before/after compare always agree: ``before`` is the image as it was before the last
change and ``image`` is the image now.

Images are never changed in place (every engine operation returns new arrays), so a
job may read the document's image on the worker thread while the user goes on editing.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QUndoStack

from engine.images import Image
from gui.commands import ReplaceImage

UNDO_LIMIT = 50  # full-image states; a 12 MP photo is 36 MB per distinct state


class Document(QObject):
    """One open image and its history.

    Signals: ``imageChanged(Image | None)``, ``beforeChanged(Image | None)``,
    ``stateChanged()`` once after either or both changed (views that show the pair
    listen to this one), ``pathChanged(Path | None)``, ``modifiedChanged(bool)``.
    """

    stateChanged = Signal()
    imageChanged = Signal(object)
    beforeChanged = Signal(object)
    pathChanged = Signal(object)
    modifiedChanged = Signal(bool)

    def __init__(self, parent: QObject | None = None):
        super().__init__(parent)
        self._image: Image | None = None
        self._before: Image | None = None
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
    def path(self) -> Path | None:
        return self._path

    @property
    def modified(self) -> bool:
        return not self.undo_stack.isClean()

    def open(self, image: Image, path: str | Path | None = None) -> None:
        """Start over with ``image``: clears the history (opening is not undoable)."""
        self.undo_stack.clear()
        self.set_state(image, None)
        self._set_path(Path(path) if path is not None else image.source)

    def apply(self, image: Image, text: str) -> None:
        """Replace the image as one undoable step named ``text``."""
        self.undo_stack.push(ReplaceImage(self, image, text))

    def mark_saved(self) -> None:
        self.undo_stack.setClean()

    def set_state(self, image: Image | None, before: Image | None) -> None:
        """Set both images at once (used by undo commands); emits only what changed."""
        self.revision += 1
        image_changed, before_changed = image is not self._image, before is not self._before
        self._image, self._before = image, before
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
