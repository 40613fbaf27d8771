"""The Sketch panel on house-gan, driven like a user: strokes and edges on the canvas, Canny, Generate, live mode."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PySide6.QtCore import QEvent, QPoint, QPointF, Qt
from PySide6.QtGui import QColor, QInputDevice, QPointingDevice, QTabletEvent
from PySide6.QtWidgets import QApplication

from engine.models.unet import UnetConfig, UnetGenerator, load_unet, save_unet, translate_edges
from engine.ops.edges import canny_edges
from gui.main_window import MainWindow
from gui.sketch_layer import dab_coverage
from gui.sketch_state import build_drawing, edges_models, read_layers
from tests.gui import helpers
from tests.gui.helpers import image_pixel_in_viewport

HOUSE = Path(__file__).resolve().parents[2] / "resources" / "models" / "house-gan.safetensors"
R = 64


@pytest.fixture
def house(window, qtbot, one_torch_thread) -> MainWindow:
    """house-gan loaded (its first sample is the document), the Sketch panel in front."""
    with qtbot.waitSignal(window.model.loaded, timeout=30000):
        window.model.load(HOUSE)
    qtbot.waitUntil(lambda: window.document.latent is not None and not window.runner.busy, timeout=30000)
    window.sketch_dock.raise_()
    qtbot.waitUntil(lambda: window.sketch_panel.in_front)
    window.canvas.setFocus()
    return window


def mouse(window: MainWindow, kind: QEvent.Type, x: float, y: float) -> None:
    """A left-button event at image pixel ``(x, y)`` (its centre), sent to the canvas."""
    helpers.mouse(window, kind, (x + 0.5) / R, (y + 0.5) / R)


def drag(window: MainWindow, points: list[tuple[float, float]]) -> None:
    """A left-button drag through image pixels (their centres)."""
    helpers.drag(window, [((x + 0.5) / R, (y + 0.5) / R) for x, y in points])


def key(qtbot, window: MainWindow, text: str) -> None:
    keys = {"[": Qt.Key.Key_BracketLeft, "]": Qt.Key.Key_BracketRight}
    qtbot.keyClick(window.canvas, keys.get(text, getattr(Qt.Key, f"Key_{text}", None)))


def test_brush_pen_eraser_and_picker_strokes_are_undoable_steps(house, qtbot):
    panel, tools, stack = house.sketch_panel, house.sketch_panel.tools, house.document.undo_stack
    layer = tools.layer
    key(qtbot, house, "B")
    assert tools.tool == "brush" and layer.active and tools.tools.buttons["brush"].isChecked()
    tools.choose_colour = lambda initial, title: QColor(220, 30, 40)
    qtbot.mouseClick(tools.swatches, Qt.MouseButton.LeftButton, pos=QPoint(6, 6))
    assert layer.brush.colour == (220, 30, 40)
    tools.size_slider.setValue(8)
    tools.hardness_slider.setValue(100)
    drag(house, [(10, 20), (30, 20), (50, 20)])
    colour = layer.colour
    assert (colour[20, 10:51, 3] == 255).all() and (colour[20, 10:51, :3] == (220, 30, 40)).all()
    # 8 px across: 7 rows fully covered, the antialiased edge shares the eighth.
    assert (colour[17:24, 30, 3] == 255).all() and not colour[:15, :, 3].any() and not colour[26:, :, 3].any()
    assert 200 < int(colour[16, 30, 3]) + int(colour[24, 30, 3]) < 310
    assert stack.text(stack.index() - 1) == "Brush stroke"
    # Half opacity: one stroke crossing itself stays at half.
    tools.opacity_slider.setValue(50)
    drag(house, [(20, 40), (40, 40), (20, 40)])
    assert abs(int(layer.colour[40, 30, 3]) - 128) <= 1 and layer.colour[40, 30, 0] == 220
    house.act.undo.trigger()
    assert not layer.colour[40].any()
    house.act.undo.trigger()
    assert not layer.has("colour")
    house.act.redo.trigger()
    np.testing.assert_array_equal(layer.colour, colour)
    # The edge pen draws one-pixel lines on the edge layer; the eraser follows the chosen layer.
    key(qtbot, house, "P")
    drag(house, [(5, 50), (60, 50)])
    assert (layer.edges[50, 5:61] == 255).all() and layer.edges.sum() == 56 * 255
    assert stack.text(stack.index() - 1) == "Edge line" and tools.target == "edges"
    key(qtbot, house, "E")
    drag(house, [(32, 44), (32, 56)])
    assert not layer.edges[50, 29:36].any() and layer.edges[50, 10] == 255 and layer.has("colour")
    assert stack.text(stack.index() - 1) == "Erase edges"
    # Keys: [ ] size, X swaps colours, I picks the colour the canvas shows.
    size = tools.size_slider.value()
    key(qtbot, house, "]")
    assert tools.size_slider.value() == round(size * 1.25)
    key(qtbot, house, "[")
    assert tools.size_slider.value() == size
    key(qtbot, house, "X")
    assert layer.brush.colour == (255, 255, 255) and layer.brush.background == (220, 30, 40)
    key(qtbot, house, "I")
    mouse(house, QEvent.Type.MouseButtonPress, 30, 20)
    mouse(house, QEvent.Type.MouseButtonRelease, 30, 20)
    assert layer.brush.colour == (220, 30, 40)
    image = house.document.image.rgb
    mouse(house, QEvent.Type.MouseButtonPress, 30, 5)
    mouse(house, QEvent.Type.MouseButtonRelease, 30, 5)
    assert layer.brush.colour == tuple(int(v) for v in image[5, 30])
    # The keep brush paints its own mask; Clear empties a layer in one undoable step.
    key(qtbot, house, "K")
    drag(house, [(5, 5), (12, 5)])
    assert tools.keep_layer.mask[5, 5:13].all() and tools.has("keep")
    tools.layers.clears["edges"].click()
    assert not layer.has("edges") and stack.text(stack.index() - 1) == "Clear edges"
    # Behind another panel the keys do nothing and the canvas is the canvas again.
    house.invert_dock.raise_()
    qtbot.waitUntil(lambda: not panel.in_front)
    assert tools.tool is None and not layer.active and not layer.isVisible()
    key(qtbot, house, "B")
    assert tools.tool is None


def test_tablet_pressure_narrows_the_brush(house):
    tools = house.sketch_panel.tools
    tools.set_tool("brush")
    tools.size_slider.setValue(20)
    tools.hardness_slider.setValue(100)
    pen = QPointingDevice("test pen", 77, QInputDevice.DeviceType.Stylus, QPointingDevice.PointerType.Pen,
                         QInputDevice.Capability.Position | QInputDevice.Capability.Pressure, 1, 3)
    viewport = house.canvas.viewport()

    def tablet(kind: QEvent.Type, x: float, y: float, pressure: float) -> None:
        vx, vy = image_pixel_in_viewport(house, (x + 0.5) / R, (y + 0.5) / R)
        event = QTabletEvent(kind, pen, QPointF(vx, vy), viewport.mapToGlobal(QPointF(vx, vy)), pressure,
                             0.0, 0.0, 0.0, 0.0, 0.0, Qt.KeyboardModifier.NoModifier, Qt.MouseButton.LeftButton,
                             Qt.MouseButton.LeftButton)
        QApplication.sendEvent(viewport, event)

    for y, pressure in ((16, 1.0), (46, 0.25)):
        tablet(QEvent.Type.TabletPress, 10, y, pressure)
        tablet(QEvent.Type.TabletMove, 50, y, pressure)
        tablet(QEvent.Type.TabletRelease, 50, y, pressure)
    alpha = tools.layer.colour[..., 3]
    heavy, light = int((alpha[:, 30] > 0).sum() - (alpha[32:, 30] > 0).sum()), int((alpha[32:, 30] > 0).sum())
    assert 19 <= heavy <= 22 and 7 <= light <= 9  # 20 px at full pressure, 20 * (0.2 + 0.8 * 0.25) = 8 px
    assert house.document.undo_stack.count() >= 2


def test_the_sketch_is_saved_in_the_ganvas_and_comes_back(house, qtbot, tmp_path):
    tools = house.sketch_panel.tools
    tools.set_tool("brush")
    tools.layer.brush.colour = (20, 160, 90)
    drag(house, [(8, 8), (40, 30)])
    tools.set_tool("pen")
    drag(house, [(10, 60), (60, 10)])
    tools.set_tool("keep")
    drag(house, [(50, 50), (58, 58)])
    colour, edges, keep = tools.layer.colour, tools.layer.edges, tools.keep_layer.mask
    latent = house.document.latent
    assert set(latent.layers) == {"sketch.colour", "sketch.edges", "sketch.keep"}
    path = tmp_path / "drawing.ganvas"
    with qtbot.waitSignal(house.files.saved, timeout=20000):
        house.files.save_to(path)
    # Something else on the canvas, then the document again.
    tools.layer.clear("colour")
    tools.layer.clear("edges")
    assert not tools.layer.has("colour")
    with qtbot.waitSignal(house.files.opened, timeout=20000):
        house.open_path(path)
    qtbot.waitUntil(lambda: not house.runner.busy, timeout=20000)
    np.testing.assert_array_equal(tools.layer.colour, colour)
    np.testing.assert_array_equal(tools.layer.edges, edges)
    np.testing.assert_array_equal(tools.keep_layer.mask, keep)
    assert house.document.undo_stack.count() == 0  # opening is not undoable, the sketch is just there
    restored = read_layers(house.document.latent.layers, R, R)
    np.testing.assert_array_equal(restored["colour"], colour)


def test_canny_overlay_follows_the_thresholds_and_becomes_the_edge_layer(house, qtbot):
    tools, layer = house.sketch_panel.tools, house.sketch_panel.tools.layer
    image = house.document.image.rgb
    with qtbot.waitSignal(tools.edgesShown, timeout=20000) as shown:
        tools.edges_button.setChecked(True)
    first = shown.args[0]
    np.testing.assert_array_equal(first.edges, canny_edges(image, 100, 200))
    assert layer.previewing and (first.low, first.high) == (100, 200)
    with qtbot.waitSignal(tools.edgesShown, timeout=20000) as shown:
        tools.high_slider.setValue(60)
        tools.low_slider.setValue(30)
    loose = shown.args[0]
    assert (loose.low, loose.high) == (30, 60) and loose.edges.sum() > first.edges.sum()
    np.testing.assert_array_equal(loose.edges, canny_edges(image, 30, 60))
    tools.low_slider.setValue(90)  # past the high threshold: high follows
    assert tools.high_slider.value() == 90
    with qtbot.waitSignal(tools.edgesShown, timeout=20000) as shown:
        tools.high_slider.setValue(250)
    assert shown.args[0].edges.sum() < loose.edges.sum()
    tools.use_edges_button.click()
    np.testing.assert_array_equal(layer.edges > 0, shown.args[0].edges)
    assert not layer.previewing and tools.target == "edges"
    house.act.undo.trigger()
    assert not layer.has("edges")


def test_generate_gives_k_candidates_and_picking_one_sets_the_latent(house, qtbot):
    panel, tools, document = house.sketch_panel, house.sketch_panel.tools, house.document
    route = panel.route_combo
    if not edges_models():  # no edges-to-image model shipped yet: that route is offered, disabled, and says why
        assert route.count() == 2 and not route.model().item(1).isEnabled()
        assert "not trained yet" in route.itemData(1, Qt.ItemDataRole.ToolTipRole)
    assert not panel.generate_button.isEnabled() and "Draw" in panel.status.text()
    tools.set_tool("brush")
    tools.size_slider.setValue(14)
    tools.layer.brush.colour = (230, 40, 40)
    drag(house, [(16, 16), (48, 16), (48, 48), (16, 48)])
    panel.candidates_spin.setValue(3)
    panel.steps_spin.setValue(3)
    before, latent_before = document.image, document.latent
    with qtbot.waitSignal(panel.generated, timeout=60000) as generated:
        panel.generate_button.click()
    qtbot.waitUntil(lambda: not house.runner.busy, timeout=20000)
    done = generated.args[0]
    losses = [c.loss for c in done.result.candidates]
    assert panel.strip.count() == 3 and losses == sorted(losses) and done.result.steps == 3
    assert document.image is before  # nothing lands until a candidate is picked
    assert panel.strip.item(1).text().startswith("2 · ")
    with qtbot.waitSignal(panel.picked, timeout=5000):
        panel.strip.itemClicked.emit(panel.strip.item(1))
    picked = done.result.candidates[1]
    latent = document.latent
    torch.testing.assert_close(latent.base_ws, picked.ws)
    np.testing.assert_array_equal(document.image.rgb, picked.image)
    assert latent.meta["sketch"]["loss"] == pytest.approx(picked.loss) and "sketch.colour" in latent.layers
    assert document.undo_stack.text(document.undo_stack.index() - 1) == "Sketch candidate 2"
    assert house.edit_panel.controls.isEnabled()
    house.act.undo.trigger()
    assert document.image is before and document.latent is latent_before


def test_an_installed_edges_model_is_a_route_whose_result_lands_as_pixels(house, qtbot, tmp_path, monkeypatch):
    torch.manual_seed(0)
    folder = tmp_path / "models"
    net = UnetGenerator(UnetConfig(input_nc=1, num_downs=6, ngf=4)).eval()
    path = save_unet(net, folder / "tiny-edges.safetensors", {"resolution": R})
    (folder / "tiny-edges.md").write_text("---\ntitle: Tiny edges\nkind: edges-to-image\n---\n", encoding="utf-8")
    monkeypatch.setenv("GANVAS_MODELS_DIR", str(folder))
    panel, document = house.sketch_panel, house.document
    panel.fill_routes()
    index = panel.route_combo.findData(str(path))
    assert index > 0 and panel.route_combo.model().item(index).isEnabled()
    assert panel.route_combo.itemText(index) == "Edges model · Tiny edges"
    panel.route_combo.setCurrentIndex(index)
    panel.tools.set_tool("brush")
    drag(house, [(10, 10), (20, 10)])
    assert not panel.generate_button.isEnabled() and "edges" in panel.status.text()  # it reads edges only
    panel.tools.set_tool("pen")
    drag(house, [(10, 32), (54, 32)])
    with qtbot.waitSignal(panel.generated, timeout=20000) as generated:
        panel.generate_button.click()
    done = generated.args[0]
    np.testing.assert_array_equal(done.image, translate_edges(load_unet(path), panel.layer.edges > 0))
    assert done.image.shape == (R, R, 3) and panel.strip.count() == 1
    before = document.image
    panel.pick(0)
    np.testing.assert_array_equal(document.image.rgb, done.image)
    assert document.latent is None  # pixels from a network, no latent behind them
    house.act.undo.trigger()
    assert document.image is before


def test_cancel_leaves_the_document_unchanged(house, qtbot):
    panel, document = house.sketch_panel, house.document
    panel.tools.set_tool("pen")
    drag(house, [(10, 32), (54, 32)])
    image, latent, count, revision = document.image, document.latent, document.undo_stack.count(), document.revision
    panel.steps_spin.setValue(2000)
    panel.generate_button.click()
    qtbot.waitUntil(lambda: "step" in panel.status.text(), timeout=30000)
    assert panel.cancel_button.isEnabled() and not panel.generate_button.isEnabled()
    panel.cancel_button.click()
    qtbot.waitUntil(lambda: panel.job is None, timeout=20000)
    assert document.image is image and document.latent is latent and document.revision == revision
    assert document.undo_stack.count() == count and panel.strip.count() == 0
    assert "cancelled" in panel.status.text() and panel.generate_button.isEnabled()


def test_live_mode_searches_only_the_newest_drawing(house, qtbot):
    panel, tools = house.sketch_panel, house.sketch_panel.tools
    panel.live_steps = 3
    started, landed = [], []
    house.runner.jobStarted.connect(lambda m: m.title == "Live sketch" and started.append(m.job_id))
    panel.liveLanded.connect(landed.append)
    panel.live_button.setChecked(True)
    assert not started and panel.live_label.text() == "live · waiting for a stroke"  # nothing drawn yet
    tools.set_tool("brush")
    tools.size_slider.setValue(10)
    tools.layer.brush.colour = (40, 60, 220)
    for y in (12, 32, 52):  # three strokes in a row: the second request is overtaken before it starts
        drag(house, [(8, y), (56, y)])
    assert panel.live_label.text() == "live · searching…"
    qtbot.waitUntil(lambda: bool(landed) and not house.runner.busy, timeout=60000)
    qtbot.wait(50)
    assert len(started) == 2 and len(landed) == 1
    done = landed[0]
    assert done.warm and done.result.steps == 3 and len(done.result.candidates) == 1
    assert (done.request.drawing.alpha[52, 8:57] > 0).all()  # it searched the drawing with all three strokes
    assert re.fullmatch(r"live · \d+\.\d s", panel.live_label.text())
    assert panel.result_view.caption == panel.live_label.text() and panel.use_button.isEnabled()
    # Using the live result is one undoable step; the next live search starts from it.
    panel.use_button.click()
    torch.testing.assert_close(house.document.latent.base_ws, done.result.best.ws)
    assert panel._warm is done.result.best.ws


def test_a_drawing_is_the_centre_square_of_the_chosen_layers():
    colour = np.zeros((40, 60, 4), np.uint8)
    colour[10:20, 20:30] = (255, 0, 0, 128)
    edges = np.zeros((40, 60), np.uint8)
    edges[5, :] = 255
    keep = np.zeros((40, 60), np.uint8)
    image = np.full((40, 60, 3), 7, np.uint8)
    both = build_drawing(colour, edges, keep, image, "both")
    assert both.colour.shape == (40, 40, 3) and both.edges.shape == (40, 40) and both.keep is None
    assert both.alpha[15, 15] == pytest.approx(128 / 255) and both.alpha[15, 5] == 0
    assert both.edges[5].all() and both.notes
    only_edges = build_drawing(colour, edges, keep, image, "edges")
    assert only_edges.colour is None and only_edges.layers() == "edges"
    keep[0, 30] = 1
    kept = build_drawing(colour, np.zeros_like(edges), keep, image, "strokes")
    assert kept.keep[0, 20] == 1 and kept.source.shape == (40, 40, 3) and kept.layers() == "strokes + keep"
    with pytest.raises(Exception, match="kind"):
        build_drawing(colour, edges, keep, image, "paint")


def test_dab_coverage_is_hard_or_soft():
    hard = dab_coverage((0, 0, 21, 21), (10.5, 10.5), (10.5, 10.5), 5, 1.0)
    # Radius 5 about a pixel centre: 9 pixels fully covered, the edge pixels half: 10 px across.
    assert (hard[10, 6:15] == 1).all() and hard[10, 15] == hard[10, 5] == 0.5 and hard[10, 16] == hard[10, 4] == 0
    soft = dab_coverage((0, 0, 21, 21), (10.5, 10.5), (10.5, 10.5), 5, 0.0)
    assert soft[10, 10] == 1 and 0 < soft[10, 13] < 1 and soft[10, 16] == 0
    assert soft[10, 12] > soft[10, 13] > soft[10, 14]
