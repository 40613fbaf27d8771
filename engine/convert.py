"""The one place where images and tensors meet.

Images at the API edge are ``(H, W, 3)`` ``uint8`` (or ``float32`` in ``[0, 1]``);
tensors at model boundaries are ``(N, C, H, W)`` ``float32`` in ``[-1, 1]``.
"""

from __future__ import annotations

import numpy as np
import torch

from engine.errors import GanvasError, check


def image_to_tensor(pixels: np.ndarray, device: torch.device | str = "cpu") -> torch.Tensor:
    """``(H, W, 3)`` ``uint8``/``uint16``/``float [0, 1]`` -> ``(1, 3, H, W)`` float32 in ``[-1, 1]``."""
    check(pixels.ndim == 3 and pixels.shape[2] == 3, f"expected (H, W, 3) pixels. Got: {pixels.shape}")
    if pixels.dtype == np.uint8:
        unit = pixels.astype(np.float32) / 255.0
    elif pixels.dtype == np.uint16:
        unit = pixels.astype(np.float32) / 65535.0
    else:
        unit = pixels.astype(np.float32)
    tensor = torch.from_numpy(np.ascontiguousarray(unit)).permute(2, 0, 1)[None]  # (1, 3, H, W)
    return (tensor.to(device) * 2.0 - 1.0).contiguous()


def tensor_to_image(tensor: torch.Tensor) -> np.ndarray:
    """``(1, C, H, W)`` or ``(C, H, W)`` in ``[-1, 1]`` -> ``(H, W, 3)`` ``uint8`` (grey is repeated)."""
    if tensor.ndim == 4:
        check(tensor.shape[0] == 1, f"expected one image. Got: batch of {tensor.shape[0]}")
        tensor = tensor[0]
    check(tensor.ndim == 3 and tensor.shape[0] in (1, 3), f"expected (C, H, W), C 1 or 3. Got: {tuple(tensor.shape)}")
    unit = (tensor.detach().float().cpu().clamp(-1, 1) + 1.0) * 127.5
    pixels = (unit + 0.5).to(torch.uint8).permute(1, 2, 0).numpy()  # (H, W, C)
    if pixels.shape[2] == 1:
        pixels = np.repeat(pixels, 3, axis=2)
    return np.ascontiguousarray(pixels)


def batch_to_images(tensor: torch.Tensor) -> list[np.ndarray]:
    """``(N, C, H, W)`` in ``[-1, 1]`` -> a list of ``(H, W, 3)`` ``uint8``."""
    if tensor.ndim != 4:
        raise GanvasError(f"expected (N, C, H, W). Got: {tuple(tensor.shape)}")
    return [tensor_to_image(t) for t in tensor]
