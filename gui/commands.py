"""Undoable document changes (``QUndoCommand`` subclasses).

A command stores whole images, not diffs: the engine's operations return new arrays,
and consecutive states share them, so memory is one array per distinct state.
Redo shows the new image against the one it replaced; undo restores both images the
document showed before, so the compare view is always "before this step / after it".

A step also stores the latent the new image renders (``engine.document.Document``, never
changed in place), or ``None`` for an image that no latent renders (an opened photo, a
crop): undo then restores the latent together with the image. Steps that carry the same
``merge_key`` merge when pushed one after the other, so a slider drag or a run of seeds is
one step to undo.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Hashable

from PySide6.QtGui import QUndoCommand

from engine.errors import ImageError, check
from engine.images import Image

if TYPE_CHECKING:  # the document imports this module
    from engine.document import Document as Latent
    from gui.document import Document

MERGE_ID = 0x47414E  # QUndoCommand.id() of every mergeable step; merge_key tells them apart


class ReplaceImage(QUndoCommand):
    """Replace the document's image with ``image`` (e.g. a job's result) and its latent with ``latent``."""

    def __init__(self, document: Document, image: Image, text: str, latent: Latent | None = None,
                 merge_key: Hashable | None = None):
        super().__init__(text)
        self.document = document
        self.new_image, self.new_latent = image, latent
        self.old_image, self.old_latent = document.image, document.latent
        self.old_before = document.before
        self.merge_key = merge_key

    def redo(self) -> None:
        self.document.set_state(self.new_image, self.old_image, self.new_latent)

    def undo(self) -> None:
        self.document.set_state(self.old_image, self.old_before, self.old_latent)

    def id(self) -> int:
        return MERGE_ID if self.merge_key is not None else -1

    def mergeWith(self, other: Any) -> bool:
        if not isinstance(other, ReplaceImage) or self.merge_key is None or other.merge_key != self.merge_key:
            return False
        self.new_image, self.new_latent = other.new_image, other.new_latent
        self.setText(other.text())
        # other.redo() showed its image against this step's result; the merged step compares
        # against the image from before this step, as its undo restores.
        self.document.set_state(self.new_image, self.old_image, self.new_latent)
        return True


class TransformImage(ReplaceImage):
    """Apply ``op(image, *args)`` (an ``engine.ops.transform`` function) to the document.

    The operation runs here, before the command is pushed, so a failure raises
    ``ImageError`` and leaves the history untouched.
    """

    def __init__(self, document: Document, text: str, op: Callable[..., Image], *args: Any):
        check(document.image is not None, f"{text}: there is no image open", ImageError)
        super().__init__(document, op(document.image, *args), text)
