"""The Upscale panel: super-resolve the document's image, or a folder of images, with any spandrel model.

The model picker (``gui/upscale_picker.py``) lists the catalogue's SR models (the house
``house-sr-x4`` once it is installed), the SR files opened lately, and "Open model file…" for
any ``.pth``/``.safetensors`` that spandrel reads. Upscaling runs ``engine.ops.upscale`` on the
worker thread in seamless tiles, with progress per tile and cancel; the result lands as one
undoable step whose compare shows the input enlarged by plain resampling (Lanczos, as Image →
Resize does) against the model's output, both at the output size, so the divider compares pixel
for pixel at any zoom. The upscaled image is no longer what the latent renders, so the step
carries no latent (like a crop).

"Batch Upscale Folder…" (here and in the File menu) writes every image of a folder into
another, skipping unreadable ones and saying why. A model file that cannot be loaded fails
its load job, which the window shows as an error box; the panel keeps the model it had.

The blocking questions go through :meth:`ModelPicker.choose_model_path` and
:meth:`UpscalePanel.choose_batch_folders`, which tests replace.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction, QShowEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QDoubleSpinBox,
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QMenu,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QWidget,
)

from gui.commands import ReplaceImage
from gui.jobs import JobCancelled, JobProgress
from gui.upscale_jobs import BatchReport, LoadedSR, SRInfo, Upscaled, UpscaleRequest, batch_upscale_job, upscale_job
from gui.upscale_picker import ModelPicker, figures_form
from gui.widgets import STYLE, accent_button, form_layout, key_label, scrolling_column, section_label, status_label

if TYPE_CHECKING:
    from gui.document import Document
    from gui.main_window import MainWindow

MODEL_SCALE = 0.5  # the scale box's lowest value, shown as "Model (×s)": the model's own scale
TILE_STEP = 64
UPSCALE_STYLE = STYLE + """
QLabel#skipped { color: #e0b060; }
"""


class UpscaleImage(ReplaceImage):
    """The upscaled image as one step; its "before" is the input plainly resized to the same size."""

    def __init__(self, document: Document, done: Upscaled, text: str):
        super().__init__(document, done.image, text)
        self.resized_input = done.before

    def redo(self) -> None:
        self.document.set_state(self.new_image, self.resized_input, self.new_latent)


class UpscalePanel(QWidget):
    """Model picker and facts, scale / tile / TTA, Upscale with progress and cancel, batch, figures.

    Signals: ``upscaled(Upscaled)`` when a result lands in the document, ``batchFinished(BatchReport)``.
    """

    upscaled = Signal(object)
    batchFinished = Signal(object)
    RESULT_KEYS = ("Output", "Time", "Tiles", "Device", "Fallbacks")

    def __init__(self, window: MainWindow, parent: QWidget | None = None):
        super().__init__(parent)
        self.window, self.document, self.runner = window, window.document, window.runner
        self.job: int | None = None  # the running upscale or batch job
        self._batch_running = False
        self.report_box: QMessageBox | None = None
        self.setStyleSheet(UPSCALE_STYLE)
        self._build()
        self.batch_action = QAction("Batch &Upscale Folder…", window)
        self.batch_action.setStatusTip("Upscale every image in a folder into another folder")
        self.batch_action.triggered.connect(self.batch_dialog)
        _add_after(window.act.export_animation, self.batch_action)
        self.picker.modelLoaded.connect(self._model_loaded)
        self.picker.loadingChanged.connect(lambda _: self._update())
        self.picker.combo.currentIndexChanged.connect(lambda _: self._update())
        self.picker.message.connect(self.status.setText)
        self.document.stateChanged.connect(self._update)
        self.runner.jobProgress.connect(self._progressed)
        self.runner.jobCancelled.connect(self._cancelled)
        self.runner.jobFinished.connect(self._finished)
        self._update()

    # Layout -------------------------------------------------------------------------

    def _build(self) -> None:
        layout, self.scroll = scrolling_column(self)
        layout.addWidget(section_label("Model"))
        self.picker = ModelPicker(self.window)
        layout.addWidget(self.picker)

        rule = QFrame()
        rule.setObjectName("rule")
        rule.setFrameShape(QFrame.Shape.HLine)
        layout.addWidget(rule)
        layout.addWidget(section_label("Upscale"))
        self.controls = QWidget()
        form = form_layout(self.controls)
        self.scale_spin = QDoubleSpinBox()
        self.scale_spin.setRange(MODEL_SCALE, 16.0)
        self.scale_spin.setSingleStep(0.5)
        self.scale_spin.setDecimals(2)
        self.scale_spin.setPrefix("×")
        self.scale_spin.setSpecialValueText("Model")
        self.scale_spin.setToolTip("Output size / input size. The model runs at its own scale and its output is "
                                   "resampled (bicubic) to any other")
        self.scale_spin.valueChanged.connect(lambda _: self._update())
        form.addRow(key_label("Scale"), self.scale_spin)
        self.tile_spin = QSpinBox()
        self.tile_spin.setRange(0, 8192)
        self.tile_spin.setSingleStep(TILE_STEP)
        self.tile_spin.setSuffix(" px")
        self.tile_spin.setSpecialValueText("Auto")
        self.tile_spin.setToolTip("Side of one model pass, context included. Auto plans it from free memory; "
                                  "tiles are blended without seams either way")
        form.addRow(key_label("Tile"), self.tile_spin)
        self.tta_check = QCheckBox("Self-ensemble (TTA, 8× slower)")
        self.tta_check.setToolTip("Average the model over the 8 flips and rotations: a little sharper and cleaner")
        form.addRow(self.tta_check)  # the whole width: beside a key it would be wider than the dock
        self.size_label = status_label()
        form.addRow(key_label("Size"), self.size_label)
        layout.addWidget(self.controls)

        self.upscale_button = accent_button("Upscale", "Upscale the image on the canvas (one undoable step; the "
                                            "compare view shows plain resizing against the model)", "upscale")
        self.upscale_button.clicked.connect(self.upscale)
        layout.addWidget(self.upscale_button)
        progress_row = QHBoxLayout()
        self.progress = QProgressBar()
        self.progress.setMaximumHeight(16)
        self.progress.setTextVisible(False)
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop the upscale; the image stays as it was")
        self.cancel_button.clicked.connect(self.cancel)
        progress_row.addWidget(self.progress, 1)
        progress_row.addWidget(self.cancel_button)
        layout.addLayout(progress_row)
        self.batch_button = QPushButton("Batch Upscale Folder…")
        self.batch_button.setToolTip("Upscale every image in a folder into another folder with these settings")
        self.batch_button.clicked.connect(self.batch_dialog)
        layout.addWidget(self.batch_button)
        self.status = status_label()
        layout.addWidget(self.status)

        self.result_title = section_label("Result")
        layout.addWidget(self.result_title)
        self.result_facts, self.result_labels = figures_form(self.RESULT_KEYS)
        layout.addWidget(self.result_facts)
        self.skipped_label = QLabel()
        self.skipped_label.setObjectName("skipped")
        self.skipped_label.setWordWrap(True)
        self.skipped_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.skipped_label)
        for widget in (self.result_title, self.result_facts, self.skipped_label):
            widget.hide()
        layout.addStretch(1)

    # Hooks: the blocking questions (tests replace them) -------------------------------

    def choose_batch_folders(self) -> tuple[Path, Path] | None:
        """The input folder, then the output folder; None if the user cancels either."""
        start = str(self.window.settings.last_dir() or Path.home())
        source = QFileDialog.getExistingDirectory(self.window, "Batch Upscale: Folder of Images", start)
        if not source:
            return None
        target = QFileDialog.getExistingDirectory(self.window, "Batch Upscale: Output Folder", source)
        return (Path(source), Path(target)) if target else None

    # Settings -----------------------------------------------------------------------

    @property
    def loaded(self) -> LoadedSR | None:
        return self.picker.loaded

    def _model_loaded(self, info: SRInfo) -> None:
        self.scale_spin.setSpecialValueText(f"Model (×{info.scale})")
        self.tile_spin.setToolTip(self.tile_spin.toolTip().split(" (")[0] + f" (at least {info.min_tile} px)")
        self._update()

    @property
    def scale(self) -> float | None:
        """The chosen output scale; None for the model's own."""
        value = self.scale_spin.value()
        return None if value <= MODEL_SCALE else value

    def set_scale(self, scale: float | None) -> None:
        self.scale_spin.setValue(MODEL_SCALE if scale is None else scale)

    def request(self) -> UpscaleRequest:
        device = self.window.device.device if self.window.device is not None else None
        return UpscaleRequest(self.scale, self.tile_spin.value(), self.tta_check.isChecked(),
                              None if device is None else str(device))

    def output_size(self) -> tuple[int, int] | None:
        image = self.document.image
        scale = self.scale or (self.loaded.info.scale if self.loaded is not None else None)
        if image is None or scale is None:
            return None
        return max(1, round(image.width * scale)), max(1, round(image.height * scale))

    # Upscale ------------------------------------------------------------------------

    @property
    def busy(self) -> bool:
        return self.job is not None

    def upscale(self) -> bool:
        """Upscale the document's image (loading the chosen model first if needed); False if nothing starts."""
        if self.document.image is None or self.busy:
            return False
        return self.picker.with_model(self._start_upscale)

    def _start_upscale(self) -> None:
        image, loaded = self.document.image, self.loaded
        if image is None or loaded is None or self.busy:
            return
        width, height = self.output_size()
        limit = self.window.settings.max_pixels()
        if width * height > limit:
            self.window.show_error("Image too large to upscale here", (
                f"The result would be {width} × {height} px, above the {limit:,} pixels GANvas keeps in memory. "
                f"Choose a smaller scale, or use Batch Upscale Folder…, which writes straight to files. "
                f"Got: {width * height:,} pixels"))
            return
        revision, request = self.document.revision, self.request()
        render = " render" if self.document.latent is not None else ""
        text = f"Upscale{render} ×{request.scale or loaded.info.scale:g} ({loaded.info.name})"
        self.job = self.runner.submit(upscale_job, loaded.model, image, request, title=text,
                                      on_result=lambda done: self._landed(done, text, revision, request.tta),
                                      on_error=lambda message: self.status.setText(f"Upscale failed: {message}"))
        self._begin(f"Upscaling {image.width} × {image.height} → {width} × {height} px…", batch=False)

    def _landed(self, done: Upscaled, text: str, revision: int, tta: bool) -> None:
        if revision != self.document.revision:
            self.status.setText("Upscale dropped: the image changed while it was computed.")
            return
        self.document.undo_stack.push(UpscaleImage(self.document, done, text))
        self.window.canvas.set_compare(True)
        figures = done.figures
        (w0, h0), (w1, h1) = done.input_size, (done.image.width, done.image.height)
        tiles = f"{figures.tiles} tiles of {figures.tile} px" if figures.tile else "1 (the whole image)"
        self._show_result({
            "Output": f"{w0} × {h0} → {w1} × {h1} px",
            "Time": f"{figures.seconds:.2f} s",
            "Tiles": tiles + (" · TTA ×8" if tta else ""),
            "Device": f"{figures.device} · {figures.precision}",
            "Fallbacks": "; ".join(figures.fallbacks) or "none",
        })
        self.skipped_label.hide()
        self.status.setText("Done. Drag the divider: left, plain resizing; right, the model.")
        self.upscaled.emit(done)

    def cancel(self) -> None:
        if self.job is not None:
            self.runner.cancel(self.job)

    # Batch --------------------------------------------------------------------------

    def batch_dialog(self) -> bool:
        """Ask for the input and output folders, then upscale the folder; False if nothing starts."""
        if self.busy:
            return False
        folders = self.choose_batch_folders()
        return self.batch(*folders) if folders is not None else False

    def batch(self, source: Path, target: Path) -> bool:
        """Upscale every image in ``source`` into ``target`` on the worker (loading the model first if needed)."""
        if self.busy:
            return False
        if Path(target).resolve() == Path(source).resolve():
            self.window.show_error("Batch Upscale", f"{target}: choose an output folder other than the input "
                                   f"folder, or the upscaled images would replace the originals. Got: the same folder")
            return False
        return self.picker.with_model(lambda: self._start_batch(Path(source), Path(target)))

    def _start_batch(self, source: Path, target: Path) -> None:
        if self.loaded is None or self.busy:
            return
        self.job = self.runner.submit(batch_upscale_job, self.loaded.model, source, target, self.request(),
                                      title=f"Batch upscale {source.name}", on_result=self._batch_done,
                                      on_error=lambda message: self.status.setText(f"Batch failed: {message}"))
        self._begin(f"Upscaling the images in {source.name}…", batch=True)

    def _batch_done(self, report: BatchReport) -> None:
        self._show_result({
            "Output": f"{len(report.written)} of {report.total} images → {report.target}",
            "Time": f"{report.seconds:.2f} s",
            "Tiles": f"{report.tiles} in all",
            "Device": report.device or "—",  # nothing ran when every image was skipped
            "Fallbacks": "; ".join(report.fallbacks) or "none",
        })
        if report.skipped:
            lines = [f"{path.name}: {why}" for path, why in report.skipped]
            self.skipped_label.setText(f"Skipped {len(lines)}:\n" + "\n".join(lines))
            self.skipped_label.show()
            self._report_skipped(report, lines)
        else:
            self.skipped_label.hide()
        self.status.setText(f"Wrote {len(report.written)} of {report.total} images to {report.target}.")
        self.batchFinished.emit(report)

    def _report_skipped(self, report: BatchReport, lines: list[str]) -> None:
        """A non-blocking box naming each skipped file and why."""
        if self.report_box is not None:
            self.report_box.close()
        box = QMessageBox(QMessageBox.Icon.Warning, "Batch Upscale",
                          f"Upscaled {len(report.written)} of {report.total} images into {report.target}; "
                          f"skipped {len(lines)}.", QMessageBox.StandardButton.Ok, self.window)
        box.setInformativeText("\n".join(lines[:5]) + ("\n…" if len(lines) > 5 else ""))
        box.setDetailedText("\n".join(lines))
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.destroyed.connect(lambda *_: setattr(self, "report_box", None))
        box.open()
        self.report_box = box

    # Job state ----------------------------------------------------------------------

    def _begin(self, text: str, batch: bool) -> None:
        """Show the job just submitted as running: progress bar and Cancel in place of the buttons."""
        self._batch_running = batch
        self.status.setText(text)
        self.progress.setRange(0, 0)  # busy until the first tile reports
        self._update()

    def _show_result(self, values: dict[str, str]) -> None:
        for key, text in values.items():
            self.result_labels[key].setText(text)
        self.result_title.show()
        self.result_facts.show()

    def _progressed(self, message: JobProgress) -> None:
        if message.job_id != self.job:
            return
        self.progress.setRange(0, max(message.total, 1))
        self.progress.setValue(message.step)
        if message.message:
            self.status.setText(message.message[:1].upper() + message.message[1:])

    def _cancelled(self, message: JobCancelled) -> None:
        if message.job_id == self.job:
            self.status.setText("Cancelled; the images written so far stay." if self._batch_running
                                else "Cancelled; the image is as it was.")

    def _finished(self, job_id: int) -> None:
        if job_id == self.job:
            self.job = None
            self._update()

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        # The first look at the panel loads the preselected model, so its facts are there.
        picker = self.picker
        if picker.loaded is None and picker.loading is None and picker.selected_spec() is not None:
            picker.load(picker.selected_spec())

    def _update(self) -> None:
        busy, image, loading = self.busy, self.document.image, self.picker.loading is not None
        chosen = self.picker.selected_spec() is not None
        self.upscale_button.setEnabled(image is not None and chosen and not busy and not loading)
        self.batch_button.setEnabled(chosen and not busy and not loading)
        self.batch_action.setEnabled(chosen and not busy and not loading)
        self.picker.combo.setEnabled(not busy)
        self.progress.setVisible(busy)
        self.cancel_button.setVisible(busy)
        size = self.output_size()
        if image is None:
            self.size_label.setText("No image open")
        elif size is None:
            self.size_label.setText(f"{image.width} × {image.height} px → (choose a model)")
        else:
            too_large = size[0] * size[1] > self.window.settings.max_pixels()
            self.size_label.setText(f"{image.width} × {image.height} → {size[0]} × {size[1]} px"
                                    + (", too large to keep open: use Batch" if too_large else ""))
        if not chosen and not self.status.text():
            self.status.setText("No super-resolution model yet: open a .pth or .safetensors file "
                                "(Real-ESRGAN, SwinIR, HAT, …) with the picker above.")


def _add_after(anchor: QAction, action: QAction) -> None:
    """Put ``action`` after ``anchor`` in the menus that hold ``anchor`` (File, after Export Animation)."""
    for menu in anchor.associatedObjects():
        if isinstance(menu, QMenu):
            actions = menu.actions()
            index = actions.index(anchor)
            if index + 1 < len(actions):
                menu.insertAction(actions[index + 1], action)
            else:
                menu.addAction(action)
