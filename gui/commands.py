"""Undoable document changes (``QUndoCommand`` subclasses).

A command stores whole images, not diffs: the engine's operations return new arrays,
and consecutive states share them, so memory is one array per distinct state.
Redo shows the new image against the one it replaced; undo restores both images the
document showed before, so the compare view is always "before this step / after it".
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from PySide6.QtGui import QUndoCommand

from engine.errors import ImageError, check
from engine.images import Image

if TYPE_CHECKING:  # the document imports this module
    from gui.document import Document


class ReplaceImage(QUndoCommand):
    """Replace the document's image with ``image`` (e.g. a job's result)."""

    def __init__(self, document: Document, image: Image, text: str):
        super().__init__(text)
        self.document = document
        self.new_image = image
        self.old_image = document.image
        self.old_before = document.before

    def redo(self) -> None:
        self.document.set_state(self.new_image, self.old_image)

    def undo(self) -> None:
        self.document.set_state(self.old_image, self.old_before)


class TransformImage(ReplaceImage):
    """Apply ``op(image, *args)`` (an ``engine.ops.transform`` function) to the document.

    The operation runs here, before the command is pushed, so a failure raises
    ``ImageError`` and leaves the history untouched.
    """

    def __init__(self, document: Document, text: str, op: Callable[..., Image], *args: Any):
        check(document.image is not None, f"{text}: there is no image open", ImageError)
        super().__init__(document, op(document.image, *args), text)
