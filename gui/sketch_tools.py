"""The Sketch panel's drawing half: tools, layers and edges from the image, and the sketch's place in the document.

:class:`SketchTools` owns the canvas layers (``gui/sketch_layer.py``): the colour strokes and
edges, and the keep mask. Its keys (B brush, P pen, E eraser, I picker, K keep, ``[`` ``]``
size, X swap colours) are window shortcuts switched on only while the panel is in front, so
they never clash with another tool's keys (D drags, S locks the selection square, Y compares).

The sketch is part of the document: strokes are steps of its undo stack, and the maps ride
in the latent document's named layers (``sketch.colour``, ``sketch.edges``, ``sketch.keep``),
so saving writes them and opening a ``.ganvas`` brings them back.

"Edges from image" proposes Canny edges of the picture (``engine.ops.edges``, kornia) as a
cyan overlay that follows the low/high sliders: each change asks the worker after a short
pause, and only the newest request's answer is shown. "Use edges" puts them on the edge
layer as one undoable step, to be corrected with the pen and the eraser.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QTimer, Signal
from PySide6.QtGui import QAction, QColor, QKeySequence
from PySide6.QtWidgets import (
    QColorDialog,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from gui.render_queue import LatestRenderer
from gui.sketch_layer import COLOUR, EDGES, KeepLayer, SketchLayer
from gui.sketch_state import Drawing, EdgesFound, build_drawing, canny_job, document_layers, edges_at, read_layers
from gui.sketch_widgets import ColourSwatches, LayerList, ToolButtons, slider
from gui.widgets import form_layout, key_label, section_label, status_label

if TYPE_CHECKING:
    from engine.document import Document as Latent
    from gui.main_window import MainWindow

KEEP = "keep"
KEEP_COLOUR = QColor(70, 200, 120)
LAYER_TITLES = {COLOUR: "Strokes", EDGES: "Edges", KEEP: "Keep"}
PAINTER = {COLOUR: "brush", EDGES: "pen", KEEP: "keep"}  # the tool that paints each layer
EDGES_DEBOUNCE_MS = 80


class SketchTools(QWidget):
    """Tools and layers (this widget) and edges from the image (:attr:`edges_box`), over the canvas
    layers :attr:`layer` and :attr:`keep_layer`.

    Signals: ``edited()`` when the sketch has changed (a finished stroke, an undo, a clear, edges
    used, a document opened), ``edgesShown(EdgesFound)`` when proposed edges are on the canvas.
    """

    edited = Signal()
    edgesShown = Signal(object)

    def __init__(self, window: MainWindow, parent: QWidget | None = None):
        super().__init__(parent)
        self.main_window, self.document, self.runner = window, window.document, window.runner
        self.tool: str | None = None
        self.target = COLOUR  # the layer the eraser works on
        self.found: EdgesFound | None = None
        self._front = False  # the panel is in front: layers shown, keys on
        self._adopting = False
        self._cache: tuple[tuple, dict] | None = None  # the document layers, by the maps' versions
        self._keep_version = 0
        self.layer = SketchLayer(self.document.undo_stack, self.image_pixels)
        self.layer.attach(window.canvas)
        self.keep_layer = KeepLayer(self.document.undo_stack, colour=KEEP_COLOUR, name="Keep")
        self.keep_layer.attach(window.canvas)
        self._edges = LatestRenderer(self.runner, parent=self)
        self._edge_timer = QTimer(self)
        self._edge_timer.setSingleShot(True)
        self._edge_timer.setInterval(EDGES_DEBOUNCE_MS)
        self._edge_timer.timeout.connect(self._request_edges)
        self._build()
        self.shortcuts = self._build_shortcuts()
        self._connect()
        self._brush_changed()
        self._image_changed()

    # Layout -------------------------------------------------------------------------

    def _build(self) -> None:
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(6)
        layout.addWidget(section_label("Tools"))
        self.tools = ToolButtons()
        layout.addWidget(self.tools)
        form = form_layout(row_spacing=6)
        self.size_slider, row = slider(1, 256, 6, "Brush and eraser diameter in image pixels ([ and ])",
                                       lambda v: f"{v} px")
        form.addRow(key_label("Size"), row)
        self.hardness_slider, row = slider(0, 100, 80, "100 %: a hard edge; lower: the stroke fades out",
                                           lambda v: f"{v} %")
        form.addRow(key_label("Hardness"), row)
        self.opacity_slider, row = slider(1, 100, 100, "How much one stroke covers what is under it",
                                          lambda v: f"{v} %")
        form.addRow(key_label("Opacity"), row)
        colours = QHBoxLayout()
        self.swatches = ColourSwatches()
        self.colour_label = QLabel()
        self.colour_label.setObjectName("status")
        self.pen_spin = QSpinBox()
        self.pen_spin.setRange(1, 8)
        self.pen_spin.setSuffix(" px")
        self.pen_spin.setToolTip("The edge pen's line width in image pixels")
        colours.addWidget(self.swatches)
        colours.addWidget(self.colour_label, 1)
        form.addRow(key_label("Colour"), colours)
        form.addRow(key_label("Pen"), self.pen_spin)
        layout.addLayout(form)
        layout.addWidget(section_label("Layers"))
        self.layers = LayerList(LAYER_TITLES)
        layout.addWidget(self.layers)
        self.edges_box = self._build_edges()

    def _build_edges(self) -> QWidget:
        """The "Edges from image" section, placed by the panel."""
        box = QWidget()
        layout = QVBoxLayout(box)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(6)
        layout.addWidget(section_label("Edges from image"))
        buttons = QHBoxLayout()
        self.edges_button = QPushButton("Edges from image")
        self.edges_button.setCheckable(True)
        self.edges_button.setToolTip("Show Canny edges of the picture (cyan) while you set the thresholds")
        self.use_edges_button = QPushButton("Use edges")
        self.use_edges_button.setToolTip("Put the proposed edges on the edge layer (one undoable step), "
                                         "to correct with the pen and the eraser")
        buttons.addWidget(self.edges_button, 1)
        buttons.addWidget(self.use_edges_button, 1)
        layout.addLayout(buttons)
        form = form_layout(row_spacing=6)
        tip = "Canny's {} threshold on the 0-255 gradient scale (ControlNet uses 100 / 200)"
        self.low_slider, row = slider(1, 255, 100, tip.format("low"), str)
        form.addRow(key_label("Low"), row)
        self.high_slider, row = slider(1, 255, 200, tip.format("high"), str)
        form.addRow(key_label("High"), row)
        layout.addLayout(form)
        self.edges_status = status_label()
        layout.addWidget(self.edges_status)
        return box

    def _build_shortcuts(self) -> list[QAction]:
        keys = {"B": lambda: self.set_tool("brush"), "P": lambda: self.set_tool("pen"),
                "E": lambda: self.set_tool("eraser"), "I": lambda: self.set_tool("picker"),
                "K": lambda: self.set_tool(KEEP), "X": self.swap_colours,
                "[": lambda: self.step_size(-1), "]": lambda: self.step_size(1)}
        actions = []
        for key, slot in keys.items():
            action = QAction(f"Sketch {key}", self)
            action.setShortcut(QKeySequence(key))
            action.triggered.connect(lambda _=False, s=slot: s())
            action.setEnabled(False)  # on while the panel is in front
            self.main_window.addAction(action)  # works wherever the focus is in the window
            actions.append(action)
        return actions

    def _connect(self) -> None:
        self.tools.toolChosen.connect(self.set_tool)
        for control in (self.size_slider, self.hardness_slider, self.opacity_slider, self.pen_spin):
            control.valueChanged.connect(lambda _: self._brush_changed())
        self.swatches.chooseRequested.connect(self._choose_colour)
        self.swatches.swapRequested.connect(self.swap_colours)
        self.layer.colourPicked.connect(self._picked_colour)
        self.layers.targetChosen.connect(self.set_target)
        self.layers.shownToggled.connect(self._shown_toggled)
        self.layers.clearRequested.connect(self.clear_layer)
        self.edges_button.toggled.connect(self._edges_toggled)
        self.use_edges_button.clicked.connect(self.use_edges)
        self.low_slider.valueChanged.connect(lambda _: self._thresholds_changed(self.low_slider))
        self.high_slider.valueChanged.connect(lambda _: self._thresholds_changed(self.high_slider))
        self.layer.edited.connect(lambda _: self._sketch_edited())
        self.keep_layer.edited.connect(self._sketch_edited)
        self.keep_layer.maskChanged.connect(self._keep_changed)
        self.document.stateChanged.connect(self._image_changed)
        # After the command that changed the latent has run; opening a document adopts its sketch first.
        self.document.latentChanged.connect(lambda _: QTimer.singleShot(0, self.sync_latent))
        self.document.undo_stack.indexChanged.connect(lambda _: self.sync_latent())
        self.main_window.files.opened.connect(lambda _: self.adopt(self.document.latent))
        self.main_window.imageOpened.connect(lambda _: self.adopt(None))

    # Tools --------------------------------------------------------------------------

    def set_tool(self, tool: str | None) -> None:
        """Pick a tool (``"brush"``, ``"pen"``, ``"eraser"``, ``"picker"``, ``"keep"``), or None for none."""
        if tool is not None and self.document.image is None:
            tool = None  # nothing to draw on
        self.tool = tool
        self.target = {"brush": COLOUR, "pen": EDGES, "keep": KEEP}.get(tool, self.target)
        on_keep = self.target == KEEP and tool in (KEEP, "eraser")
        self.keep_layer.eraser = tool == "eraser"
        if tool is not None and not on_keep:
            self.layer.tool = tool
            self.layer.target = self.target if self.target != KEEP else COLOUR
        self.layer.set_active(tool is not None and not on_keep)
        self.keep_layer.set_active(on_keep)
        if on_keep:
            self.layers.shows[KEEP].setChecked(True)  # painting on a hidden layer would be painting blind
        self.tools.show_tool(tool)
        self.layers.show_target(self.target)
        self.layer.update()

    def set_target(self, name: str) -> None:
        """The layer the eraser works on; with a painting tool on, that layer's painting tool."""
        self.target = name
        self.set_tool(PAINTER[name] if self.tool in PAINTER.values() else self.tool)

    def step_size(self, direction: int) -> None:
        """``[`` / ``]``: the brush a fifth smaller or a quarter larger (at least one pixel either way)."""
        size = self.size_slider.value()
        new = round(size * 1.25) if direction > 0 else round(size / 1.25)
        self.size_slider.setValue(max(new if new != size else size + direction, 1))

    def swap_colours(self) -> None:
        brush = self.layer.brush
        brush.colour, brush.background = brush.background, brush.colour
        self._brush_changed()

    def choose_colour(self, initial: QColor, title: str) -> QColor | None:
        """Ask for a colour (the one blocking question here; tests replace it)."""
        colour = QColorDialog.getColor(initial, self, title)
        return colour if colour.isValid() else None

    def _choose_colour(self, which: str) -> None:
        brush = self.layer.brush
        current = QColor(*(brush.colour if which == "colour" else brush.background))
        colour = self.choose_colour(current, "Brush Colour" if which == "colour" else "Second Colour")
        if colour is not None:
            setattr(brush, which, (colour.red(), colour.green(), colour.blue()))
            self._brush_changed()

    def _picked_colour(self, colour: QColor) -> None:
        self.layer.brush.colour = (colour.red(), colour.green(), colour.blue())
        self._brush_changed()

    def _brush_changed(self) -> None:
        brush = self.layer.brush
        self.layer.set_brush_size(self.size_slider.value())
        brush.hardness = self.hardness_slider.value() / 100
        brush.opacity = self.opacity_slider.value() / 100
        brush.pen_width = self.pen_spin.value()
        self.keep_layer.set_radius(self.size_slider.value() / 2)
        self.swatches.set_colours(QColor(*brush.colour), QColor(*brush.background))
        self.colour_label.setText(QColor(*brush.colour).name())

    # Layers -------------------------------------------------------------------------

    def has(self, name: str) -> bool:
        return self.keep_layer.has_paint() if name == KEEP else self.layer.has(name)

    def clear_layer(self, name: str) -> None:
        if name == KEEP:
            self.keep_layer.clear()
        else:
            self.layer.clear(name)

    def _shown_toggled(self, name: str, on: bool) -> None:
        if name != KEEP:
            self.layer.set_shown(name, on)
        self.show_layers(self._front)

    @property
    def in_front(self) -> bool:
        return self._front

    def show_layers(self, front: bool) -> None:
        """The panel came to the front (layers shown, keys on) or went behind another (tools off)."""
        self._front = front
        for action in self.shortcuts:
            action.setEnabled(front)
        if not front:  # a panel behind another tab must not keep the canvas's left button
            self.set_tool(None)
            self.edges_button.setChecked(False)
        self.layer.setVisible(front)
        self.keep_layer.setVisible(front and self.layers.shows[KEEP].isChecked())
        self._update_layers()

    def reveal_result(self) -> None:
        """A result has just landed: hide the strokes and edges over it (the next stroke brings its layer back)."""
        for name in (COLOUR, EDGES):
            self.layer.set_shown(name, False)
        self._update_layers()

    def _update_layers(self) -> None:
        for name in (COLOUR, EDGES):
            self.layers.show_state(name, self.layer.has(name), self.layer.shown[name])
        self.layers.show_state(KEEP, self.keep_layer.has_paint(), self.layers.shows[KEEP].isChecked())
        has_image = self.document.image is not None
        for button in self.tools.buttons.values():
            button.setEnabled(has_image)
        self.edges_button.setEnabled(has_image)
        self.use_edges_button.setEnabled(self.found is not None and self.edges_button.isChecked())

    def _keep_changed(self) -> None:
        self._keep_version += 1

    def _sketch_edited(self) -> None:
        if not self._adopting:
            self._update_layers()
            self.edited.emit()

    def drawing(self, kind: str) -> Drawing:
        """The layers ``kind`` asks for (``"both"``, ``"strokes"``, ``"edges"``), as the engine takes them."""
        return build_drawing(self.layer.colour, self.layer.edges, self.keep_layer.mask, self.image_pixels(), kind)

    # The document -------------------------------------------------------------------

    def image_pixels(self) -> Any:
        image = self.document.image
        return image.to_uint8() if image is not None else None

    def _image_changed(self) -> None:
        image = self.document.image
        width, height = (image.width, image.height) if image is not None else (0, 0)
        self.layer.set_size(width, height)
        self.keep_layer.set_size(width, height)
        if image is None:
            self.set_tool(None)
        if self.edges_button.isChecked():
            self._edge_timer.start()
        self._update_layers()

    def document_layers(self) -> dict:
        """The sketch as the document's named layers (``sketch.colour``, ``sketch.edges``, ``sketch.keep``)."""
        key = (self.layer.version, self._keep_version, self.layer.size)
        if self._cache is None or self._cache[0] != key:
            self._cache = (key, document_layers(self.layer.colour, self.layer.edges, self.keep_layer.mask))
        return self._cache[1]

    def sync_latent(self) -> None:
        """Keep the document's latent carrying the sketch, so that saving it saves the strokes.

        The latent document is otherwise never changed in place. Its ``layers`` dict is replaced,
        never mutated, so a save reading the old one on the worker is not disturbed; latents
        further back in the history keep the sketch they had.
        """
        latent = self.document.latent
        if latent is None:
            return
        layers = {k: v for k, v in latent.layers.items() if not k.startswith("sketch.")}
        layers.update(self.document_layers())
        if layers.keys() != latent.layers.keys() or any(layers[k] is not latent.layers[k] for k in layers):
            latent.layers = layers

    def adopt(self, latent: Latent | None) -> None:
        """A document was opened: show its sketch (none for a plain image); its history starts here."""
        width, height = self.layer.size
        maps = read_layers(latent.layers, width, height) if latent is not None else {}
        self._adopting = True  # loading is not drawing: nothing to react to per layer
        self.layer.load({k: v for k, v in maps.items() if k != KEEP})
        keep = maps.get(KEEP)
        self.keep_layer.write(self.keep_layer.size, (0, 0, width, height),
                              keep if keep is not None else self.keep_layer.mask * 0)
        self._adopting = False
        self.sync_latent()
        self._sketch_edited()

    # Edges from the image -----------------------------------------------------------

    def _edges_toggled(self, on: bool) -> None:
        if on:
            self._request_edges()
        else:
            self._edge_timer.stop()
            self._edges.invalidate()
            self.found = None
            self.layer.set_preview(None)
            self.edges_status.setText("")
        self._update_layers()

    def _thresholds_changed(self, moved: Any) -> None:
        low, high = self.low_slider.value(), self.high_slider.value()
        if low > high:  # Canny needs low <= high: the other slider follows the one moved
            other = self.high_slider if moved is self.low_slider else self.low_slider
            other.setValue(moved.value())
        if self.edges_button.isChecked():
            self._edge_timer.start()

    def _request_edges(self) -> None:
        image = self.image_pixels()
        if image is None or not self.edges_button.isChecked():
            return
        low, high = self.low_slider.value(), self.high_slider.value()
        self.edges_status.setText(f"Finding edges at {low} / {high}…")
        self._edges.request(canny_job, image, float(low), float(high), title="Edges from image",
                            on_result=self._edges_found, on_error=self.edges_status.setText)

    def _edges_found(self, found: EdgesFound) -> None:
        if not self.edges_button.isChecked():
            return
        self.found = found
        self.layer.set_preview(found.edges)
        height, width = found.edges.shape
        share = 100 * float(found.edges.mean())
        self.edges_status.setText(f"Canny {found.low:.0f} / {found.high:.0f} at {width} × {height}: "
                                  f"{share:.1f} % edge pixels · {found.seconds:.2f} s")
        self._update_layers()
        self.edgesShown.emit(found)

    def use_edges(self) -> None:
        """Put the proposed edges on the edge layer as one undoable step."""
        if self.found is None or self.document.image is None:
            return
        width, height = self.layer.size
        self.layer.set_map(EDGES, edges_at(self.found.edges, width, height), "Edges from image")
        self.layer.set_shown(EDGES, True)
        self.edges_button.setChecked(False)
        self.set_target(EDGES)


__all__ = ["SketchTools", "LAYER_TITLES", "KEEP"]
