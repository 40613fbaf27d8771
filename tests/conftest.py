"""Shared test set-up.

Qt must never open a real window in tests, so the offscreen platform is chosen here,
before any test module imports Qt. Engine tests never import Qt; the Qt fixtures live
in ``tests/gui/conftest.py``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import numpy as np
import pytest

os.environ["QT_QPA_PLATFORM"] = "offscreen"


def gradient_rgb(height: int = 48, width: int = 64, seed: int = 0) -> np.ndarray:
    """A small ``(H, W, 3)`` uint8 picture where every pixel differs from its mirror images.

    Smooth ramps plus noise: rotations, flips and crops each give a different array,
    so a test comparing pixels catches a wrong direction.
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    rgb = np.stack([xx * 255 // max(width - 1, 1), yy * 255 // max(height - 1, 1), (xx + 2 * yy) % 256], axis=2)
    noise = rng.integers(0, 16, size=(height, width, 3))
    return np.clip(rgb + noise, 0, 255).astype(np.uint8)


@pytest.fixture
def write_image(tmp_path: Path) -> Callable[..., Path]:
    """Write ``rgb`` (default: :func:`gradient_rgb`) to ``tmp_path/name`` (PNG or JPEG by suffix)."""
    from engine.images import save_image

    def write(name: str = "photo.png", rgb: np.ndarray | None = None, quality: int = 95) -> Path:
        path = tmp_path / name
        save_image(path, gradient_rgb() if rgb is None else rgb, quality=quality)
        return path

    return write


@pytest.fixture
def one_torch_thread():
    """Tiny networks gain nothing from a second thread, and on a busy machine the two wait on
    each other (a classifier test took 15 s with two threads against 2 s with one)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
