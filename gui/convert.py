"""The one place pixels cross between numpy and Qt.

Engine images are ``(H, W, 3)`` ``uint8``/``uint16`` (+ an ``(H, W)`` alpha); Qt paints
``QImage``/``QPixmap``. Conversions copy, so a numpy buffer may be freed or reused
after the call.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PySide6.QtGui import QImage

from engine.errors import ImageError
from engine.images import Image, to_uint8


def to_qimage(rgb: np.ndarray, alpha: np.ndarray | None = None) -> QImage:
    """``(H, W, 3)`` pixels (uint8, uint16 or float in [0, 1]) and optional alpha to a QImage."""
    rgb = to_uint8(rgb)
    height, width = rgb.shape[:2]
    if alpha is not None:
        pixels = np.ascontiguousarray(np.dstack([rgb, to_uint8(alpha)]))
        fmt, channels = QImage.Format.Format_RGBA8888, 4
    else:
        pixels = np.ascontiguousarray(rgb)
        fmt, channels = QImage.Format.Format_RGB888, 3
    image = QImage(pixels.data, width, height, width * channels, fmt)
    return image.copy()  # detach from the numpy buffer, which Qt does not own


def image_to_qimage(image: Image) -> QImage:
    return to_qimage(image.rgb, image.alpha)


def qimage_to_array(image: QImage) -> np.ndarray:
    """A QImage as ``(H, W, 3)`` ``uint8`` RGB (alpha dropped)."""
    image = image.convertToFormat(QImage.Format.Format_RGB888)
    height, width, stride = image.height(), image.width(), image.bytesPerLine()
    buffer = np.frombuffer(image.constBits(), dtype=np.uint8, count=stride * height)
    return buffer.reshape(height, stride)[:, : width * 3].reshape(height, width, 3).copy()


def preview_pixels(preview: Any) -> np.ndarray | None:
    """A job's preview as ``(H, W, 3)`` ``uint8``, or None if it is not an image.

    Engine jobs pass an :class:`~engine.images.Image`, or a numpy array ``(H, W, 3)`` /
    ``(H, W)`` in uint8, uint16 or float [0, 1]; anything else (a step count, a loss
    value) is not something the canvas can show.
    """
    if isinstance(preview, Image):
        preview = preview.rgb
    if not isinstance(preview, np.ndarray) or preview.ndim not in (2, 3) or preview.size == 0:
        return None
    if preview.ndim == 2:
        preview = preview[..., None]
    if preview.shape[2] == 1:
        preview = np.repeat(preview, 3, axis=2)
    if preview.shape[2] != 3:
        return None
    try:
        return np.ascontiguousarray(to_uint8(preview)).copy()
    except ImageError:  # an unsupported dtype: not showable, and no reason to fail the job
        return None
