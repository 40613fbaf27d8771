"""The Generate panel: draw samples from the loaded generator by seed, truncation and class.

Seeds map to latents as in NVIDIA's scripts (``engine.ops.generate.sample``), so seed 42
here is seed 42 there. Every control change asks for a render; renders run on the worker
thread through a :class:`~gui.render_queue.LatestRenderer`: at most one render runs and at
most one waits, and a result whose request has been overtaken is dropped, so scrubbing the
ψ slider never builds a backlog.

A render lands in the document as one undoable step, "Generate seed N", carrying the
sample's latent document (``document.latent``) that the Edit panel then edits. Consecutive
generate steps merge into one (browsing seeds is one step to undo, back to the image
before browsing began). Like every edit it keeps the document's path: a sample drawn over
an opened photo still exports next to that photo; with nothing opened it is "Untitled".
``current_ws`` holds the latent of the last sample that landed.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QByteArray, QSize, Qt, Signal
from PySide6.QtGui import QAction, QIcon, QImage, QPainter, QPixmap
from PySide6.QtSvg import QSvgRenderer
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QFrame,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from engine.images import Image
from engine.jobs import Job
from gui.commands import ReplaceImage
from gui.document import Document
from gui.jobs import JobRunner
from gui.model_state import ModelInfo, ModelState
from gui.render_queue import LatestRenderer
from gui.widgets import STYLE, ElidedLabel, accent_button, column, form_layout, key_label, section_label, status_label

if TYPE_CHECKING:
    import torch
    from torch import nn

    from engine.document import Document as Latent
    from engine.ops.generate import Sample

MAX_SEED = 2**31 - 1  # QSpinBox holds a signed 32-bit int; the official seeds are below it too
PSI_MAX, PSI_DEFAULT, PSI_STEPS = 1.5, 0.7, 100  # slider ticks per unit of ψ
NOISE_MODES = ("const", "random", "none")

# Icons in the style of resources/icons (24 px grid, light 1.7 px strokes).
_SVG = ('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24" fill="none" stroke="#d9d9d9" '
        'stroke-width="1.7" stroke-linecap="round" stroke-linejoin="round">{}</svg>')
ICON_PATHS = {
    "previous": '<path d="M14.5 6l-6 6 6 6"/>',
    "next": '<path d="M9.5 6l6 6-6 6"/>',
    "random": '<rect x="4" y="4" width="16" height="16" rx="3"/><g fill="#d9d9d9" stroke="none">'
              '<circle cx="8.5" cy="8.5" r="1.4"/><circle cx="12" cy="12" r="1.4"/>'
              '<circle cx="15.5" cy="15.5" r="1.4"/></g>',
}


def panel_icon(name: str, size: int = 24) -> QIcon:
    """One of :data:`ICON_PATHS`, drawn at twice ``size`` so it stays sharp on high-DPI screens.

    The disabled look is drawn too: Fusion's automatic one barely dims light strokes.
    """
    icon = QIcon()
    for mode, colour in ((QIcon.Mode.Normal, "#d9d9d9"), (QIcon.Mode.Disabled, "#5e5e62")):
        svg = _SVG.format(ICON_PATHS[name]).replace("#d9d9d9", colour)
        image = QImage(2 * size, 2 * size, QImage.Format.Format_ARGB32_Premultiplied)
        image.fill(Qt.GlobalColor.transparent)
        painter = QPainter(image)
        QSvgRenderer(QByteArray(svg.encode())).render(painter)
        painter.end()
        pixmap = QPixmap.fromImage(image)
        pixmap.setDevicePixelRatio(2.0)
        icon.addPixmap(pixmap, mode)
    return icon


@dataclass(frozen=True)
class SampleRequest:
    seed: int
    psi: float
    class_index: int | None  # None for an unconditional model
    noise_mode: str


@dataclass(frozen=True)
class Rendered:
    request: SampleRequest
    sample: Sample
    seconds: float


def render_sample(G: nn.Module, request: SampleRequest, progress: Any = None, cancel: Any = None) -> Rendered:
    """Draw the sample ``request`` describes (a worker job)."""
    from engine.ops.generate import sample

    Job(1, progress, cancel).check()
    start = time.perf_counter()
    drawn = sample(G, request.seed, request.psi, None, request.class_index, request.noise_mode)
    return Rendered(request, drawn, time.perf_counter() - start)


def sample_latent(done: Rendered, info: ModelInfo) -> Latent:
    """The latent document of a drawn sample: its ``ws``, the model's file and hash, how it was drawn."""
    from engine.document import Document as Latent
    from engine.document import ModelRef

    request = done.request
    drawn = {"seed": request.seed, "psi": request.psi, "class_index": request.class_index}
    return Latent(done.sample.ws, ModelRef(info.model_id, str(info.path), info.sha256),
                  noise_mode=request.noise_mode, meta={"sample": drawn})


class GenerateImage(ReplaceImage):
    """Replace the document's image and latent with a sample's; merges with a generate step right before it."""

    def __init__(self, document: Document, image: Image, seed: int, latent: Latent | None = None):
        super().__init__(document, image, f"Generate seed {seed}", latent, merge_key="generate")


def _count(n: int) -> str:
    """83171 -> "83.2 k", 30370060 -> "30.4 M"."""
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return str(n)


def _tool_button(icon_name: str, tip: str) -> QToolButton:
    button = QToolButton()
    button.setIcon(panel_icon(icon_name))
    button.setIconSize(QSize(16, 16))
    button.setToolTip(tip)
    button.setAutoRaise(True)
    return button


class ModelInfoView(QWidget):
    """The loaded model's facts, or how to load one; later panels can show it too."""

    KEYS = ("File", "Family", "Resolution", "Latent", "Classes", "Parameters", "Device")

    def __init__(self, open_action: QAction | None = None, parent: QWidget | None = None):
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(6)
        self.placeholder = status_label("No generator loaded. Open a StyleGAN checkpoint (.pkl, .pt, .safetensors) "
                                        "or drop one on the window.")
        self.open_button = QPushButton("Open Checkpoint…")
        if open_action is not None:
            self.open_button.clicked.connect(open_action.trigger)
            self.open_button.setToolTip(open_action.statusTip())
        self.facts = QWidget()
        form = QFormLayout(self.facts)
        form.setContentsMargins(0, 0, 0, 0)
        form.setHorizontalSpacing(12)
        form.setVerticalSpacing(3)
        self.labels: dict[str, QLabel] = {}
        for key in self.KEYS:
            value = ElidedLabel() if key == "File" else QLabel()
            value.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            self.labels[key] = value
            form.addRow(key_label(key), value)
        for widget in (self.placeholder, self.open_button, self.facts):
            layout.addWidget(widget)
        self.show_info(None)

    def show_info(self, info: ModelInfo | None) -> None:
        self.placeholder.setVisible(info is None)
        self.open_button.setVisible(info is None)
        self.facts.setVisible(info is not None)
        if info is None:
            return
        values = {
            "Family": info.family_name,
            "Resolution": f"{info.resolution} × {info.resolution} px",
            "Latent": f"W+ {info.num_ws} × {info.w_dim}, z {info.z_dim}",
            "Classes": str(info.c_dim) if info.conditional else "unconditional",
            "Parameters": _count(info.parameters),
            "Device": info.device,
        }
        self.labels["File"].set_full_text(info.name)
        self.labels["File"].setToolTip(str(info.path))
        for key, text in values.items():
            self.labels[key].setText(text)
        self.labels["Parameters"].setToolTip(f"{info.parameters:,} parameters")


class GeneratePanel(QWidget):
    """Seed, ψ, class and noise controls, the model's facts, and the render loop.

    Signals: ``sampleChanged(Sample)`` when a sample lands in the document.
    """

    sampleChanged = Signal(object)

    def __init__(self, model: ModelState, document: Document, runner: JobRunner,
                 open_action: QAction | None = None, parent: QWidget | None = None):
        super().__init__(parent)
        self.model, self.document, self.runner = model, document, runner
        self._generator: nn.Module | None = None
        self._sample: Sample | None = None
        self._landed: Image | None = None  # the image of the last sample pushed, to know the canvas shows it
        self._renderer = LatestRenderer(runner, parent=self)
        self._rng = random.Random()
        self._status_before_load = ""
        self.setStyleSheet(STYLE)
        self._build(open_action)
        model.modelChanged.connect(self._model_changed)
        model.loadingChanged.connect(self._loading_changed)
        self._show_info(None)

    # Layout -------------------------------------------------------------------------

    def _build(self, open_action: QAction | None) -> None:
        layout = column(self)
        layout.addWidget(section_label("Model"))
        self.model_view = ModelInfoView(open_action)
        layout.addWidget(self.model_view)

        rule = QFrame()
        rule.setObjectName("rule")
        rule.setFrameShape(QFrame.Shape.HLine)
        layout.addWidget(rule)
        layout.addWidget(section_label("Sample"))
        self.controls = QWidget()
        form = form_layout(self.controls)
        form.addRow(key_label("Seed"), self._build_seed_row())
        form.addRow(key_label("Truncation ψ"), self._build_psi_row())
        self.class_combo = QComboBox()
        self.class_combo.setToolTip("The class a conditional model draws")
        self.class_combo.currentIndexChanged.connect(lambda _: self.request_render())
        form.addRow(key_label("Class"), self.class_combo)
        self.noise_combo = QComboBox()
        self.noise_combo.addItems(NOISE_MODES)
        self.noise_combo.setToolTip("Per-pixel noise: const (repeatable), random (new each render) or none")
        self.noise_combo.currentIndexChanged.connect(lambda _: self.request_render())
        form.addRow(key_label("Noise"), self.noise_combo)
        layout.addWidget(self.controls)

        self.generate_button = accent_button("Generate", "Draw the sample for these settings onto the canvas "
                                                         "(one undoable step)")
        self.generate_button.clicked.connect(self.generate)
        layout.addWidget(self.generate_button)
        self.status = status_label()
        layout.addWidget(self.status)
        layout.addStretch(1)

    def _build_seed_row(self) -> QWidget:
        self.seed_spin = QSpinBox()
        self.seed_spin.setRange(0, MAX_SEED)
        self.seed_spin.setKeyboardTracking(False)  # typing "123" renders once, not for 1, 12 and 123
        self.seed_spin.setButtonSymbols(QSpinBox.ButtonSymbols.NoButtons)  # the chevrons beside it step
        self.seed_spin.setToolTip("The random seed (the same seed as NVIDIA's gen_images.py)")
        self.seed_spin.valueChanged.connect(lambda _: self.request_render())
        self.previous_button = _tool_button("previous", "Previous seed")
        self.previous_button.clicked.connect(lambda: self.seed_spin.stepBy(-1))
        self.next_button = _tool_button("next", "Next seed")
        self.next_button.clicked.connect(lambda: self.seed_spin.stepBy(1))
        self.random_button = _tool_button("random", "Random seed")
        self.random_button.clicked.connect(self.random_seed)
        return self._row(self.seed_spin, self.previous_button, self.next_button, self.random_button)

    def _build_psi_row(self) -> QWidget:
        self.psi_slider = QSlider(Qt.Orientation.Horizontal)
        self.psi_slider.setRange(0, round(PSI_MAX * PSI_STEPS))
        self.psi_slider.setPageStep(10)
        self.psi_slider.setToolTip("Truncation ψ: 1 samples the whole distribution, lower trades variety for "
                                   "quality, 0 gives the average image")
        self.psi_spin = QDoubleSpinBox()
        self.psi_spin.setRange(0.0, PSI_MAX)
        self.psi_spin.setDecimals(2)
        self.psi_spin.setSingleStep(0.05)
        self.psi_spin.setKeyboardTracking(False)
        self.psi_spin.setButtonSymbols(QDoubleSpinBox.ButtonSymbols.NoButtons)
        self.psi_spin.setAlignment(Qt.AlignmentFlag.AlignRight)
        self.psi_spin.setFixedWidth(48)
        self.psi_spin.setToolTip(self.psi_slider.toolTip())
        self.psi_slider.valueChanged.connect(self._psi_slider_moved)
        self.psi_spin.valueChanged.connect(self._psi_typed)
        self.set_psi(PSI_DEFAULT, render=False)
        return self._row(self.psi_slider, self.psi_spin)

    @staticmethod
    def _row(*widgets: QWidget) -> QWidget:
        row = QWidget()
        layout = QHBoxLayout(row)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(2)
        layout.addWidget(widgets[0], 1)
        for widget in widgets[1:]:
            layout.addWidget(widget)
        return row

    # Controls -----------------------------------------------------------------------

    @property
    def seed(self) -> int:
        return self.seed_spin.value()

    def set_seed(self, seed: int) -> None:
        self.seed_spin.setValue(seed)

    def random_seed(self) -> None:
        self.set_seed(self._rng.randrange(MAX_SEED + 1))

    @property
    def psi(self) -> float:
        return round(self.psi_slider.value() / PSI_STEPS, 2)

    def set_psi(self, psi: float, render: bool = True) -> None:
        ticks = round(min(max(psi, 0.0), PSI_MAX) * PSI_STEPS)
        for widget, value in ((self.psi_slider, ticks), (self.psi_spin, ticks / PSI_STEPS)):
            widget.blockSignals(True)
            widget.setValue(value)
            widget.blockSignals(False)
        if render:
            self.request_render()

    def _psi_slider_moved(self, ticks: int) -> None:
        self.psi_spin.blockSignals(True)
        self.psi_spin.setValue(ticks / PSI_STEPS)
        self.psi_spin.blockSignals(False)
        self.request_render()

    def _psi_typed(self, psi: float) -> None:
        self.set_psi(psi)

    @property
    def class_index(self) -> int | None:
        info = self.model.info
        return self.class_combo.currentIndex() if info is not None and info.conditional else None

    def request(self) -> SampleRequest:
        """The sample the controls describe now."""
        return SampleRequest(self.seed, self.psi, self.class_index, self.noise_combo.currentText())

    # Rendering ----------------------------------------------------------------------

    @property
    def current_sample(self) -> Sample | None:
        """The last sample that landed in the document."""
        return self._sample

    @property
    def current_ws(self) -> torch.Tensor | None:
        """``(1, num_ws, w_dim)`` float32 latent of :attr:`current_sample`, on the CPU."""
        return self._sample.ws if self._sample is not None else None

    @property
    def rendering(self) -> bool:
        return self._renderer.busy

    def generate(self) -> None:
        """Render the current settings now (also when they equal the last sample's)."""
        self.request_render()

    def request_render(self) -> None:
        """Ask for the sample of the current settings; the newest request wins."""
        if self._generator is None or self.model.info is None:
            return
        request, revision, info = self.request(), self.document.revision, self.model.info
        self.status.setText(f"Rendering seed {request.seed}…")
        self._renderer.request(render_sample, self._generator, request, title=f"Generate seed {request.seed}",
                               on_result=lambda done: self._rendered(done, revision, info),
                               on_error=lambda message: self.status.setText(f"Failed: {message}"))

    def _rendered(self, done: Rendered, revision: int, info: ModelInfo) -> None:
        if revision != self.document.revision:
            self.status.setText(f"Seed {done.request.seed} dropped: the image changed while it rendered")
            return
        image = Image(done.sample.image)
        latent = sample_latent(done, info)
        self.document.undo_stack.push(GenerateImage(self.document, image, done.request.seed, latent))
        self._landed, self._sample = image, done.sample
        height, width = done.sample.image.shape[:2]
        self.status.setText(f"Seed {done.request.seed} · ψ {done.request.psi:.2f} · {width} × {height} px · "
                            f"{done.seconds * 1000:.0f} ms")
        self.sampleChanged.emit(done.sample)

    # Model --------------------------------------------------------------------------

    def _model_changed(self, info: ModelInfo | None) -> None:
        generator = self.model.generator
        self._show_info(info)
        if generator is self._generator:
            return  # the same network moved device: nothing to redraw
        self._generator = generator
        self._renderer.invalidate()  # a render of the previous model must not land now
        self._fill_classes(info)
        showing_sample = self.document.image is None or self.document.image is self._landed
        if generator is not None and showing_sample:
            self.request_render()
        elif generator is not None:
            self.status.setText("Press Generate to replace the image with a sample.")

    def _loading_changed(self, loading: bool) -> None:
        self.model_view.open_button.setEnabled(not loading)
        if loading:
            self._status_before_load = self.status.text()
            self.status.setText("Loading model…")
        elif self.status.text() == "Loading model…":  # the load failed: say again what is shown
            self.status.setText(self._status_before_load)

    def _fill_classes(self, info: ModelInfo | None) -> None:
        self.class_combo.blockSignals(True)
        self.class_combo.clear()
        if info is not None and info.conditional:
            self.class_combo.addItems([f"Class {i}" for i in range(info.c_dim)])
        else:
            self.class_combo.addItem("— (unconditional)")
        self.class_combo.setEnabled(info is not None and info.conditional)
        self.class_combo.blockSignals(False)

    def _show_info(self, info: ModelInfo | None) -> None:
        self.model_view.show_info(info)
        for widget in (self.controls, self.generate_button):
            widget.setEnabled(info is not None)
        if info is None:
            self._fill_classes(None)
