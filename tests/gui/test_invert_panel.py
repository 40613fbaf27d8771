"""The Invert panel on house-gan, driven like a user: runs of a few steps, mask painting, face points, paste back."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PySide6.QtCore import QEvent
from PySide6.QtWidgets import QDockWidget

from engine.convert import tensor_to_image
from engine.images import load_image, save_image
from engine.models.checkpoint import load_generator
from engine.ops.align import Landmarks, ffhq_quad
from engine.ops.generate import sample
from gui.invert_state import (InvertRequest, build_operator, detect_landmarks, detector_available,
                               figures_lines, landmarks_from_points, prepare_input)
from gui.main_window import MainWindow
from tests.gui.helpers import drag, mouse, open_via_menu

HOUSE = Path(__file__).resolve().parents[2] / "resources" / "models" / "house-gan.safetensors"
R = 64


@pytest.fixture(scope="module")
def G():
    return load_generator(HOUSE)


@pytest.fixture
def house(window, qtbot, one_torch_thread) -> MainWindow:
    """house-gan loaded (its first sample drawn, its directions found), the Invert panel in front."""
    with qtbot.waitSignal(window.model.loaded, timeout=30000):
        window.model.load(HOUSE)
    qtbot.waitUntil(lambda: window.edit_panel.directions is not None and not window.runner.busy, timeout=30000)
    window.invert_dock.raise_()
    qtbot.waitUntil(window.invert_panel.isVisible)
    return window


def photo(G, seed: int = 11, margin: int = 16) -> np.ndarray:
    """A held-out house-gan sample with ``margin`` px of flat grey either side: a 64-high, wider photo."""
    face = sample(G, seed).image
    grey = np.full((R, margin, 3), 90, np.uint8)
    return np.ascontiguousarray(np.concatenate([grey, face, grey], axis=1))


def open_photo(qtbot, window, tmp_path, monkeypatch, rgb: np.ndarray) -> None:
    path = tmp_path / "photo.png"
    save_image(path, rgb)
    open_via_menu(qtbot, window, path, monkeypatch)


def run(qtbot, window: MainWindow, steps: int = 6, mode: str = "w+", task: str = "Invert", tune: int = 3):
    """Start a run from the panel and wait for its result to land; returns the InvertDone."""
    panel = window.invert_panel
    panel.set_mode(mode)
    panel.set_task(task)
    panel.steps_spin.setValue(steps)
    panel.tune_spin.setValue(tune)
    with qtbot.waitSignal(panel.finished, timeout=60000) as blocker:
        panel.start_button.click()
    qtbot.waitUntil(lambda: not window.runner.busy, timeout=20000)
    return blocker.args[0]


def test_a_run_previews_in_the_photo_shows_figures_and_lands_one_undoable_latent(house, qtbot, G, tmp_path,
                                                                                 monkeypatch):
    rgb = photo(G)
    open_photo(qtbot, house, tmp_path, monkeypatch, rgb)
    original, panel, stack = house.document.image, house.invert_panel, house.document.undo_stack
    assert panel.steps_spin.text() == panel.samples_spin.text() == "auto"  # the engine's choices by default
    assert (panel.request().steps, panel.request().samples) == (None, None)
    previews = []
    house.runner.jobPreview.connect(lambda m: previews.append((house.canvas.previewing, m.image)))
    done = run(qtbot, house, steps=8)

    # Previews reached the canvas, pasted into the photo where its centre square was cut.
    assert previews and all(showing for showing, _ in previews)
    for _, image in previews:
        assert image.shape == rgb.shape
        np.testing.assert_array_equal(image[:, :16], rgb[:, :16])
        assert not np.array_equal(image[:, 16:80], rgb[:, 16:80])
    assert not house.canvas.previewing
    # The figures sit beside the result, and the curve holds every step.
    result = done.result
    assert panel.figures.text("PSNR") == f"{result.psnr:.2f} dB" and panel.figures.text("SSIM") == f"{result.ssim:.3f}"
    assert panel.figures.text("LPIPS").startswith("—") or panel.figures.text("LPIPS") == f"{result.lpips:.3f}"
    assert panel.figures.text("Distance") == result.distance and "8 steps" in panel.figures.text("Time")
    assert panel.curve.steps == list(range(1, 9)) and panel.curve.psnr[-1] == result.history[-1].psnr
    # One undoable step: the latent's own render, compared against the input the search saw.
    latent = house.document.latent
    assert stack.count() == 1 and stack.text(0) == "Invert W+"  # opening the photo started a new history
    torch.testing.assert_close(latent.base_ws, result.ws)
    np.testing.assert_array_equal(house.document.image.rgb, latent.render(G))
    np.testing.assert_array_equal(house.document.before.rgb, rgb[:, 16:80])
    assert house.canvas.compare and house.edit_panel.controls.isEnabled()
    house.act.undo.trigger()
    assert house.document.image is original and house.document.latent is None
    house.act.redo.trigger()
    assert house.document.latent is latent

    # Paste back: the (edited) square goes back into the photo, undoably.
    with qtbot.waitSignal(house.edit_panel.edited, timeout=20000):
        house.edit_panel.set_strength("ganspace:0", 2.0)
    qtbot.waitUntil(lambda: not house.runner.busy, timeout=20000)
    edited = house.document.image.rgb
    assert panel.paste_button.isEnabled()
    with qtbot.waitSignal(house.document.stateChanged, timeout=20000):
        panel.paste_button.click()
    pasted = house.document.image.rgb
    assert pasted.shape == rgb.shape and house.document.latent is None
    np.testing.assert_array_equal(pasted[:, :15], rgb[:, :15])  # outside the square: the photo as it was
    assert np.abs(pasted[20:44, 28:52].astype(int) - edited[20:44, 12:36].astype(int)).mean() < 3
    assert not panel.paste_button.isEnabled()
    house.act.undo.trigger()
    np.testing.assert_array_equal(house.document.image.rgb, edited)


def test_cancel_leaves_the_document_unchanged(house, qtbot):
    panel, document = house.invert_panel, house.document
    image, latent, count, revision = document.image, document.latent, document.undo_stack.count(), document.revision
    panel.set_mode("pti")
    panel.steps_spin.setValue(3000)
    panel.start_button.click()
    qtbot.waitUntil(lambda: len(panel.curve.steps) >= 3, timeout=30000)
    assert panel.cancel_button.isEnabled() and not panel.start_button.isEnabled()
    panel.cancel_button.click()
    qtbot.waitUntil(lambda: panel.job is None, timeout=10000)
    qtbot.wait(100)
    assert document.image is image and document.latent is latent and document.revision == revision
    assert document.undo_stack.count() == count and not house.canvas.previewing
    assert "cancelled" in panel.status.text() and panel.start_button.isEnabled()
    assert not panel.figures.values


def test_pti_keeps_its_tuned_weights_in_the_document_for_the_edit_panel(house, qtbot, G):
    done = run(qtbot, house, steps=4, mode="pti", tune=4)
    latent = house.document.latent
    assert done.result.steps == 8 and house.invert_panel.figures.text("Pivot").endswith("before tuning")
    assert latent.tuned_weights and set(latent.tuned_weights) == set(done.result.weights_delta)
    np.testing.assert_array_equal(house.document.image.rgb, latent.render(G))
    with torch.no_grad():
        untuned = tensor_to_image(G.synthesis(latent.base_ws, noise_mode="const"))
    assert np.abs(house.document.image.rgb.astype(int) - untuned).mean() > 0.5  # the tuned weights render
    with qtbot.waitSignal(house.edit_panel.edited, timeout=20000):
        house.edit_panel.set_strength("ganspace:1", -1.5)
    edited = house.document.latent
    assert edited.tuned_weights is not None and set(edited.tuned_weights) == set(latent.tuned_weights)
    np.testing.assert_array_equal(house.document.image.rgb, edited.render(G))


def test_the_painted_mask_is_the_hole_the_engine_fills(house, qtbot):
    panel, layer = house.invert_panel, house.invert_panel.mask_layer
    panel.set_task("Inpaint")
    assert panel.mask.brush_button.isChecked() and layer.isVisible() and not panel.start_button.isEnabled()
    panel.mask.size_slider.setValue(12)
    drag(house, [(0.3, 0.5), (0.5, 0.5), (0.7, 0.5)])
    mask = layer.mask
    assert mask[32, 20:44].all() and mask[27:37, 32].all() and not mask[:20].any() and not mask[45:].any()
    assert panel.start_button.isEnabled() and house.document.undo_stack.text(house.document.undo_stack.index() - 1) \
        == "Paint mask"
    house.act.undo.trigger()
    assert not layer.has_paint() and not panel.start_button.isEnabled()
    house.act.redo.trigger()
    np.testing.assert_array_equal(layer.mask, mask)
    panel.mask.eraser_check.setChecked(True)
    drag(house, [(0.5, 0.3), (0.5, 0.7)])
    erased = layer.mask
    assert not erased[32, 28:36].any() and erased[32, 20:24].all()
    panel.mask.eraser_check.setChecked(False)
    photo_rgb = house.document.image.rgb
    done = run(qtbot, house, steps=5, task="Inpaint")
    np.testing.assert_array_equal(done.prepared.known, (erased == 0).astype(np.float32))
    assert done.result.task == "inpaint" and done.result.psnr_unseen is not None
    kept = erased == 0
    np.testing.assert_array_equal(house.document.image.rgb[kept], photo_rgb[kept])  # known pixels kept
    assert (house.document.before.rgb[~kept] == 128).all()  # the compare shows the hole as the search saw it
    assert not layer.isVisible()  # the result is not hidden under the mask; the brush brings the mask back
    panel.mask.brush_button.setChecked(True)
    assert layer.isVisible()
    house.act.undo.trigger()
    np.testing.assert_array_equal(layer.mask, erased)  # the mask comes back with the image it was painted on
    panel.mask.clear_button.click()
    assert not layer.has_paint()


def test_colourise_and_super_resolution_build_their_operators(house, qtbot, G):
    panel = house.invert_panel
    done = run(qtbot, house, steps=4, task="Colourise")
    assert done.result.task == "colorize" and done.result.distance
    observed = house.document.before.rgb.astype(int)
    assert (observed[..., 0] == observed[..., 1]).all() and (observed[..., 1] == observed[..., 2]).all()
    panel.set_task("Super-resolve ×4")
    panel.steps_spin.setValue(0)
    assert panel.steps_spin.text() == "auto"
    request = panel.request()
    assert (request.task, request.factor) == ("superres", 4)
    op = build_operator(request.task, request.factor, R)
    assert op.kind == "down" and op.factor == 4
    assert build_operator("colorize", 1, R).kind == "grey" and build_operator("invert", 1, R).kind == "identity"
    small = InvertRequest(np.zeros((32, 40, 3), np.uint8), task="superres", factor=4)
    prepared = prepare_input(small, R)
    assert prepared.target.shape == (16, 16, 3) and prepared.truth is None
    assert panel.samples_spin.text() == "auto" and (request.samples, request.steps) == (None, None)
    assert (request.plan(R).samples, request.plan(R).steps) == (8, 200)  # the engine's choice for SR
    panel.samples_spin.setValue(3)
    done = run(qtbot, house, steps=4, task="Super-resolve ×8")
    assert done.result.task == "superres" and house.document.before.rgb.shape == (R, R, 3)
    blocks = house.document.before.rgb.reshape(8, 8, 8, 8, 3)  # the 8 px input, shown at 64 px
    assert (blocks == blocks[:, :1, :, :1]).all()
    assert done.request.samples == 3 and len(done.result.candidates) == 3
    assert ("Samples", "mean of 3 answers") in figures_lines(done)
    assert house.document.latent.meta["invert"]["samples"] == 3
    np.testing.assert_array_equal(house.document.image.rgb, done.result.image)  # the mean lands, not one sample


def test_face_points_placed_by_hand_align_the_input(house, qtbot, G, tmp_path, monkeypatch):
    rgb = photo(G, seed=3, margin=32)
    open_photo(qtbot, house, tmp_path, monkeypatch, rgb)
    panel, layer = house.invert_panel, house.invert_panel.points_layer
    panel.align.align_check.setChecked(True)
    assert panel.align.place_button.isChecked() and not panel.start_button.isEnabled()
    assert panel.align.status.text() == "Click the left eye (1 of 4)."
    clicks = [(52.0, 26.0), (76.0, 26.0), (56.0, 46.0), (72.0, 46.0)]  # image pixels, as (x, y)
    width, height = rgb.shape[1], rgb.shape[0]
    for x, y in clicks:
        mouse(house, QEvent.Type.MouseButtonPress, (x + 0.5) / width, (y + 0.5) / height)
        mouse(house, QEvent.Type.MouseButtonRelease, (x + 0.5) / width, (y + 0.5) / height)
    landmarks = layer.landmarks()
    np.testing.assert_allclose(landmarks.array(), np.array(clicks), atol=0.5)
    assert panel.start_button.isEnabled() and panel.align.status.text() == "Drag a point to adjust it."
    done = run(qtbot, house, steps=4)
    assert done.prepared.aligned
    np.testing.assert_allclose(done.prepared.alignment.quad, ffhq_quad(landmarks))
    assert house.document.image.rgb.shape == (R, R, 3) and panel.paste_button.isEnabled()
    with qtbot.waitSignal(house.document.stateChanged, timeout=20000):
        panel.paste_button.click()
    assert house.document.image.rgb.shape == rgb.shape
    np.testing.assert_array_equal(house.document.image.rgb[:, :4], rgb[:, :4])
    # The points belong to the photo: hidden on the square, back with a photo of that size.
    assert layer.complete
    house.act.undo.trigger()
    assert not layer.complete


def test_detector_points_map_to_eye_centres_and_mouth_corners():
    ibug = np.zeros((68, 2))
    ibug[36:42] = [60, 40]
    ibug[42:48] = [20, 42]  # the subject's left eye is on the image's right: order by screen position
    ibug[48], ibug[54] = [50, 80], [30, 80]
    found = landmarks_from_points(ibug)
    assert found == Landmarks((20, 42), (60, 40), (30, 80), (50, 80))
    five = np.array([[70, 40], [50, 40], [10, 40], [30, 40], [40, 60]], float)
    found = landmarks_from_points(five)
    assert found.eye_left == (20, 40) and found.eye_right == (60, 40)
    np.testing.assert_allclose(found.array()[2:], [[26, 70], [54, 70]])
    with pytest.raises(Exception, match="68 or 5"):
        landmarks_from_points(np.zeros((12, 2)))


@pytest.mark.skipif(not detector_available(), reason="dlib or a shape predictor is not installed (optional)")
def test_detect_places_the_face_points_of_a_real_face(house, qtbot, tmp_path, monkeypatch):
    face = load_image(Path(__file__).parents[1] / "data" / "astronaut-face.jpg").to_uint8()
    expected = np.array([[103, 101.5], [146.5, 104], [100, 139], [146, 141]])  # read off the picture by eye
    assert np.abs(detect_landmarks(face).array() - expected).max() < 4
    open_photo(qtbot, house, tmp_path, monkeypatch, face)
    panel = house.invert_panel
    panel.align.align_check.setChecked(True)
    assert panel.align.detect_button.isEnabled()
    panel.align.detect_button.click()
    qtbot.waitUntil(lambda: panel.points_layer.complete, timeout=20000)
    assert np.abs(panel.points_layer.landmarks().array() - expected).max() < 4
    assert panel.start_button.isEnabled()
    assert detect_landmarks(load_image(Path(__file__).parents[2] / "resources" / "samples" / "sample.jpg").to_uint8()) is None  # no face


def test_a_tab_behind_another_puts_the_brush_down(house, qtbot):
    panel = house.invert_panel
    house.invert_dock.raise_()
    panel.set_task("Inpaint")
    assert panel.mask.brush_button.isChecked()
    edit_dock = next(d for d in house.findChildren(QDockWidget) if d.windowTitle() == "Edit")
    edit_dock.raise_()  # the Invert tab goes behind: no hide event, only the dock's visibilityChanged
    qtbot.waitUntil(lambda: not panel.mask.brush_button.isChecked(), timeout=3000)
