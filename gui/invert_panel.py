"""The Invert panel: find the latent of the document's image, or solve an inverse problem with it.

Mode (W, W+, PTI), task (invert, inpaint, colourise, super-resolve ×2/×4/×8), steps, an
optional FFHQ face alignment, Start and Cancel. A run is one job on the window's worker
(``gui/invert_state.py``): its previews, pasted back into the photo, replace the picture on
the canvas as they come, and its per-step figures draw the live curve. The finished result
lands as one undoable step carrying its latent document (PTI's tuned weights included), so
the Edit panel edits it next; the compare view then pits it against the input the search
saw. A cancelled or failed run leaves the document as it was.

Inpainting takes the region to fill from a mask painted on the canvas
(:class:`~gui.paint_layer.PaintLayer`, strokes undoable with the document); alignment takes
four points from a detector, or placed by hand (:class:`~gui.landmark_layer.LandmarkLayer`).
"Paste back into photo" warps the (edited) result back into the photo it was cut from.
"""

from __future__ import annotations

import time
from typing import Any

from PySide6.QtCore import Signal
from PySide6.QtGui import QHideEvent
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QPushButton, QSpinBox, QWidget

from engine.images import Image
from gui.canvas import Canvas
from gui.commands import ReplaceImage
from gui.document import Document
from gui.invert_state import (
    MODE_LABELS,
    TASKS,
    InvertDone,
    InvertRequest,
    can_paste_back,
    detect_landmarks,
    detector_available,
    figures_lines,
    invert_job,
    parse_step,
    paste_back_job,
)
from gui.invert_widgets import AlignControls, CurveView, FiguresView, MaskControls
from gui.jobs import JobCancelled, JobProgress, JobRunner
from gui.landmark_layer import LandmarkLayer
from gui.model_state import ModelState
from gui.paint_layer import PaintLayer
from gui.widgets import (
    STYLE,
    accent_button,
    cancel_button,
    form_layout,
    key_label,
    scrolling_column,
    section_label,
    status_label,
)

INVERT_STYLE = STYLE + """
QPushButton:checked { background: #2f5f96; border: 1px solid #4a9eff; }
QLabel#figure { color: #e4e4e4; }
"""


class InvertResult(ReplaceImage):
    """An inversion landing: the result and its latent; the compare view's "before" is the input the search saw."""

    def __init__(self, document: Document, image: Image, observed: Image, text: str, latent: Any):
        super().__init__(document, image, text, latent)
        self.observed = observed

    def redo(self) -> None:
        self.document.set_state(self.new_image, self.observed, self.new_latent)


class InvertPanel(QWidget):
    """Signals: ``finished(InvertDone)`` when a result has landed in the document."""

    finished = Signal(object)

    def __init__(self, model: ModelState, document: Document, runner: JobRunner, canvas: Canvas,
                 parent: QWidget | None = None):
        super().__init__(parent)
        self.model, self.document, self.runner, self.canvas = model, document, runner, canvas
        self.job: int | None = None
        self.last: InvertDone | None = None
        self._started = 0.0
        self._message = ""  # how the last run went, shown while nothing blocks the next
        self._discriminators: dict[tuple[str, str, str], Any] = {}  # (path, sha256, device) -> D or None
        self.mask_layer = PaintLayer(document.undo_stack, name="Mask")
        self.mask_layer.attach(canvas)
        self.points_layer = LandmarkLayer()
        self.points_layer.attach(canvas)
        self.setStyleSheet(INVERT_STYLE)
        self._build()
        model.modelChanged.connect(lambda _: self._update_enabled())
        document.stateChanged.connect(self._image_changed)
        document.latentChanged.connect(lambda _: self._update_enabled())
        runner.jobProgress.connect(self._progress)
        runner.jobCancelled.connect(self._cancelled)
        runner.jobFinished.connect(self._job_finished)
        self.points_layer.pointsChanged.connect(self._update_enabled)
        self.mask_layer.maskChanged.connect(self._update_enabled)
        self._task_changed()
        self._image_changed()

    # Layout -------------------------------------------------------------------------

    def _build(self) -> None:
        layout, self.scroll = scrolling_column(self)
        layout.addWidget(section_label("Search"))
        form = form_layout()
        self.mode_combo = QComboBox()
        for mode, label in MODE_LABELS.items():
            self.mode_combo.addItem(label, mode)
        self.mode_combo.setCurrentIndex(1)
        self.mode_combo.setToolTip("W: one latent for every layer; W+: one per layer (closer); PTI: W+, then the "
                                   "generator's weights are tuned to the picture (closest, kept in the document)")
        self.mode_combo.currentIndexChanged.connect(lambda _: self._mode_changed())
        form.addRow(key_label("Mode"), self.mode_combo)
        self.task_combo = QComboBox()
        for choice in TASKS:
            self.task_combo.addItem(choice.label)
        self.task_combo.setToolTip("Invert: find the image itself. Inpaint: fill the painted region. Colourise: fit "
                                   "the brightness only. Super-resolve: fit a shrunk copy, the model adds detail")
        self.task_combo.currentIndexChanged.connect(lambda _: self._task_changed())
        form.addRow(key_label("Task"), self.task_combo)
        self.steps_spin = self._spin(0, "Latent search steps (25 steps take about a second on one CPU core). Auto: "
                                        "500, or 200 when several samples are averaged", auto=True)
        form.addRow(key_label("Steps"), self.steps_spin)
        self.samples_spin = QSpinBox()
        self.samples_spin.setRange(0, 16)
        self.samples_spin.setSpecialValueText("auto")
        self.samples_spin.setToolTip("Searches run together from different starts; the result is the mean of their "
                                     "answers: closer to the truth on average, softer than any one. Auto: 8 to "
                                     "super-resolve with a generator up to 128 px, where one guess loses to plain "
                                     "enlargement; 1 otherwise")
        form.addRow(key_label("Samples"), self.samples_spin)
        self.tune_spin = self._spin(400, "PTI: steps of tuning the generator's weights after the latent search")
        self.tune_label = key_label("Tuning steps")
        form.addRow(self.tune_label, self.tune_spin)
        layout.addLayout(form)
        self.align = AlignControls(self.points_layer, detector_available())
        self.align.align_check.toggled.connect(lambda _: self._update_enabled())
        self.align.place_button.toggled.connect(self._place_toggled)
        self.align.detect_button.clicked.connect(self.detect)
        layout.addWidget(self.align)
        self.mask = MaskControls(self.mask_layer)
        self.mask.brush_button.toggled.connect(self._brush_toggled)
        layout.addWidget(self.mask)
        buttons = QHBoxLayout()
        self.start_button = accent_button("Start", "Search the model for the current image "
                                                   "(the result is one undoable step)")
        self.start_button.clicked.connect(self.start)
        self.cancel_button = cancel_button("Stop the search; the image stays as it was")
        self.cancel_button.clicked.connect(self.cancel)
        buttons.addWidget(self.start_button, 1)
        buttons.addWidget(self.cancel_button)
        layout.addLayout(buttons)
        self.status = status_label()
        layout.addWidget(self.status)
        layout.addWidget(section_label("Progress"))
        self.curve = CurveView()
        layout.addWidget(self.curve)
        layout.addWidget(section_label("Result"))
        self.figures = FiguresView()
        layout.addWidget(self.figures)
        self.figures.set_rows([])
        self.paste_button = QPushButton("Paste back into photo")
        self.paste_button.setToolTip("Warp the result (with its edits) back into the photo it was cut from, "
                                     "blending the seam (one undoable step)")
        self.paste_button.clicked.connect(self.paste_back)
        layout.addWidget(self.paste_button)
        layout.addStretch(1)

    @staticmethod
    def _spin(value: int, tip: str, auto: bool = False) -> QSpinBox:
        """A step count; ``auto``: 0 reads "auto", the engine's choice."""
        spin = QSpinBox()
        spin.setRange(0 if auto else 1, 5000)
        if auto:
            spin.setSpecialValueText("auto")
        spin.setSingleStep(50)
        spin.setValue(value)
        spin.setToolTip(tip)
        return spin

    # Controls -----------------------------------------------------------------------

    @property
    def mode(self) -> str:
        return self.mode_combo.currentData()

    def set_mode(self, mode: str) -> None:
        self.mode_combo.setCurrentIndex(self.mode_combo.findData(mode))

    def set_task(self, label: str) -> None:
        """Pick a task by its label (``"Inpaint"``, ``"Super-resolve ×4"``, ...)."""
        self.task_combo.setCurrentIndex([c.label for c in TASKS].index(label))

    @property
    def task(self) -> Any:
        return TASKS[self.task_combo.currentIndex()]

    def _mode_changed(self) -> None:
        pti = self.mode == "pti"
        self.tune_spin.setVisible(pti)
        self.tune_label.setVisible(pti)

    def _task_changed(self) -> None:
        inpaint = self.task.task == "inpaint"
        self.mask.setVisible(inpaint)
        self.mask.brush_button.setChecked(inpaint and self.isVisible())  # choosing Inpaint means painting next
        self._show_mask()
        self._mode_changed()
        self._update_enabled()

    def _brush_toggled(self, on: bool) -> None:
        if on:  # one canvas tool at a time
            self.align.place_button.setChecked(False)
        self._show_mask()

    def _show_mask(self) -> None:
        """The mask shows while inpainting, except over a result that just landed (the brush brings it back)."""
        over_result = self.last is not None and self.document.latent is self.last.latent
        self.mask_layer.setVisible(self.task.task == "inpaint" and (self.mask.brush_button.isChecked()
                                                                     or not over_result))

    def _place_toggled(self, on: bool) -> None:
        if on:
            self.mask.brush_button.setChecked(False)

    def release_canvas(self) -> None:
        """Put the brush and the point placing down: a panel out of sight must not keep the canvas's
        left button. The window calls it when the panel's tab goes behind another one (a tabbed dock
        gets no hide event then: Qt only moves it out of sight)."""
        self.mask.brush_button.setChecked(False)
        self.align.place_button.setChecked(False)

    def hideEvent(self, event: QHideEvent) -> None:
        self.release_canvas()
        super().hideEvent(event)

    # The document -------------------------------------------------------------------

    def _image_changed(self) -> None:
        image = self.document.image
        if self.last is None or self.document.latent is not self.last.latent:
            self._message = ""  # the last run's report no longer describes what is shown
        width, height = (image.width, image.height) if image is not None else (0, 0)
        self.mask_layer.set_size(width, height)
        self.points_layer.set_size(width, height)
        self._show_mask()
        self._update_enabled()

    def _update_enabled(self) -> None:
        running = self.job is not None
        ready = self.model.info is not None and self.document.image is not None
        aligned_ok = not self.align.on or self.points_layer.complete
        mask_ok = self.task.task != "inpaint" or self.mask_layer.has_paint()
        self.start_button.setEnabled(ready and not running and aligned_ok and mask_ok)
        self.cancel_button.setEnabled(running)
        for widget in (self.mode_combo, self.task_combo, self.steps_spin, self.samples_spin, self.tune_spin):
            widget.setEnabled(not running)
        self.align.set_enabled(running, self.document.image is not None)
        image = self.document.image
        self.paste_button.setEnabled(not running and can_paste_back(self.document.latent,
                                                                     image.rgb if image is not None else None))
        self.align.show_state()
        if running:
            return
        if self.model.info is None:
            blocker = "Load a generator to invert into."
        elif image is None:
            blocker = "Open a photo (or generate a sample) to invert."
        elif not aligned_ok:
            blocker = "Place the four face points, or turn Align face off."
        elif not mask_ok:
            blocker = "Paint the region to fill with the brush."
        else:
            blocker = ""
        ready_text = f"Ready: {self.model.info.name}, {self.model.info.resolution} px." if self.model.info else ""
        self.status.setText(blocker or self._message or ready_text)

    def _say(self, text: str) -> None:
        """Report how the last run (or paste) went; it stays until the next one."""
        self._message = text
        self.status.setText(text)

    # Running ------------------------------------------------------------------------

    def request(self) -> InvertRequest:
        """The run the controls describe, on the document's current image."""
        image = self.document.image
        task = self.task
        landmarks = self.points_layer.landmarks() if self.align.on else None
        hole = self.mask_layer.mask if task.task == "inpaint" else None
        return InvertRequest(image.rgb, self.mode, task.task, task.factor, self.steps_spin.value() or None,
                             self.tune_spin.value(), landmarks, hole, samples=self.samples_spin.value() or None)

    def start(self) -> int | None:
        """Start a run with the current settings; the job id (None if it cannot start now)."""
        self._update_enabled()
        if not self.start_button.isEnabled():
            return None
        info, G = self.model.info, self.model.generator
        request = self.request()
        key = (str(info.path), info.sha256, info.device)
        D = self._discriminators.get(key, info.path)  # the path: read it on the worker the first time
        revision = self.document.revision
        self.mask.brush_button.setChecked(False)
        self.align.place_button.setChecked(False)
        plan = request.plan(info.resolution)
        total = plan.steps + (plan.pti_steps if plan.mode == "pti" else 0)
        self.curve.reset(total, [plan.steps] if plan.mode == "pti" else [])
        self.figures.set_rows([])
        self._started = time.monotonic()
        self.job = self.runner.submit(invert_job, G, D, info, request, title=request.title,
                                      on_result=lambda done: self._landed(done, revision, key),
                                      on_error=self._failed)
        self.status.setText(f"{request.title}: starting…")
        self._update_enabled()
        return self.job

    def cancel(self) -> None:
        if self.job is not None:
            self.runner.cancel(self.job)

    def _progress(self, message: JobProgress) -> None:
        if message.job_id != self.job:
            return
        point = parse_step(message.message)
        if point is not None:
            self.curve.add(point.step, point.loss, point.psnr)
            seconds = time.monotonic() - self._started
            self.status.setText(f"{point.phase[:1].upper()}{point.phase[1:]}: step {point.step} of {point.total} · "
                                f"fit {point.psnr:.1f} dB · {seconds:.0f} s")

    def _landed(self, done: InvertDone, revision: int, key: tuple[str, str, str]) -> None:
        self._discriminators[key] = done.D
        if revision != self.document.revision:
            self._say(f"{done.request.title}: dropped, the image changed while it ran.")
            return
        text = done.request.title
        self.last = done  # first: the views that follow the document ask whether it shows this result
        self.document.undo_stack.push(InvertResult(self.document, Image(done.image), Image(done.observed), text,
                                                   done.latent))
        self.canvas.set_compare(True)
        history = [(r.step, r.loss, r.psnr) for r in done.result.history]
        self.curve.set_history(history, self.curve.total)
        self.figures.set_rows(figures_lines(done))
        notes = f" ({'; '.join(done.prepared.notes)})" if done.prepared.notes else ""
        self._say(f"{text}: done{notes}. The Edit panel now edits its latent.")
        self.finished.emit(done)

    def _failed(self, message: str) -> None:
        self._say(f"Failed: {message}")

    def _cancelled(self, message: JobCancelled) -> None:
        if message.job_id == self.job:
            self._say(f"{message.title}: cancelled. The image is unchanged.")

    def _job_finished(self, job_id: int) -> None:
        if job_id == self.job:
            self.job = None
            self._update_enabled()

    # Alignment and paste back -------------------------------------------------------

    def detect(self) -> int | None:
        """Find the face points with the optional detector (a job); they can be dragged after."""
        image = self.document.image
        if image is None:
            return None
        self.align.status.setText("Detecting…")
        return self.runner.submit(detect_landmarks, image.rgb, title="Detect face landmarks",
                                  on_result=self._detected)

    def _detected(self, landmarks: Any) -> None:
        if landmarks is None:
            self.align.status.setText("No face found: place the points by hand.")
            self.align.place_button.setChecked(True)
            return
        self.points_layer.set_landmarks(landmarks)

    def paste_back(self) -> int | None:
        """Warp the current (edited) result back into the photo it was cut from, as one undoable step."""
        latent, image = self.document.latent, self.document.image
        if image is None or not can_paste_back(latent, image.rgb):
            return None
        quad, revision = latent.meta["invert"]["quad"], self.document.revision
        return self.runner.submit(paste_back_job, latent.source, image.to_uint8(), quad,
                                  title="Paste back into photo",
                                  on_result=lambda pixels: self._pasted(pixels, revision))

    def _pasted(self, pixels: Any, revision: int) -> None:
        if revision != self.document.revision:
            self._say("Paste back: dropped, the image changed meanwhile.")
            return
        self.document.undo_stack.push(ReplaceImage(self.document, Image(pixels), "Paste back into photo"))
        self.canvas.set_compare(True)
        self._say("Pasted back into the photo.")
