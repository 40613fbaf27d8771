"""The Sketch panel: draw strokes and edges on the canvas, get realistic images back.

The drawing half (tools, layers, edges from the image, the sketch's place in the document)
is :class:`~gui.sketch_tools.SketchTools`. This half turns the drawing into pictures.
Generate runs ``engine.ops.sketch`` on the worker (``gui/sketch_state.py``): K candidates,
best first, in a strip; a click makes one the document's image and latent (one undoable
step), so the Edit panel edits it next. Live mode re-runs a short search warm-started from the
last result after each finished stroke, through a :class:`~gui.render_queue.LatestRenderer`:
at most one search runs and one waits, only the newest lands, and its latency is shown. The
feed-forward route (a pix2pix edges-to-image network) is offered when the catalogue has one.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QEvent, QTimer, Signal
from PySide6.QtGui import QHideEvent, QShowEvent
from PySide6.QtWidgets import QComboBox, QDockWidget, QHBoxLayout, QLabel, QPushButton, QSpinBox, QWidget

from engine.images import Image
from gui.commands import ReplaceImage
from gui.edit_state import latent_fits
from gui.jobs import JobCancelled, JobProgress
from gui.render_queue import LatestRenderer
from gui.sketch_layer import COLOUR, EDGES
from gui.sketch_state import (
    KINDS,
    LIVE_STEPS,
    SketchDone,
    SketchRequest,
    Translated,
    candidate_label,
    candidate_latent,
    edges_models,
    sketch_job,
    translate_job,
)
from gui.sketch_tools import KEEP, SketchTools
from gui.sketch_widgets import CandidateStrip, ResultView
from gui.widgets import (
    STYLE,
    CompactComboBox,
    accent_button,
    cancel_button,
    form_layout,
    key_label,
    scrolling_column,
    section_label,
    snug_button,
    status_label,
)

if TYPE_CHECKING:
    from gui.main_window import MainWindow

SKETCH_STYLE = STYLE + """
QPushButton:checked, QToolButton:checked { background: #2f5f96; border: 1px solid #4a9eff; }
QToolButton { padding: 4px 2px; }
QLabel#live { color: #4a9eff; }
"""
GAN_ROUTE = "gan"
NO_EDGES_MODEL = ("No edges-to-image model is installed (house-edges is not trained yet). A pix2pix "
                  "checkpoint whose model card says kind: edges-to-image, in the models folder, appears here.")


class SketchPanel(QWidget):
    """Signals: ``generated(object)`` when results are shown (a ``SketchDone``, or a ``Translated`` of
    the edges model), ``picked(int)`` when one has landed in the document, ``liveLanded(object)`` for
    each live result shown."""

    generated = Signal(object)
    picked = Signal(int)
    liveLanded = Signal(object)

    def __init__(self, window: MainWindow, parent: QWidget | None = None):
        super().__init__(parent)
        self.main_window, self.document, self.runner = window, window.document, window.runner
        self.model = window.model
        self.job: int | None = None
        self.done: SketchDone | None = None  # the last Generate
        self.results: list[tuple[Any, Any]] = []  # what the strip shows: (candidate or Translated, model info)
        self.live_result: Any = None  # the last live result shown
        self.live_steps = LIVE_STEPS
        self._shown: tuple[Any, Any] | None = None  # what the result view shows
        self._message = ""
        self._prior: tuple[Any, Any] | None = None  # (G, its W prior)
        self._warm: Any = None  # ws of the last result picked or shown live
        self._edge_nets: dict[str, Any] = {}  # path -> loaded edges-to-image network
        self._live = LatestRenderer(self.runner, parent=self)
        self._dock: QDockWidget | None = None
        self._latency: float | None = None  # seconds from a stroke to its live result, the last one
        self.setStyleSheet(SKETCH_STYLE)
        self.tools = SketchTools(window)
        self._build()
        self.tools.edited.connect(self._sketch_edited)
        self.tools.edges_button.toggled.connect(lambda _: self._update_enabled())
        self.route_combo.currentIndexChanged.connect(lambda _: self._update_enabled())
        self.kind_combo.currentIndexChanged.connect(lambda _: self._update_enabled())
        self.generate_button.clicked.connect(self.start)
        self.cancel_button.clicked.connect(self.cancel)
        self.live_button.toggled.connect(self._live_toggled)
        self.use_button.clicked.connect(self.use_shown)
        self.strip.picked.connect(self.pick)
        self.strip.hovered.connect(self._show_result)
        self._live.busyChanged.connect(lambda _: self._show_live())
        self.model.modelChanged.connect(self._model_changed)
        self.document.stateChanged.connect(self._update_enabled)
        self.main_window.files.opened.connect(lambda _: setattr(self, "_warm", None))
        self.runner.jobProgress.connect(self._progress)
        self.runner.jobCancelled.connect(self._cancelled)
        self.runner.jobFinished.connect(self._job_finished)
        self._model_changed(self.model.info)
        self.tools.show_layers(False)

    @property
    def layer(self) -> Any:
        """The canvas layer of colour strokes and edges (:class:`~gui.sketch_layer.SketchLayer`)."""
        return self.tools.layer

    # Layout -------------------------------------------------------------------------

    def _build(self) -> None:
        layout, self.scroll = scrolling_column(self)
        layout.addWidget(self.tools)
        layout.addWidget(section_label("Generate"))
        form = form_layout(row_spacing=6)
        self.route_combo = CompactComboBox()
        self.route_combo.setToolTip("GAN search: find latents of the loaded generator that honour the drawing. "
                                    "Edges model: a network that turns edges into a picture at once")
        form.addRow(key_label("Route"), self.route_combo)
        self.kind_combo = QComboBox()
        for kind, label in KINDS.items():
            self.kind_combo.addItem(label, kind)
        self.kind_combo.setToolTip("Which layers the search honours; a painted keep mask always counts")
        form.addRow(key_label("Use"), self.kind_combo)
        self.candidates_spin = QSpinBox()
        self.candidates_spin.setRange(1, 8)
        self.candidates_spin.setValue(4)
        self.candidates_spin.setToolTip("How many results, from different starts, searched together")
        self.steps_spin = QSpinBox()
        self.steps_spin.setRange(1, 2000)
        self.steps_spin.setSingleStep(25)
        self.steps_spin.setValue(100)
        self.steps_spin.setToolTip("Search steps (house-gan: 4 candidates × 20 steps take about 4 s on one core)")
        form.addRow(key_label("Candidates"), self.candidates_spin)
        form.addRow(key_label("Steps"), self.steps_spin)
        layout.addLayout(form)
        buttons = QHBoxLayout()
        self.generate_button = accent_button("Generate", "Search for images that honour the drawing; "
                                                         "pick one from the strip below")
        self.cancel_button = cancel_button("Stop the search; the image stays as it was")
        self.live_button = snug_button(QPushButton("Live"))
        self.live_button.setCheckable(True)
        self.live_button.setToolTip("After each stroke, continue a short search from the last result "
                                    "(only the newest drawing is searched)")
        buttons.addWidget(self.generate_button, 1)
        buttons.addWidget(self.cancel_button)
        buttons.addWidget(self.live_button)
        layout.addLayout(buttons)
        self.live_label = QLabel()
        self.live_label.setObjectName("live")
        layout.addWidget(self.live_label)
        self.status = status_label()
        layout.addWidget(self.status)
        layout.addWidget(section_label("Result"))
        self.result_view = ResultView()
        layout.addWidget(self.result_view)
        self.strip = CandidateStrip()
        layout.addWidget(self.strip)
        self.use_button = QPushButton("Use this result")
        self.use_button.setToolTip("Make the result shown above the document's image (one undoable step)")
        layout.addWidget(self.use_button)
        layout.addWidget(self.tools.edges_box)
        layout.addStretch(1)

    def event(self, event: QEvent) -> bool:
        # A dock behind another tab stays "visible" (Qt moves it out of sight), so the dock's
        # visibilityChanged, not show/hide events, says whether the panel is in front.
        if event.type() == QEvent.Type.ParentChange and self._dock is None \
                and isinstance(self.parentWidget(), QDockWidget):
            self._dock = self.parentWidget()
            self._dock.visibilityChanged.connect(self.tools.show_layers)
        return super().event(event)

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        if self._dock is None:
            self.tools.show_layers(True)

    def hideEvent(self, event: QHideEvent) -> None:
        self.tools.show_layers(False)
        super().hideEvent(event)

    @property
    def in_front(self) -> bool:
        """Whether the panel is the one shown (its layers on the canvas, its keys on)."""
        return self.tools.in_front

    def _sketch_edited(self) -> None:
        self._update_enabled()
        if self.live_button.isChecked():
            self.request_live()

    def drawing(self) -> Any:
        """The drawing the controls describe (:class:`~gui.sketch_state.Drawing`)."""
        return self.tools.drawing(self.kind_combo.currentData())

    # Routes -------------------------------------------------------------------------

    def _model_changed(self, info: Any) -> None:
        """Results of another generator's latent space mean nothing now: forget them."""
        self._prior, self._warm, self.done, self.results, self.live_result = None, None, None, [], None
        self._shown, self._latency = None, None
        self._live.invalidate()
        self.strip.set_items([])
        self.result_view.set_image(None)
        self.fill_routes()
        self._update_enabled()

    def fill_routes(self) -> None:
        """List the routes: the GAN search, and each edges-to-image model of the catalogue."""
        current = self.route_combo.currentData()
        self.route_combo.blockSignals(True)
        self.route_combo.clear()
        info = self.model.info
        self.route_combo.addItem(f"GAN search · {info.name if info else 'no model'}", GAN_ROUTE)
        entries = edges_models()
        for entry in entries:
            self.route_combo.addItem(f"Edges model · {entry.title}", str(entry.path))
        if not entries:
            self.route_combo.addItem("Edges model (none installed)", None)
            item = self.route_combo.model().item(1)
            item.setEnabled(False)
            item.setToolTip(NO_EDGES_MODEL)
        index = self.route_combo.findData(current) if current is not None else 0
        self.route_combo.setCurrentIndex(max(index, 0))
        self.route_combo.blockSignals(False)

    @property
    def route(self) -> str:
        """``"gan"``, or the path of the edges-to-image model."""
        return self.route_combo.currentData() or GAN_ROUTE

    def _blocker(self) -> str:
        """Why nothing can run now ("" when something can)."""
        if self.document.image is None:
            return "Open an image or generate a sample to draw on."
        if self.route == GAN_ROUTE and self.model.info is None:
            return "Load a generator to search."
        edges = self.tools.has(EDGES)
        if self.route != GAN_ROUTE:
            return "" if edges else "Draw edges (P) or take them from the image: the edges model reads edges only."
        kind = self.kind_combo.currentData()
        drawn = {"both": self.tools.has(COLOUR) or edges, "strokes": self.tools.has(COLOUR), "edges": edges}[kind]
        if not drawn and not self.tools.has(KEEP):
            what = {"both": "strokes (B) or edges (P)", "strokes": "colour strokes (B)", "edges": "edges (P)"}[kind]
            return f"Draw {what} on the image first."
        return ""

    def _update_enabled(self) -> None:
        running = self.job is not None
        blocker = self._blocker() if not running else ""
        self.generate_button.setEnabled(not running and not blocker)
        self.cancel_button.setEnabled(running)
        for widget in (self.route_combo, self.kind_combo, self.candidates_spin, self.steps_spin):
            widget.setEnabled(not running)
        self.candidates_spin.setEnabled(not running and self.route == GAN_ROUTE)
        self.use_button.setEnabled(self._shown is not None)
        if not running:
            info = self.model.info
            ready = f"Ready: {info.name}, {info.resolution} px." if info and self.route == GAN_ROUTE else "Ready."
            self.status.setText(blocker or self._message or ready)
        self._show_live()

    # Generate -----------------------------------------------------------------------

    def _prior_for(self, G: Any) -> Any:
        return self._prior[1] if self._prior is not None and self._prior[0] is G else None

    def start(self) -> int | None:
        """Search with the current settings; the job id (None if it cannot start now)."""
        self._update_enabled()
        if not self.generate_button.isEnabled():
            return None
        drawing, info = self.drawing(), self.model.info
        image = self.document.image
        self.strip.set_items([])
        self._message = ""
        if self.route == GAN_ROUTE:
            G = self.model.generator
            request = SketchRequest(drawing, self.candidates_spin.value(), self.steps_spin.value(),
                                    previews=image.width == image.height)
            self.job = self.runner.submit(sketch_job, G, request, None, self._prior_for(G), title=request.title,
                                          on_result=lambda done: self._generated(done, G, info),
                                          on_error=self._failed)
            self.status.setText(f"{request.title}: starting…")
        else:
            path, edges = self.route, self.tools.drawing("edges").edges  # the network reads edges only
            self.job = self.runner.submit(translate_job, self._edge_nets.get(path, path), edges,
                                          time.monotonic(), self.model.device, title="Edges to image",
                                          on_result=lambda done: self._translated(done, path, live=False),
                                          on_error=self._failed)
            self.status.setText("Edges to image: starting…")
        self._update_enabled()
        return self.job

    def cancel(self) -> None:
        if self.job is not None:
            self.runner.cancel(self.job)

    def _progress(self, message: JobProgress) -> None:
        if message.job_id == self.job:
            self.status.setText(f"Searching: step {message.step} of {message.total}")

    def _generated(self, done: SketchDone, G: Any, info: Any) -> None:
        if self.model.generator is not G:
            self._failed("the model changed during the search; its results were dropped")
            return
        self._prior = (G, done.prior)
        self.done = done
        self.results = [(c, info) for c in done.result.candidates]
        items = []
        for rank, candidate in enumerate(done.result.candidates, start=1):
            label, tip = candidate_label(rank, candidate)
            items.append((candidate.image, label, tip))
        self.strip.set_items(items)
        self._show_result(0)
        QTimer.singleShot(0, lambda: self.scroll.ensureWidgetVisible(self.use_button))  # once laid out
        r = done.result
        notes = f" ({'; '.join(done.request.drawing.notes)})" if done.request.drawing.notes else ""
        self._message = (f"{len(r.candidates)} candidates, {r.steps} steps in {r.seconds:.1f} s{notes}. "
                         f"Click one to use it.")
        self.status.setText(self._message)
        self.generated.emit(done)

    def _translated(self, done: Translated, path: str, live: bool) -> None:
        self._edge_nets[path] = done.model
        self.results = [(done, None)]
        latency = time.monotonic() - done.requested
        self.strip.set_items([(done.image, "1", f"Edges model: {done.seconds:.2f} s")])
        self.result_view.set_image(done.image, f"live · {latency:.1f} s" if live else "edges model")
        self._shown = done, None
        self._message = f"Edges model: {done.seconds:.2f} s. Click the result to use it."
        if live:
            self.live_result = done
            self._latency = latency
        self._update_enabled()
        (self.liveLanded if live else self.generated).emit(done)

    def _failed(self, message: str) -> None:
        self._message = f"Failed: {message}"
        self.status.setText(self._message)

    def _cancelled(self, message: JobCancelled) -> None:
        if message.job_id == self.job:
            self._message = f"{message.title}: cancelled. The image is unchanged."
            self.status.setText(self._message)

    def _job_finished(self, job_id: int) -> None:
        if job_id == self.job:
            self.job = None
            self._update_enabled()

    # Results ------------------------------------------------------------------------

    def _show_result(self, index: int) -> None:
        if 0 <= index < len(self.results):
            result, info = self.results[index]
            caption = f"candidate {index + 1}" if info is not None else "edges model"
            self.result_view.set_image(result.image, caption)
            self._shown = result, info
            self.use_button.setEnabled(True)

    def pick(self, index: int) -> None:
        """Make candidate ``index`` (0 = best) the document's image and latent, as one undoable step."""
        if 0 <= index < len(self.results):
            self._show_result(index)
            self.strip.setCurrentRow(index)
            self._apply(*self.results[index], f"Sketch candidate {index + 1}")
            self.picked.emit(index)

    def use_shown(self) -> None:
        """Apply the result the view shows (a live result, or the candidate last pointed at)."""
        if self._shown is not None:
            self._apply(*self._shown, "Sketch result")

    def _apply(self, result: Any, info: Any, text: str) -> None:
        if isinstance(result, Translated):
            self.document.undo_stack.push(ReplaceImage(self.document, Image(result.image), "Edges to image"))
        else:
            # With a keep mask the image has the kept pixels pasted back, as an inpainting result does;
            # the latent renders the search's own picture.
            meta = {"kind": self.kind_combo.currentData(), "loss": result.loss, "terms": result.terms}
            latent = candidate_latent(result, info, self.tools.document_layers(), meta)
            self._warm = result.ws
            self.document.undo_stack.push(ReplaceImage(self.document, Image(result.image), text, latent))
        self.tools.reveal_result()

    # Live ---------------------------------------------------------------------------

    def _live_toggled(self, on: bool) -> None:
        if on:
            QTimer.singleShot(0, lambda: self.scroll.ensureWidgetVisible(self.result_view))
            self.request_live()
        else:
            self._live.invalidate()
        self._show_live()

    def request_live(self) -> bool:
        """Ask for a live result of the current drawing (latest request wins); False if none can run."""
        if self._blocker():
            self._show_live()
            return False
        if self.route != GAN_ROUTE:
            path, edges = self.route, self.tools.drawing("edges").edges
            self._live.request(translate_job, self._edge_nets.get(path, path), edges, time.monotonic(),
                               self.model.device, title="Live edges to image",
                               on_result=lambda done: self._translated(done, path, live=True))
            return True
        G, info = self.model.generator, self.model.info
        request = SketchRequest(self.drawing(), steps=self.live_steps, live=True, previews=False)
        self._live.request(sketch_job, G, request, self._warm_start(info), self._prior_for(G), title=request.title,
                           on_result=lambda done: self._live_landed(done, G, info),
                           on_error=self._failed)
        return True

    def _warm_start(self, info: Any) -> Any:
        """The last result's ws; else the document's latent when it belongs to this model; else None."""
        if self._warm is not None:
            return self._warm
        latent = self.document.latent
        return latent if latent is not None and latent_fits(latent, info) else None

    def _live_landed(self, done: SketchDone, G: Any, info: Any) -> None:
        self._prior = (G, done.prior)
        best = done.result.best
        self._warm = best.ws
        self.live_result = done
        self.results = [(best, info)]
        latency = done.latency
        self.strip.set_items([(best.image, "live", f"Live result: loss {best.loss:.3f}")])
        self.result_view.set_image(best.image, f"live · {latency:.1f} s")
        self._shown = best, info
        self._latency = latency
        start = "from the last result" if done.warm else "from a fresh start"
        self._message = (f"Live: {done.result.steps} steps {start}, "
                         f"loss {best.loss:.3f}. “Use this result” puts it on the canvas.")
        self._update_enabled()
        self.liveLanded.emit(done)

    def _show_live(self) -> None:
        """The live indicator: busy, or how long the last live result took from the stroke to the screen."""
        if not self.live_button.isChecked():
            text = ""
        elif self._live.busy:
            text = "live · searching…"
        elif self._latency is not None:
            text = f"live · {self._latency:.1f} s"
        else:
            text = "live · waiting for a stroke"
        self.live_label.setText(text)
        self.live_label.setVisible(bool(text))
