"""The Model menu and the Generate panel, driven like a user on the tiny shared StyleGAN fixtures."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt, QTimer, QUrl
from PySide6.QtGui import QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication

from engine.images import load_image
from engine.models.checkpoint import load_generator
from engine.ops.generate import sample
from gui.main_window import MainWindow
from gui.settings import Settings, open_settings
from tests.gui.helpers import grab_viewport, image_pixel_in_viewport
from tests.gui.test_app import run_main

CHECKPOINTS = Path(__file__).resolve().parents[2].parent / "shared" / "fixtures" / "stylegan" / "checkpoints"
UNCONDITIONAL = CHECKPOINTS / "network-snapshot-sg2ada-uncond-p4.pkl"
CONDITIONAL = CHECKPOINTS / "network-snapshot-sg2ada-cond-p4.pkl"
ROSINALITY = CHECKPOINTS / "rosinality-converted-format.pt"


def expected(path: Path, seed: int, psi: float = 0.7, class_index: int | None = None) -> np.ndarray:
    """The sample as the engine draws it, outside the GUI."""
    return sample(load_generator(path), seed, psi, None, class_index).image


def settle(qtbot, window: MainWindow) -> None:
    qtbot.waitUntil(lambda: not window.runner.busy, timeout=20000)


def open_model(qtbot, window: MainWindow, path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Model > Open Checkpoint… with the file dialog answered by ``path``; waits for the load and first render."""
    monkeypatch.setattr(window, "choose_checkpoint_path", lambda: path)
    with qtbot.waitSignal(window.model.loaded, timeout=20000):
        window.act.open_model.trigger()
    settle(qtbot, window)


def assert_canvas_shows(window: MainWindow, rgb: np.ndarray) -> None:
    """The document holds ``rgb`` and the canvas paints it (checked at a few pixel centres)."""
    np.testing.assert_array_equal(window.document.image.rgb, rgb)
    shown = grab_viewport(window)
    height, width = rgb.shape[:2]
    for y, x in ((0, 0), (5, 20), (16, 16), (height - 1, width - 3)):
        vx, vy = image_pixel_in_viewport(window, (x + 0.5) / width, (y + 0.5) / height)
        np.testing.assert_allclose(shown[vy, vx].astype(int), rgb[y, x].astype(int), atol=2)


def drag_and_drop(window: MainWindow, path: Path) -> bool:
    """Drag ``path`` over the canvas as a file manager does, and drop it if the window accepts it."""
    mime = QMimeData()  # kept alive here while the events use it
    mime.setUrls([QUrl.fromLocalFile(str(path))])
    buttons, modifiers = Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier
    enter = QDragEnterEvent(QPoint(50, 50), Qt.DropAction.CopyAction, mime, buttons, modifiers)
    QApplication.sendEvent(window.canvas.viewport(), enter)  # Qt delivers a drop only to who accepted this
    if not enter.isAccepted():
        return False
    drop = QDropEvent(QPointF(50, 50), Qt.DropAction.CopyAction, mime, buttons, modifiers)
    QApplication.sendEvent(window.canvas.viewport(), drop)
    return drop.isAccepted()


@pytest.fixture
def loaded(window, qtbot, monkeypatch) -> MainWindow:
    """The unconditional fixture opened through the Model menu, seed 0 drawn."""
    open_model(qtbot, window, UNCONDITIONAL, monkeypatch)
    return window


def test_open_checkpoint_through_the_model_menu(window, qtbot, monkeypatch, settings):
    progress = []
    window.runner.jobProgress.connect(lambda m: progress.append(m.message))
    panel = window.generate_panel
    assert not panel.controls.isEnabled() and panel.model_view.open_button.isVisibleTo(panel)
    open_model(qtbot, window, UNCONDITIONAL, monkeypatch)

    assert any(m.startswith("Reading network-snapshot-sg2ada-uncond-p4.pkl") for m in progress)
    assert progress[-1] == "Ready"
    info = {key: label.text() for key, label in panel.model_view.labels.items()}
    assert panel.model_view.labels["File"].full_text() == UNCONDITIONAL.name
    assert info["Family"] == "StyleGAN2" and info["Resolution"] == "32 × 32 px"
    assert info["Latent"] == "W+ 8 × 64, z 64" and info["Classes"] == "unconditional"
    count = sum(p.numel() for p in load_generator(UNCONDITIONAL).parameters())
    assert info["Parameters"] == f"{count / 1000:.1f} k" and info["Device"] == "cpu"
    assert panel.controls.isEnabled() and not panel.class_combo.isEnabled()
    # An empty canvas gets the first sample at once, as one undoable step.
    assert_canvas_shows(window, expected(UNCONDITIONAL, 0))
    assert window.document.undo_stack.text(0) == "Generate seed 0"
    assert window.document.path is None and window.windowTitle().startswith("Untitled")
    assert panel.current_ws.shape == (1, 8, 64)
    # Remembered for Open Recent Model, also by a later window.
    assert Settings(open_settings(window.settings.store.fileName())).recent_models() == [UNCONDITIONAL.resolve()]
    window.model_menu.recent_menu.aboutToShow.emit()
    texts = [a.text() for a in window.model_menu.recent_menu.actions()]
    assert texts[0] == f"&1  {UNCONDITIONAL.name}" and window.model_menu.recent_menu.actions()[0].isChecked()


def test_seed_change_rerenders(loaded, qtbot):
    panel = loaded.generate_panel
    with qtbot.waitSignal(panel.sampleChanged, timeout=20000):
        panel.seed_spin.setValue(7)
    assert_canvas_shows(loaded, expected(UNCONDITIONAL, 7))
    reference = sample(load_generator(UNCONDITIONAL), 7, 0.7)
    np.testing.assert_allclose(panel.current_ws.numpy(), reference.ws.numpy(), atol=1e-6)
    with qtbot.waitSignal(panel.sampleChanged, timeout=20000):
        panel.next_button.click()
    assert panel.seed == 8
    assert_canvas_shows(loaded, expected(UNCONDITIONAL, 8))
    # Browsing seeds is one step to undo, back to before the first sample.
    stack = loaded.document.undo_stack
    assert stack.count() == 1 and stack.text(0) == "Generate seed 8"
    loaded.act.undo.trigger()
    assert loaded.document.image is None


def test_psi_slider_rerenders(loaded, qtbot):
    panel = loaded.generate_panel
    before = loaded.document.image.rgb
    with qtbot.waitSignal(panel.sampleChanged, timeout=20000):
        panel.psi_slider.setValue(100)
    assert panel.psi == 1.0 and panel.psi_spin.text() == "1.00"
    assert_canvas_shows(loaded, expected(UNCONDITIONAL, 0, 1.0))
    assert not np.array_equal(loaded.document.image.rgb, before)
    with qtbot.waitSignal(panel.sampleChanged, timeout=20000):
        panel.psi_spin.setValue(0.0)  # ψ = 0 is the average image, whatever the seed
    assert panel.psi_slider.value() == 0
    np.testing.assert_array_equal(loaded.document.image.rgb, expected(UNCONDITIONAL, 123, 0.0))


def test_class_picker_only_for_a_conditional_model(loaded, qtbot, monkeypatch):
    panel = loaded.generate_panel
    assert not panel.class_combo.isEnabled() and panel.class_index is None
    open_model(qtbot, loaded, CONDITIONAL, monkeypatch)
    assert panel.class_combo.isEnabled() and panel.class_combo.count() == 4
    assert panel.model_view.labels["Classes"].text() == "4"
    class0 = expected(CONDITIONAL, 0, class_index=0)
    assert_canvas_shows(loaded, class0)  # the canvas showed a sample, so the new model draws one
    with qtbot.waitSignal(panel.sampleChanged, timeout=20000):
        panel.class_combo.setCurrentIndex(2)
    assert_canvas_shows(loaded, expected(CONDITIONAL, 0, class_index=2))
    assert not np.array_equal(loaded.document.image.rgb, class0)
    open_model(qtbot, loaded, ROSINALITY, monkeypatch)
    assert not panel.class_combo.isEnabled() and panel.model_view.labels["Family"].text() == "StyleGAN2 (rosinality)"


@pytest.mark.parametrize("kind", ["truncated", "text"])
def test_bad_checkpoint_shows_error_and_keeps_the_model(loaded, qtbot, tmp_path, kind):
    bad = tmp_path / "broken.pkl"
    if kind == "truncated":
        data = UNCONDITIONAL.read_bytes()
        bad.write_bytes(data[: len(data) // 2])
    else:
        bad.write_text("these are not the weights you are looking for\n")
    G, info, image = loaded.model.generator, loaded.model.info, loaded.document.image
    with qtbot.waitSignal(loaded.errorShown, timeout=20000) as blocker:
        loaded.model.load(bad)
    title, message = blocker.args
    assert title == "Load model broken.pkl failed"
    assert "broken.pkl" in message and ("corrupt" in message or "not a model file" in message)
    assert loaded.last_error_box is not None and loaded.last_error_box.isVisible()
    settle(qtbot, loaded)
    assert loaded.model.generator is G and loaded.model.info is info and loaded.document.image is image
    assert loaded.generate_panel.model_view.labels["File"].full_text() == UNCONDITIONAL.name
    assert loaded.isVisible() and not loaded.model.loading
    assert loaded.generate_panel.status.text().startswith("Seed 0 ·")  # not "Loading model…" any more
    with qtbot.waitSignal(loaded.generate_panel.sampleChanged, timeout=20000):
        loaded.generate_panel.set_seed(3)  # the kept model still draws
    np.testing.assert_array_equal(loaded.document.image.rgb, expected(UNCONDITIONAL, 3))
    loaded.last_error_box.close()


def test_a_device_chosen_later_moves_the_loaded_model(loaded, qtbot):
    # "meta" is a real torch device without storage: it exercises the move without a GPU.
    G, image = loaded.model.generator, loaded.document.image
    with qtbot.waitSignal(loaded.model.modelChanged, timeout=20000) as blocker:
        loaded.model.set_device("meta")
    assert blocker.args[0].device == "meta" and next(G.parameters()).device.type == "meta"
    assert loaded.model.generator is G and loaded.generate_panel.model_view.labels["Device"].text() == "meta"
    settle(qtbot, loaded)
    assert loaded.document.image is image  # the same network on another device: nothing redrawn
    assert loaded.model.set_device("meta") is None  # already there: no job


def test_drop_a_checkpoint_loads_it_and_an_image_still_opens(window, qtbot, write_image, tmp_path):
    with qtbot.waitSignal(window.model.loaded, timeout=20000) as blocker:
        assert drag_and_drop(window, CONDITIONAL)
    assert blocker.args == [CONDITIONAL.resolve()]
    settle(qtbot, window)
    assert window.model.info.c_dim == 4
    np.testing.assert_array_equal(window.document.image.rgb, expected(CONDITIONAL, 0, class_index=0))
    with qtbot.waitSignal(window.imageOpened, timeout=20000):
        assert drag_and_drop(window, write_image("photo.png"))
    assert window.document.image.rgb.shape == (48, 64, 3) and window.model.info.c_dim == 4
    notes = tmp_path / "weights.txt"
    notes.write_text("not a checkpoint")
    assert not drag_and_drop(window, notes)


def test_a_loaded_model_waits_for_generate_over_an_opened_photo(window, qtbot, write_image, monkeypatch):
    photo = write_image("photo.png")
    with qtbot.waitSignal(window.imageOpened, timeout=20000):
        window.open_path(photo)
    opened = window.document.image
    open_model(qtbot, window, UNCONDITIONAL, monkeypatch)
    assert window.document.image is opened and "Press Generate" in window.generate_panel.status.text()
    with qtbot.waitSignal(window.generate_panel.sampleChanged, timeout=20000):
        window.generate_panel.generate_button.click()
    np.testing.assert_array_equal(window.document.image.rgb, expected(UNCONDITIONAL, 0))
    assert window.document.before is opened and window.document.path == photo  # an edit of the open document
    window.act.undo.trigger()
    assert window.document.image is opened


def test_rapid_seed_changes_end_with_the_last_seed(loaded, qtbot):
    panel = loaded.generate_panel
    renders, landed = [], []
    loaded.runner.jobStarted.connect(lambda m: renders.append(m.title))
    panel.sampleChanged.connect(lambda drawn: landed.append(drawn.seed))
    ticks = []
    timer = QTimer()
    timer.timeout.connect(lambda: ticks.append(time.monotonic()))
    timer.start(10)
    start = time.monotonic()
    for seed in range(100, 120):
        panel.set_seed(seed)
    typed_in = time.monotonic() - start
    qtbot.waitUntil(lambda: not loaded.runner.busy and panel.current_sample.seed == 119, timeout=20000)
    timer.stop()
    assert typed_in < 0.5, f"changing the seed blocked the GUI thread for {typed_in:.2f} s"
    stall = np.diff([start + typed_in, *ticks, time.monotonic()]).max()
    assert stall < 0.5, f"the event loop stalled for {stall:.2f} s while the renders ran"
    # One render was running when the changes came; only the newest request ran after it.
    assert 1 <= len(renders) <= 3 and renders[-1] == "Generate seed 119", renders
    assert landed == [119]  # the render that was overtaken never reached the document
    assert_canvas_shows(loaded, expected(UNCONDITIONAL, 119))
    assert loaded.document.undo_stack.count() == 1


def test_catalogue_models_load_by_id(window, qtbot, tmp_path, monkeypatch):
    models = tmp_path / "models"
    models.mkdir()
    shutil.copy(CONDITIONAL, models / "tiny-conditional.pkl")
    (models / "tiny-conditional.md").write_text("---\ntitle: Tiny conditional\nkind: generator\n---\n")
    (models / "tiny-upscaler.pt").write_bytes(b"")
    (models / "tiny-upscaler.md").write_text("---\nkind: upscaler\n---\n")
    monkeypatch.setenv("GANVAS_MODELS_DIR", str(models))
    window.model_menu.menu.aboutToShow.emit()
    entries = {a.text(): a for a in window.model_menu.catalogue_actions}
    assert list(entries) == ["house-gan", "tiny-conditional"]  # the shipped generator, then the user's
    assert "Tiny conditional" in entries["tiny-conditional"].toolTip()
    with qtbot.waitSignal(window.model.loaded, timeout=20000):
        entries["tiny-conditional"].trigger()
    settle(qtbot, window)
    assert window.model.path == (models / "tiny-conditional.pkl").resolve() and window.model.info.c_dim == 4
    window.model_menu.menu.aboutToShow.emit()
    checked = [a.text() for a in window.model_menu.catalogue_actions if a.isChecked()]
    assert checked == ["tiny-conditional"]


def test_command_line_model_and_screenshot(tmp_path):
    shot = tmp_path / "window.png"
    done = run_main(["--screenshot", str(shot), "--model", str(UNCONDITIONAL), "--device", "cpu"], tmp_path)
    assert done.returncode == 0, done.stderr
    pixels = load_image(shot).rgb.reshape(-1, 3)
    # The first sample fills the canvas, upscaled: most of the window is made of its colours.
    colours = {tuple(c) for c in expected(UNCONDITIONAL, 0).reshape(-1, 3)}
    on_sample = np.fromiter((tuple(p) in colours for p in pixels[::7]), bool)
    assert on_sample.mean() > 0.3, on_sample.mean()
    missing = run_main(["--screenshot", str(shot), "--model", "no-such-model"], tmp_path)
    assert missing.returncode == 1 and "unknown model id" in missing.stderr


def test_the_app_opens_on_the_house_generator(tmp_path):
    from engine.models.catalog import resolve

    house = resolve("house-gan")
    shot = tmp_path / "window.png"
    done = run_main(["--screenshot", str(shot), "--device", "cpu"], tmp_path)
    assert done.returncode == 0, done.stderr
    pixels = load_image(shot).rgb.reshape(-1, 3)
    colours = {tuple(c) for c in expected(house, 0).reshape(-1, 3)}
    on_sample = np.fromiter((tuple(p) in colours for p in pixels[::7]), bool)
    assert on_sample.mean() > 0.3, on_sample.mean()
