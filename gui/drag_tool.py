"""The Drag tool: point-based editing of the document's latent on the canvas (DragGAN, ``engine.ops.drag``).

With the tool on (D), a click on the image places a handle (red), the next click its target
(blue), joined by an arrow; more clicks add more pairs, a press near a placed point drags it.
Run starts the search on the worker thread: each step's render and tracked handles come back
as a preview, so the canvas shows the picture changing and the handles moving. The result
lands as one undoable step whose latent carries the drag as an entry of its edit stack
(``engine.ops.edit.DragEdit``); the handles then sit where they arrived, ready for another run,
and undo puts them back. Stop ends the search and keeps what it reached; the job area's cancel
discards it. An optional mask (:class:`~gui.paint_layer.PaintLayer`) marks the region that may
change; the rest is held in place.
"""

from __future__ import annotations

import dataclasses
import math
import time
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from PySide6.QtCore import QObject, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QAction, QColor, QKeySequence, QMouseEvent, QPainter, QPen, QPolygonF
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QPushButton,
    QSpinBox,
    QStyleOptionGraphicsItem,
    QVBoxLayout,
    QWidget,
)

from engine.images import Image
from engine.jobs import CancelToken
from gui.commands import ReplaceImage
from gui.document import Document
from gui.edit_state import latent_fits
from gui.invert_widgets import MaskControls
from gui.jobs import JobRunner
from gui.model_state import ModelState
from gui.paint_layer import CanvasLayer, PaintLayer
from gui.widgets import accent_button, key_label, status_label

if TYPE_CHECKING:
    from engine.document import Document as Latent
    from engine.ops.drag import DragPreview, DragResult
    from gui.canvas import Canvas

HANDLE_COLOUR = QColor(235, 64, 52)
TARGET_COLOUR = QColor(74, 158, 255)
MASK_COLOUR = QColor(70, 200, 120)  # not the inpainting mask's pink: a region that may change, not a hole
GRAB = 9.0  # viewport pixels within which a press picks a point up
PREVIEW_INTERVAL = 1 / 30  # seconds between previews sent to the GUI thread (the last always goes)
Pair = tuple[tuple[float, float], tuple[float, float]]  # (handle, target), (x, y) in model pixels


class DragLayer(CanvasLayer):
    """Handle and target points in scene coordinates (pixel centres at +0.5). Signals: ``pointsChanged()``."""

    pointsChanged = Signal()

    def __init__(self) -> None:
        super().__init__()
        self.handles: list[QPointF] = []
        self.targets: list[QPointF | None] = []  # None: the last handle waits for its target
        self.starts: list[QPointF] = []  # where the handles were when the running drag began
        self.locked = False  # a drag is running: the points are the search's, not the mouse's
        self._moving: tuple[str, int] | None = None

    # State --------------------------------------------------------------------------

    def complete_pairs(self) -> list[tuple[QPointF, QPointF]]:
        return [(h, t) for h, t in zip(self.handles, self.targets) if t is not None]

    def pairs(self, resolution: int) -> list[Pair]:
        """The complete pairs in pixels of a ``resolution``-px model image (pixel centres at integers)."""
        scale = resolution / max(self.size[0], 1)

        def model(p: QPointF) -> tuple[float, float]:
            return (min(max(p.x() * scale - 0.5, 0.0), resolution - 1.0),
                    min(max(p.y() * scale - 0.5, 0.0), resolution - 1.0))

        return [(model(h), model(t)) for h, t in self.complete_pairs()]

    def snapshot(self) -> tuple[list[QPointF], list[QPointF | None]]:
        return [QPointF(p) for p in self.handles], [None if p is None else QPointF(p) for p in self.targets]

    def restore(self, snapshot: tuple[list[QPointF], list[QPointF | None]]) -> None:
        self.prepareGeometryChange()
        self.handles, self.targets = [QPointF(p) for p in snapshot[0]], [None if p is None else QPointF(p)
                                                                         for p in snapshot[1]]
        self.starts = []
        self.update()
        self.pointsChanged.emit()

    def clear(self) -> None:
        self.restore(([], []))

    def set_handles(self, points: list[tuple[float, float]], resolution: int) -> None:
        """Move the handles of the complete pairs to ``points`` (model pixels), as tracking found them."""
        scale = max(self.size[0], 1) / resolution
        complete = [i for i, t in enumerate(self.targets) if t is not None]
        for i, (x, y) in zip(complete, points):
            self.handles[i] = QPointF((x + 0.5) * scale, (y + 0.5) * scale)
        self.update()
        self.pointsChanged.emit()

    def set_size(self, width: int, height: int) -> None:
        if (width, height) != self.size:
            super().set_size(width, height)
            if self.handles:
                self.clear()  # points on an image of another size mean nothing here

    def instruction(self) -> str:
        if self.targets and self.targets[-1] is None:
            return "Click where the red handle should go."
        if not self.handles:
            return "Click a point to move (handle), then where it should go (target)."
        n = len(self.handles)
        return f"{n} pair{'s' if n != 1 else ''}. Click to add another, drag a point to adjust it."

    # Mouse --------------------------------------------------------------------------

    def _nearest(self, point: QPointF) -> tuple[str, int] | None:
        reach = GRAB / max(self.view_scale(), 1e-6)
        best, best_d = None, reach
        for kind, points in (("target", self.targets), ("handle", self.handles)):
            for i, p in enumerate(points):
                if p is not None and (d := math.hypot(p.x() - point.x(), p.y() - point.y())) <= best_d:
                    best, best_d = (kind, i), d
        return best

    def _clamped(self, point: QPointF) -> QPointF:
        """The centre of the image pixel under ``point`` (tracking works in whole pixels anyway)."""
        width, height = self.size
        return QPointF(min(max(math.floor(point.x()), 0), width - 1) + 0.5,
                       min(max(math.floor(point.y()), 0), height - 1) + 0.5)

    def press(self, point: QPointF, event: QMouseEvent | None) -> None:
        if self.locked:
            return
        point = self._clamped(point)
        self._moving = self._nearest(point)
        self.prepareGeometryChange()
        if self._moving is None and self.targets and self.targets[-1] is None:
            self.targets[-1] = point
            self._moving = ("target", len(self.targets) - 1)
        elif self._moving is None:
            self.handles.append(point)
            self.targets.append(None)
            self._moving = ("handle", len(self.handles) - 1)
        self.update()
        self.pointsChanged.emit()

    def drag(self, point: QPointF, event: QMouseEvent | None) -> None:
        if self._moving is None or self.locked:
            return
        kind, i = self._moving
        (self.handles if kind == "handle" else self.targets)[i] = self._clamped(point)
        self.update()
        self.pointsChanged.emit()

    def release(self, point: QPointF, event: QMouseEvent | None) -> None:
        self.drag(point, event)
        self._moving = None

    def click(self, x: float, y: float) -> None:
        """A click at scene point ``(x, y)`` (image pixel ``(int(x), int(y))``), as the mouse makes one."""
        self.press(QPointF(x, y), None)
        self.release(QPointF(x, y), None)

    # Painting -----------------------------------------------------------------------

    def boundingRect(self) -> QRectF:
        pad = float(max(self.size)) / 4 + 2  # marks keep their screen size: room for them at the edges
        return QRectF(0, 0, *self.size).adjusted(-pad, -pad, pad, pad)

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget: QWidget | None = None) -> None:
        if not self.handles:
            return
        scale = max(self.view_scale(), 1e-6)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        for start in self.starts:  # where a running drag began: a faint ring
            ring = QPen(QColor(255, 255, 255, 150), 1.2, Qt.PenStyle.DotLine)
            ring.setCosmetic(True)
            painter.setPen(ring)
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawEllipse(start, 5.0 / scale, 5.0 / scale)
        for handle, target in zip(self.handles, self.targets):
            if target is not None:
                _arrow(painter, handle, target, scale)
        for handle, target in zip(self.handles, self.targets):
            _dot(painter, handle, HANDLE_COLOUR, scale)
            if target is not None:
                _dot(painter, target, TARGET_COLOUR, scale)


def _dot(painter: QPainter, at: QPointF, colour: QColor, scale: float) -> None:
    outline = QPen(QColor(255, 255, 255), 1.5)
    outline.setCosmetic(True)
    painter.setPen(outline)
    painter.setBrush(colour)
    painter.drawEllipse(at, 4.5 / scale, 4.5 / scale)


def _arrow(painter: QPainter, a: QPointF, b: QPointF, scale: float) -> None:
    """A line from ``a`` to ``b`` with a head short of ``b``'s dot; a dark outline keeps it visible on white."""
    dx, dy = b.x() - a.x(), b.y() - a.y()
    length = math.hypot(dx, dy)
    if length * scale < 12:  # shorter than the two dots: nothing to point at
        return
    ux, uy = dx / length, dy / length
    tip = QPointF(b.x() - ux * 6 / scale, b.y() - uy * 6 / scale)
    size = 7 / scale
    head = QPolygonF([tip, QPointF(tip.x() - ux * size - uy * size * 0.55, tip.y() - uy * size + ux * size * 0.55),
                      QPointF(tip.x() - ux * size + uy * size * 0.55, tip.y() - uy * size - ux * size * 0.55)])
    for colour, width in ((QColor(0, 0, 0, 150), 4.0), (QColor(255, 255, 255), 2.0)):
        pen = QPen(colour, width)
        pen.setCosmetic(True)
        pen.setCapStyle(Qt.PenCapStyle.RoundCap)
        painter.setPen(pen)
        painter.setBrush(colour)
        painter.drawLine(a, QPointF(tip.x() - ux * size * 0.8, tip.y() - uy * size * 0.8))
        painter.drawPolygon(head)


# ----------------------------------------------------------------------------- the job


@dataclass(frozen=True)
class DragDone:
    result: DragResult
    latent: Latent  # the document's latent with the drag added to its edit stack
    image: Any  # (H, W, 3) uint8, its render


class _PreviewRelay(QObject):
    """Lives on the GUI thread; the worker emits through it, so previews arrive queued and in order."""

    preview = Signal(object)


def drag_job(G: Any, latent: Latent, pairs: list[Pair], mask: Any, config: Any, stop: CancelToken,
             relay: Callable[[DragPreview], None], progress: Any = None, cancel: Any = None) -> DragDone:
    """Run :func:`engine.ops.drag.drag` from the document's current latent (worker thread); previews go
    to ``relay`` (at most ~30 a second, the last always), progress without them to ``progress``."""
    from engine.ops.drag import drag

    last = [float("-inf")]

    def report(step: int, total: int, message: str, preview: Any = None) -> None:
        now = time.monotonic()
        if preview is not None and (now - last[0] >= PREVIEW_INTERVAL or step >= total or stop.cancelled):
            last[0] = now
            relay(preview)
        if progress is not None:
            progress(step, total, message)

    handles, targets = [h for h, _ in pairs], [t for _, t in pairs]
    result = drag(latent.generator(G), latent.current_ws(), handles, targets, mask, config, progress=report,
                  cancel=cancel, stop=stop)
    relay(_final_preview(result))  # the rate limit may have held back the last step's
    new = dataclasses.replace(latent, edits=[*latent.edits, result.edit(f"drag {len(pairs)}")])
    new._tuned_G = latent._tuned_G  # replace() leaves out the copy holding tuned weights (an init=False field)
    return DragDone(result, new, new.render(G))


def _final_preview(result: DragResult) -> Any:
    from engine.ops.drag import DragPreview

    return DragPreview(result.image, result.points, result.targets, result.steps)


# ----------------------------------------------------------------------------- the tool


class DragTool(QObject):
    """The tool's state and actions; :attr:`controls` is its part of the Edit panel.

    Signals: ``finished(DragDone)`` when a drag has landed, ``stateChanged()`` when what the
    controls show changes (points, running, enabling).
    """

    finished = Signal(object)
    stateChanged = Signal()

    def __init__(self, model: ModelState, document: Document, runner: JobRunner, canvas: Canvas,
                 parent: QObject | None = None):
        super().__init__(parent)
        self.model, self.document, self.runner, self.canvas = model, document, runner, canvas
        self.job: int | None = None
        self.last: DragDone | None = None
        self.message = ""
        self._stop = CancelToken()
        self._started: tuple[Any, tuple] | None = None  # (latent, points) when the running drag began
        self._points: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # latent -> its points
        self._relay = _PreviewRelay(self)
        self._relay.preview.connect(self._previewed)
        self.layer = DragLayer()
        self.layer.attach(canvas)
        self.layer.setVisible(False)
        self.mask_layer = PaintLayer(document.undo_stack, colour=MASK_COLOUR, name="Editable region")
        self.mask_layer.attach(canvas)
        self.mask_layer.setVisible(False)
        self.action = QAction("&Drag Tool", self)
        self.action.setCheckable(True)
        self.action.setShortcut(QKeySequence("D"))
        self.action.setStatusTip("Drag points of the image to new places (DragGAN): click a handle, then its target")
        self.action.toggled.connect(self.set_active)
        self.controls = DragControls(self)
        self.layer.pointsChanged.connect(self._points_changed)
        self.mask_layer.maskChanged.connect(self.stateChanged)
        document.stateChanged.connect(self._image_changed)
        document.latentChanged.connect(self._latent_changed)
        model.modelChanged.connect(lambda _: self.stateChanged.emit())
        self._image_changed()

    # State --------------------------------------------------------------------------

    @property
    def active(self) -> bool:
        return self.action.isChecked()

    @property
    def running(self) -> bool:
        return self.job is not None

    def can_run(self) -> bool:
        latent = self.document.latent
        return (not self.running and latent is not None and self.model.generator is not None
                and latent_fits(latent, self.model.info) and bool(self.layer.complete_pairs()))

    def set_active(self, on: bool) -> None:
        """Turn the tool on (clicks place points) or off (the points stay, hidden)."""
        if self.action.isChecked() != on:
            self.action.setChecked(on)  # comes back here through toggled
            return
        if on:
            self.controls.mask.brush_button.setChecked(False)
        self.layer.set_active(on and not self.running)
        self._show_layers()
        self.stateChanged.emit()

    def _show_layers(self) -> None:
        on = self.active or self.running or self.controls.mask.brush_button.isChecked()
        self.layer.setVisible(self.active or self.running)
        self.mask_layer.setVisible(on)

    def clear(self) -> None:
        self.layer.clear()

    def _points_changed(self) -> None:
        if self._started is None:  # the user's change: the last run's report is old news
            self.message = ""
        self.stateChanged.emit()

    def _image_changed(self) -> None:
        image = self.document.image
        width, height = (image.width, image.height) if image is not None else (0, 0)
        self.layer.set_size(width, height)
        self.mask_layer.set_size(width, height)
        self.stateChanged.emit()

    def _latent_changed(self, latent: Latent | None) -> None:
        if latent is not None and latent in self._points and not self.running:
            self.layer.restore(self._points[latent])  # undo / redo of a drag: its points come back with it
        self.stateChanged.emit()

    # Running ------------------------------------------------------------------------

    def run(self) -> int | None:
        """Start the drag on the worker; the job id, or None if nothing can run."""
        if not self.can_run():
            return None
        from engine.ops.drag import DragConfig

        info, latent = self.model.info, self.document.latent
        pairs = self.layer.pairs(info.resolution)
        mask = self.mask_layer.mask if self.mask_layer.has_paint() else None
        config = DragConfig(mode=self.controls.mode(), max_steps=self.controls.steps.value())
        self._stop = CancelToken()
        self._started = (latent, self.layer.snapshot())
        self._points[latent] = self._started[1]
        self.layer.starts = [QPointF(h) for h, _ in self.layer.complete_pairs()]
        self.layer.locked = True
        n = len(pairs)
        title = f"Drag {n} point{'s' if n != 1 else ''}"
        self.message, self.last = "", None
        self.job = self.runner.submit(drag_job, self.model.generator, latent, pairs, mask, config, self._stop,
                                      self._relay.preview.emit, title=title,
                                      on_result=lambda done: self._landed(done, title, latent))
        self.runner.jobFinished.connect(self._finished)
        self.set_active(self.active)
        return self.job

    def stop(self) -> None:
        """End the running drag after its current step, keeping what it reached."""
        self._stop.cancel()

    def _previewed(self, preview: DragPreview) -> None:
        if not self.running:
            return
        self.canvas.show_preview(preview.image)
        self.layer.set_handles(preview.points, preview.image.shape[1])
        gap = max(math.dist(p, t) for p, t in zip(preview.points, preview.targets))
        self.controls.show_status(f"Step {preview.step} · {gap:.1f} px to go")

    def _landed(self, done: DragDone, title: str, started_from: Latent) -> None:
        if self.document.latent is not started_from:
            self.message = "Dropped: the image changed while dragging"
            return
        self.layer.set_handles(done.result.points, done.image.shape[1])
        self._points[done.latent] = self.layer.snapshot()
        self.document.undo_stack.push(ReplaceImage(self.document, Image(done.image), title, done.latent))
        self.last = done
        r = done.result
        how = {"arrived": "Arrived", "user": "Stopped", "max_steps": "Step limit"}[r.stopped]
        gap = max(r.distances[-1])
        self.message = f"{how}: {r.steps} steps, {r.seconds:.1f} s, {gap:.1f} px from the target"
        self.finished.emit(done)

    def _finished(self, job_id: int) -> None:
        if job_id != self.job:
            return
        self.runner.jobFinished.disconnect(self._finished)
        self.job = None
        self.layer.locked = False
        self.layer.starts = []
        if self.last is None or self.document.latent is not self.last.latent:  # cancelled, failed or dropped
            self.layer.restore(self._started[1])
            self.message = self.message or "Cancelled: nothing changed"
        self._started = None
        self.set_active(self.active)


class DragControls(QWidget):
    """The Drag section of the Edit panel: tool toggle, clear, space, steps, run / stop, status, mask."""

    def __init__(self, tool: DragTool, parent: QWidget | None = None):
        super().__init__(parent)
        self.tool = tool
        self.setStyleSheet("QPushButton:checked { background: #2f5f96; border: 1px solid #4a9eff; }")
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(4)
        row = QHBoxLayout()
        self.tool_button = QPushButton("Drag tool (D)")
        self.tool_button.setCheckable(True)
        self.tool_button.setToolTip(tool.action.statusTip())
        self.tool_button.toggled.connect(tool.action.setChecked)
        tool.action.toggled.connect(self.tool_button.setChecked)
        self.clear_button = QPushButton("Clear")
        self.clear_button.setToolTip("Remove every handle and target")
        self.clear_button.clicked.connect(tool.clear)
        row.addWidget(self.tool_button, 1)
        row.addWidget(self.clear_button)
        layout.addLayout(row)
        self.status = status_label()
        layout.addWidget(self.status)
        row = QHBoxLayout()
        self.space = QComboBox()
        self.space.addItems(["W+", "W"])
        self.space.setToolTip("W+: one latent per optimised layer (DragGAN's choice); W: one shared by them")
        self.steps = QSpinBox()
        self.steps.setRange(1, 2000)
        self.steps.setValue(300)
        self.steps.setToolTip("Stop after this many steps if the handles have not arrived")
        row.addWidget(key_label("Space"))
        row.addWidget(self.space)
        row.addSpacing(8)
        row.addWidget(key_label("Steps"))
        row.addWidget(self.steps, 1)
        layout.addLayout(row)
        row = QHBoxLayout()
        self.run_button = accent_button("Run", "Move each handle onto its target (the result is one undoable step)")
        self.run_button.clicked.connect(tool.run)
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip("Stop and keep the image as it is now (cancel in the status bar discards it)")
        self.stop_button.clicked.connect(tool.stop)
        row.addWidget(self.run_button, 1)
        row.addWidget(self.stop_button)
        layout.addLayout(row)
        self.mask = MaskControls(tool.mask_layer, "Editable region")
        self.mask.brush_button.toggled.connect(self._brush_toggled)
        layout.addWidget(self.mask)
        tool.stateChanged.connect(self.refresh)
        self.refresh()

    def mode(self) -> str:
        return "w+" if self.space.currentIndex() == 0 else "w"

    def _brush_toggled(self, on: bool) -> None:
        if on:
            self.tool.action.setChecked(False)
        self.tool._show_layers()
        self.refresh()

    def show_status(self, text: str) -> None:
        self.status.setText(text)

    def refresh(self) -> None:
        tool, running = self.tool, self.tool.running
        self.run_button.setEnabled(tool.can_run())
        self.stop_button.setEnabled(running)
        for widget in (self.clear_button, self.space, self.steps, self.mask):
            widget.setEnabled(not running)
        if running:
            return
        mask = " Only the green region may change." if tool.mask_layer.has_paint() else ""
        if tool.message:
            text = tool.message + "."
        elif self.mask.brush_button.isChecked():
            text = "Paint where the image may change (optional); D for the points."
        elif tool.active or tool.layer.handles:
            text = tool.layer.instruction()
        else:
            text = "Turn the tool on (D) to place points."
        self.status.setText(text + mask)
