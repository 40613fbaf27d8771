"""The super-resolution evaluation protocol: MATLAB-style bicubic resize and Y-channel PSNR.

``imresize`` reproduces MATLAB's ``imresize(..., 'bicubic')``: Keys' cubic kernel with
a = -0.5 (Keys 1981), widened by 1/scale when shrinking (antialiasing), mirrored borders,
weights normalised per output pixel; computed in float64 without rounding between the two
passes (MATLAB rounds a uint8 intermediate, a <0.01 dB difference). The same weights resample
tiles in ``engine.ops.upscale`` at exact global coordinates. PSNR follows the usual SR
protocol: BT.601 luma (16-235), ``scale`` pixels shaved from every border, peak 255; a file
stored as one grey channel is compared on its grey values, as the MATLAB scripts behind the
published tables do (this is what turns Set14's bicubic 26.09 dB into the quoted 26.00).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image as PILImage

from engine.errors import GanvasError, check
from engine.images import load_image


def _cubic(x: np.ndarray) -> np.ndarray:
    """Keys' cubic convolution kernel with a = -0.5 (MATLAB's ``cubic``)."""
    ax = np.abs(x)
    ax2, ax3 = ax * ax, ax * ax * ax
    near = (1.5 * ax3 - 2.5 * ax2 + 1.0) * (ax <= 1)
    far = (-0.5 * ax3 + 2.5 * ax2 - 4.0 * ax + 2.0) * ((ax > 1) & (ax <= 2))
    return near + far


def cubic_resize_matrix(
    in_len: int,
    out_len: int,
    out_start: int = 0,
    out_stop: int | None = None,
    src_start: int = 0,
    src_stop: int | None = None,
    antialias: bool = True,
) -> np.ndarray:
    """The 1-D bicubic resampling matrix from ``in_len`` to ``out_len`` samples, or a window of it.

    Output sample ``X`` (0-based) sits at source position ``(X + 0.5) * in_len / out_len - 0.5``.
    Rows are outputs ``out_start .. out_stop - 1``; columns are sources ``src_start .. src_stop - 1``
    (a tile of the source), which must hold every source sample those rows touch.

    Returns:
        ``(out_stop - out_start, src_stop - src_start)`` float64; each row sums to 1.
    """
    out_stop = out_len if out_stop is None else out_stop
    src_stop = in_len if src_stop is None else src_stop
    scale = out_len / in_len
    shrink = antialias and scale < 1.0
    width = 4.0 / scale if shrink else 4.0
    x = np.arange(out_start, out_stop, dtype=np.float64)
    centre = (x + 0.5) / scale - 0.5  # (n,)
    left = np.floor(centre - width / 2.0).astype(np.int64) + 1
    taps = int(math.ceil(width)) + 1
    index = left[:, None] + np.arange(taps)[None, :]  # (n, taps)
    distance = centre[:, None] - index
    weight = scale * _cubic(scale * distance) if shrink else _cubic(distance)
    weight /= weight.sum(axis=1, keepdims=True)
    # MATLAB mirrors indices at the borders (half-sample symmetric: -1 -> 0, in_len -> in_len - 1).
    period = 2 * in_len
    index = np.mod(index, period)
    index = np.where(index >= in_len, period - 1 - index, index) - src_start
    used = weight != 0
    if np.any(used & ((index < 0) | (index >= src_stop - src_start))):
        raise GanvasError(f"resize window needs sources outside {src_start}..{src_stop}. "
                          f"Got outputs {out_start}..{out_stop} of {out_len}")
    matrix = np.zeros((out_stop - out_start, src_stop - src_start), dtype=np.float64)
    rows = np.broadcast_to(np.arange(out_stop - out_start)[:, None], index.shape)
    np.add.at(matrix, (rows[used], index[used]), weight[used])
    return matrix


def imresize(pixels: np.ndarray, out_height: int, out_width: int) -> np.ndarray:
    """MATLAB ``imresize(pixels, [out_height out_width], 'bicubic')`` on ``(H, W)`` or ``(H, W, C)``.

    Returns float64 of the input's range without rounding or clipping; round and clip to
    store as ``uint8``.
    """
    check(pixels.ndim in (2, 3), f"expected (H, W) or (H, W, C) pixels. Got: {pixels.shape}")
    check(out_height >= 1 and out_width >= 1, f"output size must be positive. Got: {out_height} x {out_width}")
    rows = cubic_resize_matrix(pixels.shape[0], out_height)
    cols = cubic_resize_matrix(pixels.shape[1], out_width)
    values = pixels.astype(np.float64)
    out = np.tensordot(rows, values, axes=(1, 0))  # (out_h, W, C)
    out = np.tensordot(cols, out, axes=(1, 1))  # (out_w, out_h, C)
    return np.ascontiguousarray(np.swapaxes(out, 0, 1))


def round_uint8(pixels: np.ndarray) -> np.ndarray:
    return np.clip(np.round(pixels), 0, 255).astype(np.uint8)


def rgb_to_y(rgb: np.ndarray) -> np.ndarray:
    """ITU-R BT.601 luma of ``uint8`` RGB, in the 16-235 range, float64 (MATLAB ``rgb2ycbcr``, unrounded)."""
    unit = rgb.astype(np.float64) / 255.0
    return 16.0 + 65.481 * unit[..., 0] + 128.553 * unit[..., 1] + 24.966 * unit[..., 2]


def psnr_y(sr: np.ndarray, hr: np.ndarray, shave: int, grey: bool = False) -> float:
    """PSNR (dB, peak 255) between the Y channels of two ``uint8`` RGB images, ``shave`` px off each border.

    ``grey=True`` compares the first channel's values as they are (a one-channel source file).
    """
    check(sr.shape == hr.shape, f"SR and HR sizes differ. Got: {sr.shape} vs {hr.shape}")
    crop = (slice(shave, -shave), slice(shave, -shave)) if shave > 0 else (slice(None), slice(None))
    luma = (lambda rgb: rgb[..., 0].astype(np.float64)) if grey else rgb_to_y
    error = luma(sr)[crop] - luma(hr)[crop]
    mse = float(np.mean(error * error))
    return float("inf") if mse == 0 else 10.0 * math.log10(255.0**2 / mse)


def bicubic_upscaler(scale: int) -> Callable[[np.ndarray], np.ndarray]:
    """The baseline: ``uint8`` LR ``(h, w, 3)`` -> ``uint8`` ``(h*scale, w*scale, 3)`` by :func:`imresize`."""
    def upscale(lr: np.ndarray) -> np.ndarray:
        return round_uint8(imresize(lr, lr.shape[0] * scale, lr.shape[1] * scale))

    return upscale


@dataclass
class SRScores:
    """Y-PSNR of one upscaler over one test set."""

    per_image: dict[str, float] = field(default_factory=dict)

    @property
    def mean(self) -> float:
        return float(np.mean(list(self.per_image.values())))


def evaluate_sr(upscale: Callable[[np.ndarray], np.ndarray], hr_paths: list[Path], scale: int) -> SRScores:
    """Score ``upscale`` on HR images: bicubic-downscale by ``scale``, upscale back, Y-PSNR shaving ``scale``.

    ``upscale`` maps ``uint8`` ``(h, w, 3)`` to ``uint8`` ``(h*scale, w*scale, 3)``. HR sides that
    are not multiples of ``scale`` are cropped to them first (the usual ``modcrop``). One-channel
    files are scored on their grey values (see the module docstring).
    """
    check(scale >= 1, f"scale must be a positive integer. Got: {scale}")
    scores = SRScores()
    for path in hr_paths:
        hr = load_image(path).to_uint8()
        hr = hr[: hr.shape[0] - hr.shape[0] % scale, : hr.shape[1] - hr.shape[1] % scale]
        lr = round_uint8(imresize(hr, hr.shape[0] // scale, hr.shape[1] // scale))
        sr = upscale(lr)
        check(sr.shape == hr.shape, f"{path.name}: the upscaler returned {sr.shape}. Got: expected {hr.shape}")
        with PILImage.open(path) as im:
            grey = im.mode in ("1", "L", "I", "I;16", "F")
        scores.per_image[path.name] = psnr_y(sr, hr, shave=scale, grey=grey)
    return scores
