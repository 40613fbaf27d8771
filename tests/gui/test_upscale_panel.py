"""The Upscale panel, driven like a user on tiny random-weight spandrel models saved in tmp_path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PySide6.QtWidgets import QMessageBox
from safetensors.torch import save_file
from spandrel.architectures.Compact import Compact

from engine.images import load_image, save_image
from engine.models.superres import load_sr_model, save_sr_model
from engine.ops.transform import resize
from engine.ops.upscale import UpscaleOptions, upscale_image
from gui.main_window import MainWindow
from gui.upscale_picker import OPEN_ITEM
from tests.conftest import gradient_rgb
from tests.gui.helpers import open_via_menu

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def compact_file(folder: Path, suffix: str = ".pth", scale: int = 4, feat: int = 8) -> Path:
    """A random Compact (SRVGGNetCompact) net as Real-ESRGAN ships them: a state dict in .pth or .safetensors."""
    torch.manual_seed(0)
    net = Compact(num_in_ch=3, num_out_ch=3, num_feat=feat, num_conv=2, upscale=scale)
    state = {k: v.contiguous() for k, v in net.state_dict().items()}
    path = folder / f"compact-x{scale}{suffix}"
    if suffix == ".pth":
        torch.save({"params": state}, path)
    else:
        save_file(state, str(path))
    return path


def settle(qtbot, window: MainWindow) -> None:
    qtbot.waitUntil(lambda: not window.runner.busy, timeout=20000)


def open_model_file(qtbot, window: MainWindow, path: Path, monkeypatch) -> None:
    """The picker's "Open model file…" with the dialog answered by ``path``; waits for the load."""
    panel = window.upscale_panel
    monkeypatch.setattr(panel.picker, "choose_model_path", lambda: path)
    index = panel.picker.combo.findData(OPEN_ITEM)
    panel.picker.combo.setCurrentIndex(index)
    panel.picker.combo.activated.emit(index)
    settle(qtbot, window)


@pytest.fixture
def ready(window, qtbot, monkeypatch, tmp_path, write_image) -> MainWindow:
    """A 96 x 80 photo opened and a x4 Compact .pth loaded through the picker."""
    open_via_menu(qtbot, window, write_image("photo.png", gradient_rgb(80, 96)), monkeypatch)
    open_model_file(qtbot, window, compact_file(tmp_path), monkeypatch)
    return window


def test_upscale_lands_as_one_undoable_step_with_an_equal_size_compare(ready, qtbot, tmp_path, settings):
    window, panel = ready, ready.upscale_panel
    original, stack = window.document.image, window.document.undo_stack
    info = panel.loaded.info
    assert (info.architecture, info.scale, info.fp16) == ("RealESRGAN Compact", 4, True)
    assert panel.picker.labels["Scale"].text() == "×4" and "fp16" in panel.picker.labels["Precision"].text()
    assert panel.picker.combo.currentText() == "compact-x4.pth"
    assert settings.recent_sr_models() == [(tmp_path / "compact-x4.pth").resolve()]
    assert panel.scale_spin.text() == "Model (×4)" and panel.size_label.text() == "96 × 80 → 384 × 320 px"
    steps = []
    window.runner.jobProgress.connect(lambda m: steps.append((m.step, m.total)))
    panel.tile_spin.setValue(64)  # several tiles, so progress comes per tile
    with qtbot.waitSignal(panel.upscaled, timeout=20000):
        panel.upscale_button.click()
    settle(qtbot, window)
    image = window.document.image
    assert (image.width, image.height) == (384, 320) and stack.count() == 1
    expected = upscale_image(load_sr_model(tmp_path / "compact-x4.pth"), original, UpscaleOptions(tile=64))
    np.testing.assert_array_equal(image.rgb, expected.image.rgb)
    total = steps[-1][1]
    assert total == expected.tiles > 1 and steps[-1][0] == total
    # The compare: the input resized plainly to the same size, on the left of the divider.
    assert window.canvas.compare and window.document.before.rgb.shape == image.rgb.shape
    np.testing.assert_array_equal(window.document.before.rgb, resize(original, 384, 320).rgb)
    assert panel.result_labels["Output"].text() == "96 × 80 → 384 × 320 px"
    assert panel.result_labels["Tiles"].text() == f"{total} tiles of 64 px"
    assert panel.result_labels["Device"].text() == "cpu · fp32" and panel.result_labels["Fallbacks"].text() == "none"
    window.act.undo.trigger()
    assert window.document.image is original and window.document.before is None
    window.act.redo.trigger()
    assert window.document.image is image
    # Any scale: x2 with the x4 model, from the input's own size.
    window.act.undo.trigger()
    panel.set_scale(2.0)
    assert panel.size_label.text() == "96 × 80 → 192 × 160 px"
    with qtbot.waitSignal(panel.upscaled, timeout=20000):
        panel.upscale_button.click()
    assert window.document.image.rgb.shape == (160, 192, 3) and stack.text(stack.index() - 1).startswith("Upscale ×2")


def test_cancel_leaves_the_document_unchanged(window, qtbot, monkeypatch, tmp_path, write_image):
    open_via_menu(qtbot, window, write_image("big.png", gradient_rgb(256, 256)), monkeypatch)
    open_model_file(qtbot, window, compact_file(tmp_path, ".safetensors", feat=16), monkeypatch)
    panel, original = window.upscale_panel, window.document.image
    panel.tile_spin.setValue(64)
    panel.tta_check.setChecked(True)  # 8 passes a tile: far more work than one progress message takes
    progress = []
    window.runner.jobProgress.connect(lambda m: progress.append(m))
    with qtbot.waitSignal(window.runner.jobProgress, timeout=20000):
        panel.upscale_button.click()
    assert not panel.cancel_button.isHidden() and panel.busy
    with qtbot.waitSignal(window.runner.jobCancelled, timeout=20000):
        panel.cancel_button.click()
    settle(qtbot, window)
    assert window.document.image is original and window.document.undo_stack.count() == 0
    assert progress[-1].step < progress[-1].total
    assert not panel.busy and panel.cancel_button.isHidden() and panel.upscale_button.isEnabled()
    assert panel.status.text() == "Cancelled; the image is as it was."


def test_bad_model_files_show_an_error_and_keep_the_model(ready, qtbot, monkeypatch, tmp_path):
    window, panel = ready, ready.upscale_panel
    good = panel.loaded
    broken = tmp_path / "broken.pth"
    broken.write_bytes(b"PK\x03\x04 this is not a torch archive")
    generator = Path(__file__).resolve().parents[2] / "resources" / "models" / "house-gan.safetensors"
    errors = []
    window.errorShown.connect(lambda title, message: errors.append((title, message)))
    for path, words in ((broken, "not a PyTorch file"), (generator, "not a super-resolution model")):
        errors.clear()
        open_model_file(qtbot, window, path, monkeypatch)
        assert len(errors) == 1 and errors[0][0] == f"Load upscaler {path.name} failed", errors
        assert words in errors[0][1] and str(path) in errors[0][1]
        assert window.last_error_box is not None and window.last_error_box.isVisible()
        assert panel.loaded is good and panel.picker.combo.currentText() == "compact-x4.pth"
        assert "Could not load" in panel.status.text()
        window.last_error_box.close()
    # The app is still up and the kept model still works.
    with qtbot.waitSignal(panel.upscaled, timeout=20000):
        panel.upscale_button.click()
    assert window.document.image.width == 384


def test_batch_writes_every_good_image_and_reports_the_bad_one(ready, qtbot, monkeypatch, tmp_path):
    window, panel = ready, ready.upscale_panel
    source, target = tmp_path / "in", tmp_path / "out"
    source.mkdir()
    save_image(source / "a.png", gradient_rgb(24, 20, seed=1))
    save_image(source / "b.jpg", gradient_rgb(16, 16, seed=2))
    (source / "c.png").write_bytes(b"\x89PNG\r\n\x1a\n but then nothing an image holds")
    (source / "notes.txt").write_text("not an image: ignored")
    monkeypatch.setattr(panel, "choose_batch_folders", lambda: (source, target))
    messages = []
    window.runner.jobProgress.connect(lambda m: messages.append(m.message))
    file_menu = window.menuBar().actions()[0].menu()
    assert panel.batch_action in file_menu.actions()
    with qtbot.waitSignal(panel.batchFinished, timeout=30000) as finished:
        panel.batch_action.trigger()
    report = finished.args[0]
    assert sorted(p.name for p in target.iterdir()) == ["a.png", "b.jpg"]
    assert load_image(target / "a.png").rgb.shape == (96, 80, 3) and load_image(target / "b.jpg").width == 64
    assert [p.name for p, _ in report.skipped] == ["c.png"] and report.total == 3
    assert any(m.startswith("a.png (1/3)") for m in messages)
    assert "c.png" in panel.skipped_label.text() and not panel.skipped_label.isHidden()
    assert panel.status.text() == f"Wrote 2 of 3 images to {target}."
    box = panel.report_box
    assert isinstance(box, QMessageBox) and box.isVisible() and "c.png" in box.detailedText()
    box.close()
    assert window.document.undo_stack.count() == 0  # a batch never touches the document
    # The output folder must not be the input folder: the originals would be replaced.
    errors = []
    window.errorShown.connect(lambda title, message: errors.append(message))
    assert not panel.batch(source, source) and "other than the input folder" in errors[0]


def test_catalogue_sr_models_are_listed_and_load_by_id(window, qtbot, monkeypatch, tmp_path, settings):
    folder = tmp_path / "models"
    folder.mkdir()
    monkeypatch.setenv("GANVAS_MODELS_DIR", str(folder))
    torch.manual_seed(0)
    x2 = Compact(num_in_ch=3, num_out_ch=3, num_feat=8, num_conv=2, upscale=2)
    save_sr_model(x2, folder / "my-sr-x2.safetensors")
    compact_file(folder, ".pth").rename(folder / "carded.pth")  # a card names its kind
    (folder / "carded.md").write_text("---\ntitle: Carded x4\nkind: super-resolution\n---\n")
    (folder / "other.safetensors").write_bytes(b"not even a header")  # listed nowhere, breaks nothing
    picker = window.upscale_panel.picker
    picker.refresh()
    items = [picker.combo.itemText(i) for i in range(picker.combo.count())]
    shipped = "house-sr-x4 — House x4 super-resolution (Compact, photos)"
    assert items[:3] == [shipped, "carded — Carded x4", "my-sr-x2"] and items[-1] == "Open model file…"
    assert not any("house-gan" in item for item in items)  # a generator is not an upscaler
    picker.combo.setCurrentIndex(2)
    picker.combo.activated.emit(2)
    qtbot.waitUntil(lambda: picker.loaded is not None and not window.runner.busy, timeout=20000)
    assert picker.loaded.info.spec == "my-sr-x2" and picker.loaded.info.scale == 2
    assert settings.recent_sr_models() == []  # catalogue models are not "recent files"
