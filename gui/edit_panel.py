"""The Edit panel: move the document's latent along directions, mix styles, interpolate.

It edits ``document.latent``, the latent document that renders the image (a generated
sample; later an inversion). Every control re-renders from that stored latent with no
search: ``apply_edits`` and one synthesis on the worker thread, through a
:class:`~gui.render_queue.LatestRenderer` that keeps overtaken results, so the picture
follows a drag instead of waiting for it to stop. Each result lands as an undoable step
carrying the new latent; the steps of one drag (or of one control's keyboard change) merge,
and undo puts the sliders back with the image (the settings live in the latent's
``meta["edit"]``, see ``gui/edit_state.py``).

Directions are computed once per model on the worker and kept while the app runs.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any, Hashable

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from engine.images import Image
from gui.commands import ReplaceImage
from gui.document import Document
from gui.edit_state import (
    MIX_GROUPS,
    DirectionSet,
    EditRendered,
    EditSettings,
    compute_directions,
    describe_latent,
    direction_title,
    latent_fits,
    render_edits_job,
)
from gui.edit_widgets import EDIT_STYLE, STEPS, DirectionRow, range_slider, seed_spin, slots_text, value_spin
from gui.generate_panel import MAX_SEED
from gui.jobs import JobRunner
from gui.model_state import ModelInfo, ModelState
from gui.render_queue import LatestRenderer
from gui.widgets import key_label, scrolling_column, section_label, status_label

if TYPE_CHECKING:
    from engine.document import Document as Latent

class EditPanel(QWidget):
    """Direction sliders, style mixing and interpolation over ``document.latent``.

    Signals: ``directionsReady(DirectionSet)`` once a model's directions are computed,
    ``edited(EditRendered)`` when an edit lands in the document.
    """

    directionsReady = Signal(object)
    edited = Signal(object)
    KEEP_TIP = ("Move each named direction only in ways the other named directions do not "
                "(conditional editing, InterFaceGAN)")

    def __init__(self, model: ModelState, document: Document, runner: JobRunner, parent: QWidget | None = None):
        super().__init__(parent)
        self.model, self.document, self.runner = model, document, runner
        self.settings = EditSettings()  # what the controls show; may run ahead of document.latent
        self.directions: DirectionSet | None = None
        self.rows: dict[str, DirectionRow] = {}
        self.selected_spec: str | None = None
        self._cache: dict[tuple[str, str], DirectionSet] = {}  # (model path, sha256) -> its directions
        self._generator: Any = None
        self._gesture = 0  # bumped when a new undo step must begin
        self._pushing = False  # our own step is landing: the latent change is not news
        self._renderer = LatestRenderer(runner, keep_overtaken=True, parent=self)
        self.setStyleSheet(EDIT_STYLE)
        self._build()
        model.modelChanged.connect(self._model_changed)
        document.latentChanged.connect(self._latent_changed)
        self._update_enabled()

    # Layout -------------------------------------------------------------------------

    def _build(self) -> None:
        layout, self.scroll = scrolling_column(self)
        header = QHBoxLayout()
        header.addWidget(section_label("Latent"), 1)
        self.reset_button = QPushButton("Reset")
        self.reset_button.setToolTip("Set every direction to 0 and turn mixing and interpolation off (one step)")
        self.reset_button.clicked.connect(self.reset)
        header.addWidget(self.reset_button, 0, Qt.AlignmentFlag.AlignBottom)
        layout.addLayout(header)
        self.status = status_label()
        layout.addWidget(self.status)
        self.controls = QWidget()
        inner = QVBoxLayout(self.controls)
        inner.setContentsMargins(0, 0, 0, 0)
        inner.setSpacing(6)
        inner.addWidget(section_label("Style mixing"))
        inner.addWidget(self._build_mix())
        inner.addWidget(section_label("Interpolation"))
        inner.addWidget(self._build_interpolation())
        self._directions_label = section_label("Directions")
        inner.addWidget(self._directions_label)
        self.keep_others = QCheckBox("Keep other attributes")
        self.keep_others.setToolTip(self.KEEP_TIP)
        self.keep_others.toggled.connect(lambda on: self._change(self._with(keep_others=on), ("keep",),
                                                                 f"Keep other attributes {'on' if on else 'off'}",
                                                                 new_step=True))
        inner.addWidget(self.keep_others)
        self.rows_box = QWidget()
        self.rows_layout = QVBoxLayout(self.rows_box)
        self.rows_layout.setContentsMargins(0, 0, 0, 0)
        self.rows_layout.setSpacing(2)
        inner.addWidget(self.rows_box)
        layout.addWidget(self.controls)
        layout.addStretch(1)

    def _build_mix(self) -> QWidget:
        box = QWidget()
        grid = QGridLayout(box)
        grid.setContentsMargins(0, 0, 0, 0)
        self.mix_check = QCheckBox("Seed")
        self.mix_check.setToolTip("Take the chosen layers' styles from the latent of another seed")
        self.mix_seed = seed_spin("The seed whose styles are mixed in")
        self.mix_group = QComboBox()
        self.mix_group.addItems([g.capitalize() for g in MIX_GROUPS])
        self.mix_group.setToolTip("Coarse: pose and shape; middle: features; fine: colours and texture")
        self.mix_layers = range_slider(2, "The w slots taken from the other seed")
        self.mix_label = QLabel()
        self.mix_label.setObjectName("layers")
        grid.addWidget(self.mix_check, 0, 0)
        grid.addWidget(self.mix_seed, 0, 1)
        grid.addWidget(self.mix_group, 0, 2)
        grid.addWidget(self.mix_layers, 1, 0, 1, 2)
        grid.addWidget(self.mix_label, 1, 2)
        grid.setColumnStretch(1, 1)
        for signal in (self.mix_check.toggled, self.mix_seed.valueChanged, self.mix_group.currentIndexChanged):
            signal.connect(lambda _: self._mix_changed(new_step=True))
        self.mix_layers.sliderPressed.connect(self._new_step)
        self.mix_layers.valueChanged.connect(lambda _: self._mix_changed(not self.mix_layers.isSliderDown()))
        return box

    def _build_interpolation(self) -> QWidget:
        box = QWidget()
        grid = QGridLayout(box)
        grid.setContentsMargins(0, 0, 0, 0)
        self.interp_check = QCheckBox("Seed")
        self.interp_check.setToolTip("Blend the latent toward the latent of another seed")
        self.interp_seed = seed_spin("The seed to blend toward")
        self.interp_mode = QComboBox()
        self.interp_mode.addItems(["Linear", "Slerp"])
        self.interp_mode.setToolTip("Linear: a straight line in W; slerp: along the sphere, keeping the radius even")
        self.t_slider = QSlider(Qt.Orientation.Horizontal)
        self.t_slider.setRange(0, STEPS)
        self.t_slider.setToolTip("t: 0 is this latent, 1 the other seed's")
        self.t_value = value_spin(0.0, 1.0, step=0.05)
        grid.addWidget(self.interp_check, 0, 0)
        grid.addWidget(self.interp_seed, 0, 1)
        grid.addWidget(self.interp_mode, 0, 2)
        grid.addWidget(key_label("t"), 1, 0)
        grid.addWidget(self.t_slider, 1, 1)
        grid.addWidget(self.t_value, 1, 2)
        grid.setColumnStretch(1, 1)
        for signal in (self.interp_check.toggled, self.interp_seed.valueChanged, self.interp_mode.currentIndexChanged):
            signal.connect(lambda _: self._interp_changed(new_step=True))
        self.t_slider.sliderPressed.connect(self._new_step)
        self.t_slider.valueChanged.connect(lambda ticks: self._interp_changed(ticks / STEPS,
                                                                              not self.t_slider.isSliderDown()))
        self.t_value.valueChanged.connect(lambda t: self._interp_changed(t, new_step=True))
        return box

    def _fill_rows(self) -> None:
        while self.rows_layout.count():
            widget = self.rows_layout.takeAt(0).widget()
            if widget is not None:
                widget.deleteLater()
        self.rows = {}
        self.selected_spec = None
        if self.directions is None or self.model.info is None:
            return
        for title, specs in self.directions.groups():
            label = QLabel(title)
            label.setObjectName("group")
            self.rows_layout.addWidget(label)
            for spec in specs:
                d = self.directions.directions[spec]
                row = DirectionRow(spec, f"{spec} ({d.method or 'shipped'})", self.model.info.num_ws)
                row.edited.connect(self._strength_changed)
                row.layersEdited.connect(self._layers_changed)
                row.touched.connect(self._touched)
                self.rows[spec] = row
                self.rows_layout.addWidget(row)

    def add_section(self, title: str, widget: QWidget) -> None:
        """Show another tool's controls (the Drag tool's) above the directions; they share the panel's enabling."""
        inner = self.controls.layout()
        index = inner.indexOf(self._directions_label)
        inner.insertWidget(index, section_label(title))
        inner.insertWidget(index + 1, widget)

    # State --------------------------------------------------------------------------

    @property
    def rendering(self) -> bool:
        return self._renderer.busy

    def _with(self, **changes: Any) -> EditSettings:
        return dataclasses.replace(self.settings, **changes)

    def default_layers(self, spec: str) -> tuple[int, int]:
        d = self.directions.directions.get(spec) if self.directions is not None else None
        num_ws = self.model.info.num_ws if self.model.info is not None else 1
        return tuple(d.layers) if d is not None and d.layers else (0, num_ws)

    def set_strength(self, spec: str, strength: float) -> None:
        """Set a direction as if the user typed the value."""
        self.rows[spec].value.setValue(strength)

    def reset(self) -> None:
        self._new_step()
        self._change(EditSettings(), ("reset",), "Reset edits")
        self._show_settings()

    def animation_choices(self) -> list[tuple[str, str | None]]:
        """What File → Export Animation can sweep, ``(label, direction spec or None for the
        interpolation)``: the selected direction first, then the interpolation if it is on."""
        specs = sorted(self.rows, key=lambda spec: spec != self.selected_spec)  # stable: the rest keep their order
        choices: list[tuple[str, str | None]] = [(f"Direction: {direction_title(s)}", s) for s in specs]
        if self.settings.interp_seed is not None:
            choices.insert(int(self.selected_spec is not None), (f"Interpolation to seed {self.settings.interp_seed}",
                                                                 None))
        return choices

    def _new_step(self) -> None:
        self._gesture += 1

    def _touched(self, spec: str) -> None:
        self._new_step()
        self.select(spec)

    def select(self, spec: str | None) -> None:
        """The direction File → Export Animation sweeps."""
        for name, row in self.rows.items():
            row.set_selected(name == spec)
        self.selected_spec = spec

    def _strength_changed(self, spec: str, strength: float) -> None:
        self._change(self.settings.with_strength(spec, strength), ("strength", spec),
                     f"{direction_title(spec)} {strength:+.2f}")

    def _layers_changed(self, spec: str, layers: tuple[int, int]) -> None:
        default = layers == self.default_layers(spec)
        self._change(self.settings.with_layers(spec, None if default else layers), ("layers", spec),
                     f"{direction_title(spec)} on slots {slots_text(layers)}")

    def _mix_changed(self, new_step: bool) -> None:
        if self.model.info is None:
            return
        group = MIX_GROUPS[self.mix_group.currentIndex()]
        low, high = self.mix_layers.value()
        settings = self._with(mix_seed=self.mix_seed.value() if self.mix_check.isChecked() else None,
                              mix_group=group, mix_layers=(int(low), int(high) + 1))
        self.mix_layers.setVisible(group == "custom")
        self.mix_label.setVisible(group == "custom")
        span = settings.mix_range(self.model.info.num_ws)
        self.mix_label.setText(slots_text(span))
        text = f"Style mix seed {settings.mix_seed} ({group})" if settings.mix_seed is not None else "Style mix off"
        self._change(settings, ("mix",), text, new_step)

    def _interp_changed(self, t: float | None = None, new_step: bool = False) -> None:
        if t is not None:  # keep the slider and the box together
            for widget, value in ((self.t_slider, round(t * STEPS)), (self.t_value, t)):
                widget.blockSignals(True)
                widget.setValue(value)
                widget.blockSignals(False)
        settings = self._with(interp_seed=self.interp_seed.value() if self.interp_check.isChecked() else None,
                              interp_t=round(self.t_value.value(), 2), slerp=self.interp_mode.currentIndex() == 1)
        text = (f"Interpolate to seed {settings.interp_seed}, t {settings.interp_t:.2f}"
                if settings.interp_seed is not None else "Interpolation off")
        self._change(settings, ("interpolate",), text, new_step)

    # Rendering ----------------------------------------------------------------------

    def _change(self, settings: EditSettings, control: tuple, text: str, new_step: bool = False) -> None:
        """Make ``settings`` the wanted state and render it. It lands as an undo step that merges
        with the one before if both come from one gesture on one control (a drag)."""
        if settings == self.settings:
            return
        if new_step:
            self._new_step()
        self.settings = settings
        latent, generator = self.document.latent, self.model.generator
        if latent is None or generator is None or not latent_fits(latent, self.model.info):
            return
        key: Hashable = (control, self._gesture)
        self.status.setText("Rendering…")
        self._renderer.request(render_edits_job, generator, latent, settings, self.directions, title=text,
                               on_result=lambda done: self._landed(done, key, text),
                               on_error=lambda message: self.status.setText(f"Failed: {message}"))

    def _landed(self, done: EditRendered, key: Hashable, text: str) -> None:
        self._pushing = True
        try:
            command = ReplaceImage(self.document, Image(done.image), text, done.latent, merge_key=key)
            self.document.undo_stack.push(command)
        finally:
            self._pushing = False
        self.status.setText(f"{describe_latent(done.latent)} · {done.seconds * 1000:.0f} ms")
        self.edited.emit(done)

    def _latent_changed(self, latent: Latent | None) -> None:
        if self._pushing:
            return
        self._renderer.invalidate()  # a render from the previous latent must not land on this one
        self._new_step()
        self.settings = EditSettings.of(latent)
        self._show_settings()
        self._update_enabled()

    def _show_settings(self) -> None:
        """Put :attr:`settings` on the controls without triggering renders."""
        s, num_ws = self.settings, self.model.info.num_ws if self.model.info is not None else 2
        for spec, row in self.rows.items():
            row.set_values(s.strengths.get(spec, 0.0), s.layers.get(spec, self.default_layers(spec)))
        latent = self.document.latent
        base = ((latent.meta.get("sample") or {}) if latent is not None else {}).get("seed")
        # With mixing off, offer the next seeds: the base's own seed would change nothing.
        mix_seed = s.mix_seed if s.mix_seed is not None or base is None else min(base + 1, MAX_SEED)
        interp_seed = s.interp_seed if s.interp_seed is not None or base is None else min(base + 2, MAX_SEED)
        setters = ((self.keep_others.setChecked, s.keep_others), (self.mix_check.setChecked, s.mix_seed is not None),
                   (self.mix_group.setCurrentIndex, MIX_GROUPS.index(s.mix_group)),
                   (lambda n: self.mix_layers.setRange(0, n), num_ws - 1),
                   (self.mix_layers.setValue, (s.mix_layers[0], s.mix_layers[1] - 1)),
                   (self.interp_check.setChecked, s.interp_seed is not None),
                   (self.interp_mode.setCurrentIndex, int(s.slerp)),
                   (self.t_slider.setValue, round(s.interp_t * STEPS)),
                   (self.t_value.setValue, s.interp_t), (self.mix_seed.setValue, mix_seed),
                   (self.interp_seed.setValue, interp_seed))
        for widget in self.controls.findChildren(QWidget):
            widget.blockSignals(True)  # only the user's changes render
        for setter, value in setters:
            if value is not None:
                setter(value)
        for widget in self.controls.findChildren(QWidget):
            widget.blockSignals(False)
        custom = s.mix_group == "custom"
        self.mix_layers.setVisible(custom)
        self.mix_label.setVisible(custom)
        self.mix_label.setText(slots_text(s.mix_layers))

    # Model --------------------------------------------------------------------------

    def _model_changed(self, info: ModelInfo | None) -> None:
        generator = self.model.generator
        if generator is self._generator:
            self._update_enabled()
            return  # the same network moved device: directions live on the CPU
        self._generator = generator
        self._renderer.invalidate()
        self.directions = None
        self._fill_rows()
        if info is not None and (info.path.as_posix(), info.sha256) in self._cache:
            self._directions_ready(generator, info, self._cache[(info.path.as_posix(), info.sha256)])
        elif info is not None:
            self.runner.submit(compute_directions, generator, info.path, title=f"Directions of {info.name}",
                               on_result=lambda found: self._directions_ready(generator, info, found))
        self._update_enabled()

    def _directions_ready(self, generator: Any, info: ModelInfo, found: DirectionSet) -> None:
        self._cache[(info.path.as_posix(), info.sha256)] = found
        if generator is not self._generator:
            return  # another model was loaded meanwhile
        self.directions = found
        self._fill_rows()
        self._show_settings()
        self._update_enabled()
        self.directionsReady.emit(found)

    def _update_enabled(self) -> None:
        latent, info = self.document.latent, self.model.info
        usable = latent is not None and info is not None and latent_fits(latent, self.model.info)
        self.controls.setEnabled(usable)
        self.reset_button.setEnabled(usable)
        named = self.directions is not None and len(self.directions.named) > 1
        self.keep_others.setEnabled(usable and named)
        self.keep_others.setToolTip(self.KEEP_TIP if named else "Needs two or more named directions; this model "
                                                                  "ships none (<model>.directions.safetensors)")
        if info is None:
            self.status.setText("Load a generator, then generate a sample to edit it.")
        elif latent is None:
            self.status.setText("The image is not a latent of this model: generate a sample to edit it.")
        elif not usable:
            name = Path(latent.model.path).name if latent.model and latent.model.path else "another model"
            self.status.setText(f"This latent belongs to {name}: load it again, or generate a sample.")
        elif self.directions is None:
            self.status.setText("Finding directions…")
        else:
            problem = f" ({self.directions.problem})" if self.directions.problem else ""
            self.status.setText(f"{describe_latent(latent)} · W+ {info.num_ws} × {info.w_dim}{problem}")

