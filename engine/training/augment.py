"""DiffAugment: differentiable augmentation applied to real and fake images alike.

Zhao et al., "Differentiable Augmentation for Data-Efficient GAN Training",
NeurIPS 2020 (arXiv:2006.10738), Sec. 3: the discriminator only ever sees
``T(x)`` and ``T(G(z))`` for the same family ``T`` of random transforms, and the
generator's gradient flows back through ``T``. The three families of the paper:
colour (brightness, saturation, contrast), translation (up to 1/8 of the image,
zero padding) and cutout (a square of half the image side set to zero).
"""

from __future__ import annotations

import torch
from torch import Tensor

from engine.errors import GanvasError, check

POLICIES = ("color", "translation", "cutout")


def _uniform(x: Tensor, generator: torch.Generator | None) -> Tensor:
    """One ``U[0, 1)`` value per sample, shaped ``(B, 1, 1, 1)`` for broadcasting."""
    return torch.rand(x.shape[0], 1, 1, 1, generator=generator, device=x.device, dtype=x.dtype)


def random_brightness(x: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Add one offset in ``[-0.5, 0.5)`` per sample. ``x``: ``(B, C, H, W)``."""
    return x + (_uniform(x, generator) - 0.5)


def random_saturation(x: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Scale each pixel's distance from its channel mean by a factor in ``[0, 2)``."""
    mean = x.mean(dim=1, keepdim=True)
    return (x - mean) * (_uniform(x, generator) * 2) + mean


def random_contrast(x: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Scale each image's distance from its global mean by a factor in ``[0.5, 1.5)``."""
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (_uniform(x, generator) + 0.5) + mean


def random_translation(x: Tensor, ratio: float = 0.125, generator: torch.Generator | None = None) -> Tensor:
    """Shift each image by whole pixels, up to ``ratio`` of its size, filling with zeros.

    Args:
        x: ``(B, C, H, W)``.
        ratio: the largest shift as a fraction of height and width.

    Returns:
        ``(B, C, H, W)``, differentiable with respect to ``x``.
    """
    batch, _, height, width = x.shape
    pad_y, pad_x = int(height * ratio + 0.5), int(width * ratio + 0.5)
    shift_y = torch.randint(-pad_y, pad_y + 1, (batch, 1, 1), generator=generator, device=x.device)
    shift_x = torch.randint(-pad_x, pad_x + 1, (batch, 1, 1), generator=generator, device=x.device)
    rows = torch.arange(height, device=x.device).view(1, height, 1) + shift_y + pad_y  # (B, H, 1)
    cols = torch.arange(width, device=x.device).view(1, 1, width) + shift_x + pad_x  # (B, 1, W)
    padded = torch.nn.functional.pad(x, (pad_x, pad_x, pad_y, pad_y))  # (B, C, H + 2py, W + 2px)
    index = torch.arange(batch, device=x.device).view(batch, 1, 1)
    moved = padded.permute(0, 2, 3, 1)[index, rows, cols]  # (B, H, W, C)
    return moved.permute(0, 3, 1, 2)


def random_cutout(x: Tensor, ratio: float = 0.5, generator: torch.Generator | None = None) -> Tensor:
    """Zero one square of side ``ratio`` times the image size per sample; its centre may
    lie anywhere in the image, so part of the square can fall outside it.

    Args:
        x: ``(B, C, H, W)``.

    Returns:
        ``(B, C, H, W)``.
    """
    batch, _, height, width = x.shape
    cut_h, cut_w = int(height * ratio + 0.5), int(width * ratio + 0.5)
    centre_y = torch.randint(0, height + (1 - cut_h % 2), (batch, 1, 1), generator=generator, device=x.device)
    centre_x = torch.randint(0, width + (1 - cut_w % 2), (batch, 1, 1), generator=generator, device=x.device)
    rows = torch.arange(height, device=x.device).view(1, height, 1)
    cols = torch.arange(width, device=x.device).view(1, 1, width)
    top, left = centre_y - cut_h // 2, centre_x - cut_w // 2
    inside = (rows >= top) & (rows < top + cut_h) & (cols >= left) & (cols < left + cut_w)  # (B, H, W)
    keep = (~inside).to(x.dtype).unsqueeze(1)  # (B, 1, H, W)
    return x * keep


def diff_augment(x: Tensor, policy: str = "color,translation,cutout", generator: torch.Generator | None = None) -> Tensor:
    """Apply the DiffAugment families named in ``policy`` (comma separated), in order.

    Args:
        x: ``(B, C, H, W)`` images, any range (the generator's ``[-1, 1]``).
        policy: a subset of ``"color,translation,cutout"``; empty means no change.
        generator: the random source (``None``: torch's global one).

    Returns:
        ``(B, C, H, W)``, a differentiable function of ``x``.
    """
    check(x.ndim == 4, f"diff_augment expects (B, C, H, W) images. Got: shape {tuple(x.shape)}", GanvasError)
    for name in filter(None, (p.strip() for p in policy.split(","))):
        check(name in POLICIES, f"unknown DiffAugment policy {name!r}; known: {', '.join(POLICIES)}. Got: {policy!r}")
        if name == "color":
            x = random_contrast(random_saturation(random_brightness(x, generator), generator), generator)
        elif name == "translation":
            x = random_translation(x, generator=generator)
        else:
            x = random_cutout(x, generator=generator)
    return x
