"""The Edit panel, .ganvas Save/Open and Export Animation, driven like a user on the tiny StyleGAN fixture."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image as PILImage
from PySide6.QtCore import QTimer

from engine.convert import tensor_to_image
from engine.models.checkpoint import load_generator
from engine.ops.edit import Direction, DirectionLibrary, MixEdit, apply_edits, layer_groups, save_directions
from engine.ops.generate import sample
from gui.edit_state import AnimationRequest
from gui.main_window import MainWindow
from tests.gui.test_generate import CONDITIONAL, UNCONDITIONAL, assert_canvas_shows, open_model, settle


@pytest.fixture(scope="module")
def G():
    return load_generator(UNCONDITIONAL)


@pytest.fixture(scope="module")
def library(G):
    return DirectionLibrary(G)


def engine_render(G, ws, edits) -> np.ndarray:
    """What the engine draws for ``edits`` on ``ws``, outside the GUI."""
    with torch.no_grad():
        return tensor_to_image(G.synthesis(apply_edits(ws, edits), noise_mode="const"))


def ready(qtbot, window: MainWindow, path: Path, monkeypatch) -> MainWindow:
    """``path`` loaded through the Model menu, seed 0 drawn, its directions computed."""
    open_model(qtbot, window, path, monkeypatch)
    qtbot.waitUntil(lambda: window.edit_panel.directions is not None and not window.runner.busy, timeout=20000)
    return window


@pytest.fixture
def edited(window, qtbot, monkeypatch) -> MainWindow:
    return ready(qtbot, window, UNCONDITIONAL, monkeypatch)


def land(qtbot, window: MainWindow, change) -> None:
    """Make a change in the panel and wait until its render has landed and the worker is idle."""
    with qtbot.waitSignal(window.edit_panel.edited, timeout=20000):
        change()
    settle(qtbot, window)


def test_a_ganspace_slider_renders_the_engine_edit_and_undo_restores_it(edited, qtbot, G, library):
    panel, stack = edited.edit_panel, edited.document.undo_stack
    assert list(panel.rows)[:2] == ["ganspace:0", "ganspace:1"] and "sefa:9" in panel.rows
    assert panel.controls.isEnabled() and not panel.keep_others.isEnabled()  # no named directions shipped
    ws, original = sample(G, 0, 0.7).ws, edited.document.image
    row = panel.rows["ganspace:2"]
    # A drag is one undoable step, however many renders land on the way.
    row.slider.setSliderDown(True)
    for ticks in (40, 90, 150):
        row.slider.setValue(ticks)
        qtbot.wait(30)
    row.slider.setSliderDown(False)
    settle(qtbot, edited)
    assert row.strength() == 1.5 and row.value.text() == "1.50"
    expected = engine_render(G, ws, [library.get("ganspace:2").edit(1.5)])
    assert_canvas_shows(edited, expected)
    assert stack.count() == 2 and stack.text(1) == "GANSpace 2 +1.50"
    # A typed value of another direction is a step of its own, on the document's latent.
    land(qtbot, edited, lambda: panel.set_strength("sefa:0", -2.0))
    both = [library.get("ganspace:2").edit(1.5), library.get("sefa:0").edit(-2.0)]
    assert_canvas_shows(edited, engine_render(G, ws, both))
    assert stack.count() == 3 and [e.name for e in edited.document.latent.edits] == ["ganspace:2", "sefa:0"]
    edited.act.undo.trigger()
    assert panel.rows["sefa:0"].strength() == 0 and row.strength() == 1.5
    assert_canvas_shows(edited, expected)
    edited.act.undo.trigger()
    assert row.strength() == 0 and row.slider.value() == 0 and edited.document.image is original
    edited.act.redo.trigger()
    edited.act.redo.trigger()
    assert row.strength() == 1.5 and panel.rows["sefa:0"].strength() == -2.0
    assert_canvas_shows(edited, engine_render(G, ws, both))
    # A layer range applies the direction to those w slots only, and Reset is one step back to the sample.
    land(qtbot, edited, lambda: row.layers.setValue((0, 3)))
    ranged = [library.get("ganspace:2").edit(1.5, (0, 4)), library.get("sefa:0").edit(-2.0)]
    np.testing.assert_array_equal(edited.document.image.rgb, engine_render(G, ws, ranged))
    assert row.layers_label.text() == "0–3"
    land(qtbot, edited, panel.reset_button.click)
    np.testing.assert_array_equal(edited.document.image.rgb, original.rgb)
    assert row.strength() == 0 and row.layers.value() == (0, 7) and stack.text(stack.index() - 1) == "Reset edits"


def test_rapid_slider_moves_end_on_the_last_value(edited, qtbot, G, library):
    panel = edited.edit_panel
    row = panel.rows["ganspace:0"]
    renders = []
    edited.runner.jobStarted.connect(lambda m: renders.append(m.title))
    ticks = []
    timer = QTimer()
    timer.timeout.connect(lambda: ticks.append(time.monotonic()))
    timer.start(10)
    start = time.monotonic()
    values = list(range(-300, 301, 20))
    for value in values:
        row.slider.setValue(value)
    moved_in = time.monotonic() - start
    qtbot.waitUntil(lambda: not edited.runner.busy, timeout=20000)
    timer.stop()
    assert moved_in < 0.5, f"moving the slider blocked the GUI thread for {moved_in:.2f} s"
    stall = np.diff([start + moved_in, *ticks, time.monotonic()]).max()
    assert stall < 0.5, f"the event loop stalled for {stall:.2f} s while the renders ran"
    assert 1 <= len(renders) <= 3 and renders[-1] == "GANSpace 0 +3.00", renders  # no backlog
    assert row.strength() == 3.0
    expected = engine_render(G, sample(G, 0, 0.7).ws, [library.get("ganspace:0").edit(3.0)])
    assert_canvas_shows(edited, expected)


def test_style_mixing_with_a_second_seed_matches_the_engine(edited, qtbot, G):
    panel = edited.edit_panel
    before = edited.document.image.rgb
    panel.mix_seed.setValue(5)  # mixing is off: nothing renders yet
    assert not panel.rendering
    assert panel.mix_group.currentText() == "Coarse"
    land(qtbot, edited, lambda: panel.mix_check.setChecked(True))
    coarse = layer_groups(8)["coarse"]
    expected = engine_render(G, sample(G, 0, 0.7).ws, [MixEdit(sample(G, 5, 0.7).ws, coarse)])
    assert_canvas_shows(edited, expected)
    assert not np.array_equal(expected, before)
    assert panel.mix_label.isHidden() and edited.document.undo_stack.text(1) == "Style mix seed 5 (coarse)"
    land(qtbot, edited, lambda: panel.mix_group.setCurrentIndex(2))  # fine layers
    fine = engine_render(G, sample(G, 0, 0.7).ws, [MixEdit(sample(G, 5, 0.7).ws, layer_groups(8)["fine"])])
    np.testing.assert_array_equal(edited.document.image.rgb, fine)
    # Interpolation all the way to seed 7 gives seed 7's image.
    panel.interp_seed.setValue(7)
    land(qtbot, edited, lambda: panel.interp_check.setChecked(True))
    land(qtbot, edited, lambda: panel.t_value.setValue(1.0))
    assert panel.t_slider.value() == 100
    np.testing.assert_array_equal(edited.document.image.rgb, sample(G, 7, 0.7).image)


def test_save_and_reopen_in_a_fresh_window_is_bit_identical(edited, qtbot, tmp_path, settings):
    panel = edited.edit_panel
    land(qtbot, edited, lambda: panel.set_strength("ganspace:1", -1.25))
    land(qtbot, edited, lambda: panel.rows["sefa:3"].layers.setValue((2, 5)))
    land(qtbot, edited, lambda: panel.set_strength("sefa:3", 2.0))
    panel.mix_seed.setValue(9)
    land(qtbot, edited, lambda: panel.mix_check.setChecked(True))
    with qtbot.waitSignal(edited.errorShown, timeout=20000) as blocker:  # a failed save is shown, not lost
        edited.files.save_to(tmp_path / "no-such-folder" / "portrait.ganvas")
    assert blocker.args[0] == "Save portrait.ganvas failed" and "no-such-folder" in blocker.args[1]
    assert edited.document.modified and edited.document.path is None
    edited.last_error_box.close()
    path = tmp_path / "portrait.ganvas"
    edited.files.choose_document_path = lambda suggestion: path
    with qtbot.waitSignal(edited.files.saved, timeout=20000):
        edited.act.save.trigger()  # the first Save asks where
    assert path.is_file() and not edited.document.modified and edited.windowTitle() == "portrait.ganvas[*] — GANvas"
    shown = edited.document.image.rgb.copy()

    fresh = MainWindow(settings)
    fresh.confirm_discard = lambda: True
    fresh.show()
    try:
        assert [p.name for p in fresh.settings.recent_files()][0] == "portrait.ganvas"
        with qtbot.waitSignal(fresh.files.opened, timeout=20000):
            fresh.open_path(path)  # no model loaded: the document loads its own
        qtbot.waitUntil(lambda: fresh.edit_panel.directions is not None and not fresh.runner.busy, timeout=20000)
        assert_canvas_shows(fresh, shown)
        assert fresh.model.path == UNCONDITIONAL.resolve() and fresh.document.path == path
        rows = fresh.edit_panel.rows
        assert rows["ganspace:1"].strength() == -1.25 and rows["sefa:3"].strength() == 2.0
        assert rows["sefa:3"].layers.value() == (2, 5) and rows["ganspace:0"].strength() == 0
        assert fresh.edit_panel.mix_check.isChecked() and fresh.edit_panel.mix_seed.value() == 9
        assert fresh.document.undo_stack.count() == 0 and not fresh.document.modified
        assert fresh.generate_panel.status.text().startswith("Press Generate")  # the new model drew nothing over it
        # Editing the reopened document goes on from the saved latent.
        with qtbot.waitSignal(fresh.edit_panel.edited, timeout=20000):
            fresh.edit_panel.set_strength("ganspace:1", 0.0)
        settle(qtbot, fresh)
        assert [e.name for e in fresh.document.latent.edits] == ["seed 9", "sefa:3"]
        with qtbot.waitSignal(fresh.files.saved, timeout=20000):
            fresh.act.save.trigger()  # saved before: Save writes there without asking
        assert not fresh.document.modified
    finally:
        fresh.close()
        fresh.runner.shutdown()
        fresh.deleteLater()


def test_export_animation_writes_every_frame_and_a_cancel_leaves_nothing(edited, qtbot, tmp_path):
    panel = edited.edit_panel
    panel.select("ganspace:3")
    choices = panel.animation_choices()
    assert choices[0] == ("Direction: GANSpace 3", "ganspace:3")
    gif = tmp_path / "sweep.gif"
    asked = []
    edited.files.ask_animation = lambda options, suggestion: asked.append(options) or AnimationRequest(
        gif, "ganspace:3", frames=9, fps=12)
    with qtbot.waitSignal(edited.files.animationExported, timeout=30000):
        edited.act.export_animation.trigger()
    with PILImage.open(gif) as animation:
        assert animation.n_frames == 9 and animation.size == (32, 32)
    assert edited.document.undo_stack.count() == 1  # exporting changes nothing

    long = tmp_path / "long.gif"
    edited.files.ask_animation = lambda options, suggestion: AnimationRequest(long, "ganspace:3", frames=1000)
    cancelled = []
    edited.runner.jobProgress.connect(lambda m: edited.runner.cancel(m.job_id))  # as the Cancel button does
    edited.runner.jobCancelled.connect(cancelled.append)
    edited.act.export_animation.trigger()
    qtbot.waitUntil(lambda: bool(cancelled), timeout=30000)
    settle(qtbot, edited)
    assert cancelled[0].title == "Export long.gif"
    assert not long.exists() and not [p.name for p in tmp_path.iterdir() if "long" in p.name]  # no partial file


def test_a_document_whose_model_is_missing_or_different_is_refused(window, qtbot, tmp_path, monkeypatch):
    copy = tmp_path / "portable.pkl"
    shutil.copy(UNCONDITIONAL, copy)
    ready(qtbot, window, copy, monkeypatch)
    path = tmp_path / "orphan.ganvas"
    window.files.choose_document_path = lambda suggestion: path
    with qtbot.waitSignal(window.files.saved, timeout=20000):
        window.act.save_as.trigger()
    saved_image = window.document.image
    copy.unlink()
    open_model(qtbot, window, CONDITIONAL, monkeypatch)  # another model is loaded now
    image = window.document.image
    messages = []
    window.files.ask_locate_model = lambda message: messages.append(message) or None
    window.open_path(path)
    qtbot.waitUntil(lambda: bool(messages), timeout=20000)
    settle(qtbot, window)
    assert "portable.pkl" in messages[0] and "not on this computer" in messages[0]
    assert window.document.image is image and window.document.latent.model.path == str(CONDITIONAL.resolve())
    # Pointing at a file with other weights is refused: it would render another picture.
    window.files.ask_locate_model = lambda message: CONDITIONAL
    with qtbot.waitSignal(window.errorShown, timeout=20000) as blocker:
        window.open_path(path)
    assert "not the model file orphan.ganvas was made with" in blocker.args[1]
    settle(qtbot, window)
    assert window.document.image is image and window.model.path == CONDITIONAL.resolve()
    window.last_error_box.close()
    # The right file, wherever it is now, opens it.
    moved = tmp_path / "moved.pkl"
    shutil.copy(UNCONDITIONAL, moved)
    window.files.ask_locate_model = lambda message: moved
    with qtbot.waitSignal(window.files.opened, timeout=20000):
        window.open_path(path)
    np.testing.assert_array_equal(window.document.image.rgb, saved_image.rgb)
    assert window.model.path == moved.resolve()


def test_named_directions_come_first_and_can_keep_the_others(window, qtbot, tmp_path, monkeypatch, G, library):
    model = tmp_path / "faces.pkl"
    shutil.copy(UNCONDITIONAL, model)
    rng = torch.Generator().manual_seed(3)
    named = [Direction(name, v / v.norm(), None, 0.5, "interfacegan+keep")  # W+ vectors, as house-gan ships
             for name, v in (("smile", torch.randn(G.num_ws, 64, generator=rng)),
                             ("glasses", torch.randn(G.num_ws, 64, generator=rng)))]
    save_directions(model.with_name("faces.directions.safetensors"), named)
    ready(qtbot, window, model, monkeypatch)
    panel = window.edit_panel
    assert list(panel.rows)[:3] == ["smile", "glasses", "ganspace:0"]
    assert panel.rows["smile"].title.full_text() == "Smile" and panel.keep_others.isEnabled()
    ws = sample(G, 0, 0.7).ws
    land(qtbot, window, lambda: panel.set_strength("smile", 2.0))
    shipped = DirectionLibrary(G, {d.name: d for d in named})
    np.testing.assert_array_equal(window.document.image.rgb, engine_render(G, ws, [shipped.get("smile").edit(2.0)]))
    land(qtbot, window, lambda: panel.keep_others.setChecked(True))
    kept = shipped.conditioned("smile", ["glasses"])
    np.testing.assert_array_equal(window.document.image.rgb, engine_render(G, ws, [kept.edit(2.0)]))
    window.act.undo.trigger()
    assert not panel.keep_others.isChecked() and panel.rows["smile"].strength() == 2.0


def test_an_image_tool_drops_the_latent_and_undo_brings_it_back(edited, qtbot):
    panel = edited.edit_panel
    land(qtbot, edited, lambda: panel.set_strength("ganspace:4", 1.0))
    assert edited.act.save.isEnabled() and edited.act.export_animation.isEnabled()
    edited.act.flip_horizontal.trigger()  # the picture is no longer a render of the latent
    assert edited.document.latent is None and not panel.controls.isEnabled()
    assert not edited.act.save.isEnabled() and "not a latent" in panel.status.text()
    with qtbot.waitSignal(edited.errorShown, timeout=5000) as blocker:
        edited.files.save()
    assert blocker.args[0] == "Cannot save" and "Export" in blocker.args[1]
    edited.last_error_box.close()
    edited.act.undo.trigger()
    assert panel.controls.isEnabled() and panel.rows["ganspace:4"].strength() == 1.0 and edited.act.save.isEnabled()
    assert [e.name for e in edited.document.latent.edits] == ["ganspace:4"]
