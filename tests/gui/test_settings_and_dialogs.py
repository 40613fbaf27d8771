"""Settings storage, pixel conversion and the resize dialog."""

from __future__ import annotations

import numpy as np

from engine.images import Image
from gui.convert import preview_pixels, qimage_to_array, to_qimage
from gui.dialogs import ResizeDialog
from gui.settings import MAX_RECENT, Settings, open_settings
from tests.conftest import gradient_rgb


def test_recent_files_most_recent_first_without_duplicates(tmp_path):
    settings = Settings(open_settings(tmp_path / "s.ini"))
    paths = [tmp_path / f"p{i}.png" for i in range(MAX_RECENT + 3)]
    for path in paths:
        settings.add_recent(path)
    settings.add_recent(paths[-5])
    again = Settings(open_settings(tmp_path / "s.ini")).recent_files()
    assert len(again) == MAX_RECENT
    assert again[0] == paths[-5].resolve() and again.count(paths[-5].resolve()) == 1
    assert again[1] == paths[-1].resolve()


def test_one_recent_file_and_bad_values_read_back(tmp_path):
    store = open_settings(tmp_path / "s.ini")
    settings = Settings(store)
    settings.add_recent(tmp_path / "only.png")
    assert Settings(open_settings(tmp_path / "s.ini")).recent_files() == [(tmp_path / "only.png").resolve()]
    store.setValue("files/jpeg_quality", "loud")
    store.setValue("files/max_pixels", -3)
    assert settings.jpeg_quality() == 92 and settings.max_pixels() == 100_000_000


def test_environment_variable_redirects_the_default_store(tmp_path, monkeypatch):
    monkeypatch.setenv("GANVAS_SETTINGS", str(tmp_path / "elsewhere.ini"))
    Settings().set_jpeg_quality(55)
    assert Settings(open_settings(tmp_path / "elsewhere.ini")).jpeg_quality() == 55


def test_qimage_round_trip_keeps_pixels(qapp):
    rgb = gradient_rgb(37, 53)  # odd width: rows are padded inside QImage
    np.testing.assert_array_equal(qimage_to_array(to_qimage(rgb)), rgb)
    wide = rgb.astype(np.uint16) * 257
    np.testing.assert_array_equal(qimage_to_array(to_qimage(wide)), rgb)
    alpha = np.full(rgb.shape[:2], 255, np.uint8)
    np.testing.assert_array_equal(qimage_to_array(to_qimage(rgb, alpha)), rgb)


def test_preview_pixels_accepts_images_and_refuses_the_rest():
    grey = np.linspace(0, 1, 12, dtype=np.float32).reshape(3, 4)
    out = preview_pixels(grey)
    assert out.shape == (3, 4, 3) and out.dtype == np.uint8 and out[2, 3, 0] == 255
    rgb = gradient_rgb(4, 5)
    copy = preview_pixels(Image(rgb))
    np.testing.assert_array_equal(copy, rgb)
    assert copy is not rgb and not np.shares_memory(copy, rgb)
    for junk in (7, "text", np.zeros((2, 2, 4)), np.zeros((0, 3, 3)), np.zeros((2, 2), bool)):
        assert preview_pixels(junk) is None


def test_resize_dialog_keeps_ratio_and_offers_square_presets(qtbot):
    dialog = ResizeDialog(800, 600)
    qtbot.addWidget(dialog)
    dialog.width_box.setValue(400)
    assert dialog.size_chosen() == (400, 300)
    dialog.height_box.setValue(150)
    assert dialog.size_chosen() == (200, 150)
    dialog.presets.setCurrentIndex(dialog.presets.findData(512))
    assert dialog.size_chosen() == (512, 512) and not dialog.keep_ratio.isChecked()
    dialog.width_box.setValue(300)
    assert dialog.size_chosen() == (300, 512)
