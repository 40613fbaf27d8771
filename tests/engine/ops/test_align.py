import math

import numpy as np
import pytest

from engine.errors import GanvasError, ImageError
from engine.ops.align import Landmarks, align_face, feather_mask, ffhq_quad, unalign
from tests.conftest import gradient_rgb

# An upright face: eyes 40 px apart at y = 200, mouth 50 px below them.
UPRIGHT = Landmarks(eye_left=(130, 200), eye_right=(170, 200), mouth_left=(135, 250), mouth_right=(165, 250))
PHOTO_HW = (400, 360)


def _rotate(lm: Landmarks, degrees: float, centre=(150.0, 225.0)) -> Landmarks:
    a = math.radians(degrees)
    rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]])
    pts = (lm.array() - centre) @ rot.T + centre
    return Landmarks(*map(tuple, pts))


def test_quad_follows_the_ffhq_formula_for_an_upright_face():
    quad = ffhq_quad(UPRIGHT)
    # eye_to_eye 40, eye_to_mouth 50: half-side max(40 * 2, 50 * 1.8) = 90; centre = eye_avg + 0.1 * (0, 50)
    centre = np.array([150.0, 205.0])
    np.testing.assert_allclose(quad, centre + np.array([[-90, -90], [-90, 90], [90, 90], [90, -90]]), atol=1e-9)


def test_quad_turns_with_the_face():
    quad = ffhq_quad(_rotate(UPRIGHT, 30))
    top_edge = quad[3] - quad[0]
    assert math.degrees(math.atan2(top_edge[1], top_edge[0])) == pytest.approx(30, abs=1e-6)
    assert np.hypot(*top_edge) == pytest.approx(180, abs=1e-6)


def test_crop_puts_the_landmarks_where_ffhq_puts_them():
    photo = gradient_rgb(*PHOTO_HW)
    for degrees in (0, 25):
        lm = _rotate(UPRIGHT, degrees)
        crop, al = align_face(photo, lm, size=90)
        assert crop.shape == (90, 90, 3) and crop.dtype == np.uint8
        eyes = (np.c_[lm.array()[:2], np.ones(2)] @ al.matrix.T)
        # in the crop the eyes are level, 40/180 of the side apart, centred, 0.1 * 50/180 above the middle
        np.testing.assert_allclose(eyes[:, 1], eyes[0, 1], atol=1e-4)
        assert eyes[1, 0] - eyes[0, 0] == pytest.approx(90 * 40 / 180, abs=1e-4)
        assert eyes.mean(axis=0)[0] == pytest.approx(44.5, abs=1e-4)
        assert eyes.mean(axis=0)[1] == pytest.approx(44.5 - 90 * 5 / 180, abs=1e-4)
        # the pixel there is the photo's pixel at the eye (within interpolation of a ramp)
        x, y = lm.eye_left
        cx, cy = eyes[0]
        assert np.abs(crop[int(round(cy)), int(round(cx))].astype(int) - photo[int(round(y)), int(round(x))]).max() <= 24


def test_align_unalign_round_trip():
    photo = gradient_rgb(*PHOTO_HW)
    lm = _rotate(UPRIGHT, 15)
    crop, al = align_face(photo, lm, size=180)  # about the face's own scale: little resampling loss
    back = unalign(photo, crop, al, feather=0.1)
    inner = np.zeros(photo.shape[:2], bool)
    inner[170:240, 120:180] = True  # well inside the square, where the feathered weight is 1
    diff = np.abs(back.astype(int) - photo.astype(int))
    assert diff[inner].mean() < 6  # two bilinear resamplings of a noisy ramp
    assert np.array_equal(back[:5], photo[:5]) and np.array_equal(back[:, -5:], photo[:, -5:])  # outside: untouched
    # a changed crop shows up inside, faded at the edges
    edited = unalign(photo, np.zeros_like(crop), al)
    assert edited[205, 150].max() == 0 and edited[0, 0].tolist() == photo[0, 0].tolist()
    # a crop of another size (the model's resolution) pastes back the same way
    small = unalign(photo, crop[::2, ::2].copy(), al)
    assert np.abs(small.astype(int) - photo.astype(int))[inner].mean() < 12


def test_large_photos_are_shrunk_before_warping():
    # A one-pixel checkerboard averages to grey; plain bilinear sampling of it would alias to stripes.
    photo = np.zeros((1000, 1000, 3), np.uint8)
    photo[::2, ::2] = photo[1::2, 1::2] = 255
    lm = Landmarks((300, 400), (700, 400), (350, 650), (650, 650))
    crop, _ = align_face(photo, lm, size=64)
    assert abs(float(crop.mean()) - 127.5) < 4 and crop.std() < 8


def test_feather_mask():
    m = feather_mask(40, 0.25)
    assert m.shape == (40, 40) and m[20, 20] == 1 and m[0, 0] < 0.01 and m[20, 0] < 0.1
    assert np.all(np.diff(m[20, :20]) >= 0)
    assert feather_mask(8, 0).min() == 1


def test_bad_inputs():
    with pytest.raises(GanvasError, match="degenerate"):
        ffhq_quad(Landmarks((10, 10), (10, 10), (10, 10), (10, 10)))
    with pytest.raises(GanvasError, match="finite"):
        ffhq_quad(Landmarks((float("nan"), 10), (20, 10), (12, 20), (18, 20)))
    with pytest.raises(ImageError, match="\\(H, W, 3\\)"):
        align_face(np.zeros((10, 10)), UPRIGHT)
    photo = gradient_rgb(*PHOTO_HW)
    crop, al = align_face(photo, UPRIGHT, size=32)
    with pytest.raises(GanvasError, match="the photo must be the one aligned"):
        unalign(photo[:100], crop, al)
    with pytest.raises(GanvasError, match="square"):
        unalign(photo, crop[:, :20], al)
    with pytest.raises(GanvasError, match="feather"):
        feather_mask(10, 0.8)
