"""Edits to the document's image: the Image menu, and the one way a job's result lands.

Every change is one undoable command on the document's stack and is shown in the
compare view against the state before it. Quick, exact operations (crop, rotate, flip)
run on the GUI thread; resampling runs on the worker. A result computed on the worker
from revision ``r`` of the document is applied only if the document is still at ``r``:
otherwise the user edited meanwhile and the stale result would silently undo that.
"""

from __future__ import annotations

from typing import Any, Callable

from PySide6.QtCore import QObject, Signal

from engine.errors import GanvasError
from engine.images import Image
from engine.ops import transform
from gui.canvas import Canvas
from gui.commands import TransformImage
from gui.document import Document
from gui.jobs import JobRunner


def _resize(image: Image, width: int, height: int, progress: Any = None, cancel: Any = None) -> Image:
    return transform.resize(image, width, height)


class ImageEdits(QObject):
    """Signals: ``failed(title, message)`` for an error box, ``message(text)`` for the status bar."""

    failed = Signal(str, str)
    message = Signal(str)

    def __init__(self, document: Document, canvas: Canvas, runner: JobRunner, parent: QObject | None = None):
        super().__init__(parent)
        self.document, self.canvas, self.runner = document, canvas, runner

    def apply_result(self, image: Image, text: str, revision: int | None = None) -> bool:
        """Make ``image`` the document's image as one undoable step named ``text``.

        A job computed from the document passes the ``revision`` it started from; if the
        image changed since, the result is dropped and False returned.
        """
        if revision is not None and revision != self.document.revision:
            self.message.emit(f"{text}: dropped, the image changed while it was computed")
            return False
        self.document.apply(image, text)
        self.canvas.set_compare(True)
        return True

    def transform(self, text: str, op: Callable[..., Image], *args: Any) -> bool:
        """Apply ``op(image, *args)`` now, as one undoable step; False (and ``failed``) if it raises."""
        if self.document.image is None:
            return False
        try:
            self.document.undo_stack.push(TransformImage(self.document, text, op, *args))
        except GanvasError as exc:
            self.failed.emit(f"{text} failed", str(exc))
            return False
        self.canvas.set_compare(True)
        return True

    def rotate(self, clockwise: bool) -> None:
        text = "Rotate 90° " + ("clockwise" if clockwise else "counter-clockwise")
        self.transform(text, transform.rotate90, clockwise)

    def flip(self, horizontal: bool) -> None:
        self.transform("Flip " + ("horizontal" if horizontal else "vertical"), transform.flip, horizontal)

    def crop_to_selection(self) -> None:
        rect = self.canvas.selection()
        if rect is None:
            self.message.emit("Crop: drag a rectangle on the image first")
            return
        self.transform(f"Crop to {rect.width()} × {rect.height()}", transform.crop, rect.x(), rect.y(),
                       rect.width(), rect.height())

    def crop_to_square(self) -> None:
        image = self.document.image
        if image is not None:
            x, y, side, _ = transform.square_box(0, 0, image.width, image.height)
            self.transform(f"Crop to {side} × {side}", transform.crop, x, y, side, side)

    def resize(self, width: int, height: int) -> int | None:
        """Resample to ``width x height`` on the worker thread, as one undoable step; the job id."""
        image = self.document.image
        if image is None:
            return None
        text, revision = f"Resize to {width} × {height}", self.document.revision
        return self.runner.submit(_resize, image, width, height, title=text,
                                  on_result=lambda result: self.apply_result(result, text, revision))
