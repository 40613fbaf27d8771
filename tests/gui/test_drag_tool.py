"""The Drag tool on the canvas, driven like a user in the real window on house-gan."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PySide6.QtCore import QPoint, Qt

from engine.models.catalog import resolve
from engine.models.checkpoint import load_generator
from engine.ops.edit import DirectionEdit, DragEdit
from engine.ops.generate import render
from gui.main_window import MainWindow
from tests.gui.helpers import image_pixel_in_viewport

R = 64


@pytest.fixture(scope="module")
def G():
    return load_generator(resolve("house-gan"))


@pytest.fixture
def house(window, qtbot, one_torch_thread) -> MainWindow:
    """house-gan loaded, its first sample drawn and its directions found."""
    with qtbot.waitSignal(window.model.loaded, timeout=30000):
        window.model.load(resolve("house-gan"))
    qtbot.waitUntil(lambda: window.edit_panel.directions is not None and not window.runner.busy, timeout=30000)
    return window


def click(qtbot, window: MainWindow, x: float, y: float) -> None:
    """A left click on the canvas over image pixel ``(x, y)`` (its centre)."""
    vx, vy = image_pixel_in_viewport(window, (x + 0.5) / R, (y + 0.5) / R)
    qtbot.mouseClick(window.canvas.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(vx, vy))


def place(qtbot, window: MainWindow, pairs: list[tuple[tuple[int, int], tuple[int, int]]]) -> None:
    qtbot.keyClick(window.canvas, Qt.Key.Key_D)  # the tool's shortcut
    assert window.drag_tool.active and window.drag_tool.layer.isVisible()
    for handle, target in pairs:
        click(qtbot, window, *handle)
        click(qtbot, window, *target)


def run(qtbot, window: MainWindow, steps: int = 60):
    controls = window.drag_tool.controls
    controls.steps.setValue(steps)
    assert controls.run_button.isEnabled()
    with qtbot.waitSignal(window.drag_tool.finished, timeout=60000) as landed:
        qtbot.mouseClick(controls.run_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not window.runner.busy and not window.drag_tool.running, timeout=10000)
    return landed.args[0]


def test_points_placed_by_clicks_drag_the_image_and_undo_restores(house, qtbot, G):
    tool, layer, stack = house.drag_tool, house.drag_tool.layer, house.document.undo_stack
    original_image, original_latent, count = house.document.image, house.document.latent, stack.count()
    assert not tool.controls.run_button.isEnabled()  # no points yet
    place(qtbot, house, [((32, 44), (32, 50))])  # the middle of the mouth, 6 px down
    assert layer.pairs(R) == [((32.0, 44.0), (32.0, 50.0))]
    assert "1 pair" in tool.controls.status.text()
    seen: list[float] = []
    layer.pointsChanged.connect(lambda: seen.append(layer.handles[0].y() - 0.5))
    done = run(qtbot, house)
    result = done.result
    assert result.stopped == "arrived" and result.distances[-1][0] <= 2.0
    # The handle moved on the canvas as the previews came in, and stays where tracking left it.
    assert len(set(seen)) >= 3 and seen[-1] == pytest.approx(result.points[0][1]) and max(seen) <= 51
    assert layer.pairs(R)[0][0] == pytest.approx(result.points[0]) and layer.starts == []
    # One undoable step; the latent carries the drag on its edit stack and renders the image shown.
    assert stack.count() == count + 1 and stack.text(stack.index() - 1) == "Drag 1 point"
    latent = house.document.latent
    assert isinstance(latent.edits[-1], DragEdit) and latent.edits[-1].handles == ((32.0, 44.0),)
    np.testing.assert_array_equal(house.document.image.rgb, render(G, latent.current_ws()))
    np.testing.assert_array_equal(house.document.image.rgb, result.image)
    assert not np.array_equal(house.document.image.rgb, original_image.rgb)
    assert not house.canvas.previewing
    assert tool.controls.status.text().startswith("Arrived:")
    house.act.undo.trigger()
    assert house.document.image is original_image and house.document.latent is original_latent
    assert layer.pairs(R) == [((32.0, 44.0), (32.0, 50.0))]  # the points went back with the image
    house.act.redo.trigger()
    assert house.document.latent is latent and layer.pairs(R)[0][0] == pytest.approx(result.points[0])


def test_two_pairs_then_a_slider_keeps_the_drag(house, qtbot):
    place(qtbot, house, [((20, 40), (20, 46)), ((44, 40), (44, 46))])
    house.drag_tool.controls.steps.setValue(5)
    done = run(qtbot, house, steps=5)
    assert done.result.steps <= 5 and len(done.result.points) == 2
    assert house.document.undo_stack.text(house.document.undo_stack.index() - 1) == "Drag 2 points"
    # A direction slider rebuilds the panel's edits; the drag stays on top of them.
    panel = house.edit_panel
    with qtbot.waitSignal(panel.edited, timeout=20000):
        panel.set_strength("ganspace:0", 1.0)
    qtbot.waitUntil(lambda: not house.runner.busy, timeout=10000)
    edits = house.document.latent.edits
    assert isinstance(edits[-1], DragEdit) and any(isinstance(e, DirectionEdit) for e in edits[:-1])
    assert torch.equal(edits[-1].delta, done.latent.edits[-1].delta)


def test_stop_keeps_the_result_and_cancel_discards_it(house, qtbot):
    tool = house.drag_tool
    place(qtbot, house, [((30, 44), (30, 34))])
    before_image, count = house.document.image, house.document.undo_stack.count()
    def press_stop() -> None:  # at the first preview
        if tool.running:
            tool.controls.stop_button.click()

    tool.layer.pointsChanged.connect(press_stop)
    done = run(qtbot, house, steps=300)
    assert done.result.stopped == "user" and done.result.steps < 10
    assert house.document.undo_stack.count() == count + 1 and house.document.image is not before_image
    tool.layer.pointsChanged.disconnect(press_stop)
    # Cancel from the job area: nothing lands, the points go back to where the run began.
    start_points, latent = tool.layer.pairs(R), house.document.latent
    tool.layer.pointsChanged.connect(lambda: tool.running and house.runner.cancel())
    qtbot.mouseClick(tool.controls.run_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not tool.running and not house.runner.busy, timeout=20000)
    assert house.document.latent is latent and house.document.undo_stack.count() == count + 1
    assert tool.layer.pairs(R) == start_points and "Cancelled" in tool.controls.status.text()


def test_the_mask_brush_and_the_tool_take_turns(house, qtbot):
    tool = house.drag_tool
    qtbot.keyClick(house.canvas, Qt.Key.Key_D)
    brush = tool.controls.mask.brush_button
    brush.setChecked(True)
    assert not tool.active and tool.mask_layer.active and tool.mask_layer.isVisible()
    tool.mask_layer.stroke([(20.0, 20.0), (40.0, 20.0)])
    assert tool.mask_layer.has_paint() and "green region" in tool.controls.status.text()
    qtbot.keyClick(house.canvas, Qt.Key.Key_D)
    assert tool.active and not brush.isChecked() and not tool.mask_layer.active
    click(qtbot, house, 30, 20)
    click(qtbot, house, 34, 20)
    done = run(qtbot, house, steps=4)
    assert done.result.steps <= 4
