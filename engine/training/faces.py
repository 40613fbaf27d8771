"""Parametric cartoon faces: a dependency-free renderer with known continuous labels.

Each face is drawn with OpenCV primitives (a face ellipse, hair cap, eyes, a mouth
whose curvature is a signed "smile", optional glasses) from a handful of parameters
sampled from a seeded generator. It stands in for the DiceBear data set wherever a
test or a quick experiment needs labelled faces in milliseconds and without extra
packages; the labels are the exact parameters, so edit directions fitted on them
can be checked against ground truth.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import cv2
import numpy as np

from engine.errors import GanvasError, check

# Drawing at 4x and averaging down gives smooth, anti-aliased edges at 64 px.
SUPERSAMPLE = 4

_SKIN_LIGHT = np.array([255, 224, 196], dtype=np.float64)
_SKIN_DARK = np.array([96, 62, 44], dtype=np.float64)
_HAIR_COLOURS = np.array(
    [[30, 22, 20], [110, 68, 40], [200, 150, 80], [235, 215, 160], [190, 70, 30], [220, 220, 225]],
    dtype=np.float64,
)


@dataclass(frozen=True)
class FaceParams:
    """The parameters of one face; every field is also a label of the data set.

    Fractions are of the image size; colours are interpolation positions in [0, 1].
    """

    face_width: float = 0.30  # half-width of the face ellipse
    face_height: float = 0.36  # half-height of the face ellipse
    center_x: float = 0.0  # horizontal offset of the face centre
    center_y: float = 0.0  # vertical offset of the face centre
    skin_tone: float = 0.3  # 0 light .. 1 dark
    hair_colour: float = 0.0  # position along the hair palette (black .. grey)
    hair_length: float = 0.5  # 0 short cap .. 1 hair down to the jaw
    eye_size: float = 0.5  # 0 small .. 1 large
    eye_spacing: float = 0.5  # 0 close .. 1 wide
    smile: float = 0.0  # -1 frown .. +1 broad smile
    mouth_width: float = 0.5  # 0 narrow .. 1 wide
    glasses: float = 0.0  # 0 or 1
    background_hue: float = 0.0  # hue of the plain background, [0, 1)


LABEL_NAMES: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(FaceParams))


def sample_face_params(rng: np.random.Generator) -> FaceParams:
    """Draw one face's parameters from ``rng`` (uniform, glasses with probability 0.3)."""
    u = rng.uniform
    return FaceParams(
        face_width=u(0.24, 0.33),
        face_height=u(0.30, 0.38),
        center_x=u(-0.04, 0.04),
        center_y=u(-0.03, 0.04),
        skin_tone=u(0.0, 1.0),
        hair_colour=u(0.0, 1.0),
        hair_length=u(0.0, 1.0),
        eye_size=u(0.0, 1.0),
        eye_spacing=u(0.0, 1.0),
        smile=u(-1.0, 1.0),
        mouth_width=u(0.0, 1.0),
        glasses=float(rng.uniform() < 0.3),
        background_hue=u(0.0, 1.0),
    )


def _hair_rgb(position: float) -> np.ndarray:
    """Linear interpolation along the hair palette; ``position`` in [0, 1]."""
    x = float(np.clip(position, 0.0, 1.0)) * (len(_HAIR_COLOURS) - 1)
    low = int(np.floor(x))
    high = min(low + 1, len(_HAIR_COLOURS) - 1)
    return _HAIR_COLOURS[low] * (1 - (x - low)) + _HAIR_COLOURS[high] * (x - low)


def _background_rgb(hue: float) -> np.ndarray:
    """A light pastel of the given hue (OpenCV hue runs over [0, 180))."""
    hsv = np.array([[[int(hue * 180) % 180, 70, 235]]], dtype=np.uint8)
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0].astype(np.float64)


def _colour(rgb: np.ndarray) -> tuple[int, int, int]:
    return tuple(int(round(c)) for c in rgb)  # type: ignore[return-value]


def _mouth_points(cx: float, cy: float, half_width: float, depth: float) -> np.ndarray:
    """A parabola through the two corners whose centre sits ``depth`` pixels lower.

    Positive depth is a smile (corners above the centre in image coordinates).
    """
    x = np.linspace(-1.0, 1.0, 25)
    xs = cx + half_width * x
    ys = cy + depth * (1.0 - x**2)
    return np.stack([xs, ys], axis=1)


def render_face(params: FaceParams, size: int = 64) -> np.ndarray:
    """Draw one face.

    Args:
        params: the face to draw.
        size: output height and width in pixels.

    Returns:
        ``(size, size, 3)`` ``uint8`` RGB image.
    """
    check(size >= 8, f"face size must be at least 8 pixels. Got: {size}", GanvasError)
    s = size * SUPERSAMPLE
    # cv2 drawing takes integer pixels; a fixed-point shift keeps sub-pixel detail.
    shift = 4
    one = 1 << shift

    def pt(x: float, y: float) -> tuple[int, int]:
        return int(round(x * one)), int(round(y * one))

    def ln(v: float) -> int:
        return int(round(v * one))

    canvas = np.empty((s, s, 3), dtype=np.uint8)
    canvas[:] = _colour(_background_rgb(params.background_hue))
    cx = s * (0.5 + params.center_x)
    cy = s * (0.54 + params.center_y)
    fw, fh = s * params.face_width, s * params.face_height
    skin = _SKIN_LIGHT + (_SKIN_DARK - _SKIN_LIGHT) * params.skin_tone
    hair = _colour(_hair_rgb(params.hair_colour))
    aa = cv2.LINE_AA

    # Hair behind the face: a longer ellipse whose length follows hair_length.
    back_h = fh * (0.75 + 0.45 * params.hair_length)
    cv2.ellipse(canvas, pt(cx, cy - fh * 0.15), (ln(fw * 1.2), ln(back_h)), 0, 0, 360, hair, -1, aa, shift)
    cv2.ellipse(canvas, pt(cx, cy), (ln(fw), ln(fh)), 0, 0, 360, _colour(skin), -1, aa, shift)
    # Fringe: the upper half of an ellipse over the forehead.
    cv2.ellipse(canvas, pt(cx, cy - fh * 0.45), (ln(fw * 1.05), ln(fh * 0.6)), 0, 180, 360, hair, -1, aa, shift)

    eye_dx = fw * (0.32 + 0.22 * params.eye_spacing)
    eye_y = cy - fh * 0.02
    eye_r = s * (0.025 + 0.025 * params.eye_size)
    for side in (-1.0, 1.0):
        ex = cx + side * eye_dx
        cv2.circle(canvas, pt(ex, eye_y), ln(eye_r * 1.6), (255, 255, 255), -1, aa, shift)
        cv2.circle(canvas, pt(ex, eye_y), ln(eye_r), (40, 30, 30), -1, aa, shift)
        if params.glasses >= 0.5:
            cv2.circle(canvas, pt(ex, eye_y), ln(eye_r * 2.6), (20, 20, 20), max(1, s // 64), aa, shift)
    if params.glasses >= 0.5:
        bridge = eye_dx - eye_r * 2.6
        cv2.line(canvas, pt(cx - bridge, eye_y), pt(cx + bridge, eye_y), (20, 20, 20), max(1, s // 64), aa, shift)

    mouth = _mouth_points(cx, cy + fh * 0.5, fw * (0.25 + 0.3 * params.mouth_width), fh * 0.18 * params.smile)
    pts = np.round(mouth * one).astype(np.int32).reshape(-1, 1, 2)
    cv2.polylines(canvas, [pts], False, (150, 40, 50), max(2, s // 40), aa, shift)
    return cv2.resize(canvas, (size, size), interpolation=cv2.INTER_AREA)


def render_faces(count: int, size: int = 64, seed: int = 0) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Render ``count`` random faces and their labels, deterministically from ``seed``.

    Returns:
        images: ``(count, size, size, 3)`` ``uint8`` RGB.
        labels: one ``(count,)`` ``float32`` array per :data:`LABEL_NAMES` entry.
    """
    check(count >= 1, f"face count must be at least 1. Got: {count}", GanvasError)
    rng = np.random.default_rng(seed)
    images = np.empty((count, size, size, 3), dtype=np.uint8)
    labels = {name: np.empty(count, dtype=np.float32) for name in LABEL_NAMES}
    for i in range(count):
        params = sample_face_params(rng)
        images[i] = render_face(params, size)
        for name in LABEL_NAMES:
            labels[name][i] = getattr(params, name)
    return images, labels
