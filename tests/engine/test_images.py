import io
import os

import cv2
import numpy as np
import pytest
from PIL import Image as PILImage

from engine.errors import ImageError
from engine.images import Image, load_image, save_image, to_uint8


def photo(h=24, w=32):
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([x * 255 // (w - 1), y * 255 // (h - 1), (x + y) % 256], axis=2).astype(np.uint8)


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".webp", ".tiff", ".bmp"])
def test_reads_every_format_as_rgb(tmp_path, suffix):
    pixels = photo()
    path = tmp_path / f"a{suffix}"
    PILImage.fromarray(pixels).save(path, quality=98) if suffix in (".jpg", ".webp") else PILImage.fromarray(pixels).save(path)
    image = load_image(path)
    assert image.rgb.shape == (24, 32, 3) and image.rgb.dtype == np.uint8
    assert image.source == path
    tolerance = 12 if suffix in (".jpg", ".webp") else 0
    assert np.abs(image.rgb.astype(int) - pixels).mean() <= tolerance


def test_exif_orientation_is_honoured(tmp_path):
    pixels = photo(10, 20)
    exif = PILImage.Exif()
    exif[0x0112] = 6  # stored sideways: display rotated 90 degrees clockwise
    path = tmp_path / "rotated.jpg"
    PILImage.fromarray(pixels).save(path, exif=exif, quality=100)
    image = load_image(path)
    assert image.rgb.shape == (20, 10, 3)
    assert np.abs(image.rgb.astype(int) - np.rot90(pixels, -1)).mean() < 6


@pytest.mark.parametrize("mode", ["L", "P", "CMYK", "LA", "RGBA"])
def test_converts_modes_to_rgb_and_keeps_alpha(tmp_path, mode):
    source = PILImage.fromarray(photo()).convert(mode)
    path = tmp_path / ("a.tiff" if mode == "CMYK" else "a.png")
    source.save(path)
    image = load_image(path)
    assert image.rgb.shape == (24, 32, 3) and image.rgb.dtype == np.uint8
    assert (image.alpha is not None) == (mode in ("LA", "RGBA"))


def test_sixteen_bit_png_stays_sixteen_bit_and_round_trips(tmp_path):
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 65536, size=(8, 9, 3), dtype=np.uint16)
    alpha = rng.integers(0, 65536, size=(8, 9), dtype=np.uint16)
    path = save_image(tmp_path / "deep.png", rgb, alpha=alpha)
    image = load_image(path)
    assert image.bit_depth == 16
    np.testing.assert_array_equal(image.rgb, rgb)
    np.testing.assert_array_equal(image.alpha, alpha)


def test_sixteen_bit_grey(tmp_path):
    grey = (np.arange(64, dtype=np.uint16) * 1000).reshape(8, 8)
    path = tmp_path / "grey16.png"
    cv2.imwrite(str(path), grey)
    image = load_image(path)
    assert image.bit_depth == 16 and image.rgb.shape == (8, 8, 3)
    np.testing.assert_array_equal(image.rgb[..., 1], grey)


def test_pixel_limit_is_checked_before_decoding(tmp_path):
    path = tmp_path / "big.png"
    PILImage.new("RGB", (300, 200)).save(path)
    with pytest.raises(ImageError, match=r"above the limit.*60,000 pixels"):
        load_image(path, max_pixels=50_000)
    assert load_image(path, max_pixels=60_000).width == 300


def test_bad_files_raise_image_error_naming_the_file(tmp_path):
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    text = tmp_path / "notes.png"
    text.write_text("this is not an image")
    buffer = io.BytesIO()
    PILImage.fromarray(photo(64, 64)).save(buffer, format="JPEG")
    truncated = tmp_path / "cut.jpg"
    truncated.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    for path, reason in [
        (empty, "empty"),
        (text, "not an image"),
        (truncated, "corrupt or truncated"),
        (tmp_path / "missing.png", "no such file"),
    ]:
        with pytest.raises(ImageError, match=reason) as info:
            load_image(path)
        assert str(path) in str(info.value)


def test_save_png_and_jpeg_quality(tmp_path):
    rng = np.random.default_rng(1)
    pixels = rng.integers(0, 256, size=(40, 40, 3), dtype=np.uint8)
    png = save_image(tmp_path / "a.png", pixels)
    np.testing.assert_array_equal(load_image(png).rgb, pixels)
    low = save_image(tmp_path / "low.jpg", pixels, quality=10)
    high = save_image(tmp_path / "high.jpg", pixels, quality=95)
    assert low.stat().st_size < high.stat().st_size
    float_path = save_image(tmp_path / "f.png", pixels.astype(np.float32) / 255)
    np.testing.assert_array_equal(load_image(float_path).rgb, pixels)


def test_save_rejects_bad_input_and_leaves_nothing(tmp_path):
    with pytest.raises(ImageError, match="can only save"):
        save_image(tmp_path / "a.gif", photo())
    with pytest.raises(ImageError, match=r"Got: \(4, 4\)"):
        save_image(tmp_path / "a.png", np.zeros((4, 4), np.uint8))
    with pytest.raises(ImageError, match="cannot write"):
        save_image(tmp_path / "no-such-dir" / "a.png", photo())
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_full_disk_keeps_the_existing_file(tmp_path, monkeypatch):
    target = save_image(tmp_path / "keep.png", photo())
    before = target.read_bytes()
    real_fdopen = os.fdopen

    def fdopen_on_full_disk(fd, *args, **kwargs):
        os.dup2(os.open("/dev/full", os.O_WRONLY), fd)  # every write now fails with ENOSPC
        return real_fdopen(fd, *args, **kwargs)

    monkeypatch.setattr(os, "fdopen", fdopen_on_full_disk)
    with pytest.raises(ImageError, match="could not be written"):
        save_image(target, photo() // 2)
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.png"]


def test_to_uint8_conversions():
    assert to_uint8(np.array([0, 65535], np.uint16)).tolist() == [0, 255]
    assert to_uint8(np.array([-1.0, 0.5, 2.0], np.float32)).tolist() == [0, 128, 255]
    image = Image(np.full((2, 2, 3), 65535, np.uint16))
    assert image.to_float().max() == 1.0 and image.to_uint8().max() == 255
