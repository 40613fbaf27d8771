import numpy as np
import pytest

from engine.errors import ImageError
from engine.images import Image
from engine.ops.transform import crop, flip, resize, rotate90, square_box


def sample():
    rgb = np.arange(4 * 6 * 3, dtype=np.uint8).reshape(4, 6, 3)
    return Image(rgb, rgb[..., 0].copy())


def test_crop_rotate_flip_are_exact():
    image = sample()
    np.testing.assert_array_equal(crop(image, 1, 2, 3, 2).rgb, image.rgb[2:4, 1:4])
    np.testing.assert_array_equal(rotate90(image).rgb, np.rot90(image.rgb, -1))
    np.testing.assert_array_equal(rotate90(image, clockwise=False).alpha, np.rot90(image.alpha, 1))
    np.testing.assert_array_equal(flip(image).rgb, image.rgb[:, ::-1])
    np.testing.assert_array_equal(flip(image, horizontal=False).rgb, image.rgb[::-1])
    assert rotate90(rotate90(rotate90(rotate90(image)))).rgb.tobytes() == image.rgb.tobytes()


def test_crop_outside_is_refused():
    with pytest.raises(ImageError, match="inside the 6 x 4 image"):
        crop(sample(), 4, 0, 3, 2)
    with pytest.raises(ImageError, match="positive"):
        crop(sample(), 0, 0, 0, 2)


def test_resize_keeps_dtype_and_alpha():
    image = Image(np.full((10, 20, 3), 1000, np.uint16), np.full((10, 20), 7, np.uint16))
    small = resize(image, 5, 3)
    assert small.rgb.shape == (3, 5, 3) and small.rgb.dtype == np.uint16
    assert small.alpha.shape == (3, 5) and (small.rgb == 1000).all()
    with pytest.raises(ImageError, match="Got: 0 x 3"):
        resize(image, 0, 3)


def test_square_box_is_centred():
    assert square_box(10, 20, 100, 40) == (40, 20, 40, 40)
