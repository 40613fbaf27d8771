"""Geometric preparation of a photo before it meets a GAN: crop, rotate, flip, resize.

GAN inputs are square and small, so a user crops a square around the subject and
resizes it; these are the exact, lossless (crop/rotate/flip) or area-averaging
(resize down, Lanczos up) operations behind the Image menu. Each takes and returns an
:class:`engine.images.Image` and treats the alpha channel like the colours.
"""

from __future__ import annotations

from typing import Callable

import cv2
import numpy as np

from engine.errors import ImageError, check
from engine.images import Image


def _apply(image: Image, fn: Callable[[np.ndarray], np.ndarray]) -> Image:
    alpha = None if image.alpha is None else np.ascontiguousarray(fn(image.alpha))
    return Image(np.ascontiguousarray(fn(image.rgb)), alpha, image.source)


def crop(image: Image, x: int, y: int, width: int, height: int) -> Image:
    """The ``width x height`` rectangle whose top-left corner is ``(x, y)``."""
    check(width > 0 and height > 0, f"crop size must be positive. Got: {width} x {height}", ImageError)
    check(
        x >= 0 and y >= 0 and x + width <= image.width and y + height <= image.height,
        f"crop rectangle must lie inside the {image.width} x {image.height} image. "
        f"Got: x={x}, y={y}, {width} x {height}",
        ImageError,
    )
    return _apply(image, lambda a: a[y : y + height, x : x + width])


def rotate90(image: Image, clockwise: bool = True) -> Image:
    """Rotate by a quarter turn."""
    return _apply(image, lambda a: np.rot90(a, -1 if clockwise else 1))


def flip(image: Image, horizontal: bool = True) -> Image:
    """Mirror left-right (``horizontal``) or top-bottom."""
    return _apply(image, lambda a: a[:, ::-1] if horizontal else a[::-1])


def resize(image: Image, width: int, height: int) -> Image:
    """Resample to ``width x height``: area averaging when shrinking, Lanczos when enlarging."""
    check(
        0 < width <= 65536 and 0 < height <= 65536,
        f"size must be between 1 and 65536 pixels per side. Got: {width} x {height}",
        ImageError,
    )
    shrinking = width * height < image.width * image.height
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_LANCZOS4

    def fn(a: np.ndarray) -> np.ndarray:
        out = cv2.resize(a, (width, height), interpolation=interpolation)
        return out

    return _apply(image, fn)


def square_box(x: int, y: int, width: int, height: int) -> tuple[int, int, int, int]:
    """The largest square inside a rectangle, centred in it: ``(x, y, side, side)``."""
    side = min(width, height)
    return x + (width - side) // 2, y + (height - side) // 2, side, side
