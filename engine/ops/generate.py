"""Sampling a generator: seed -> z -> w (with truncation) -> image.

Seeds map to ``z`` exactly as NVIDIA's ``gen_images.py`` does
(``np.random.RandomState(seed).randn(1, z_dim)``), so seed 42 in GANvas is seed 42 in
the official scripts. Truncation: ``w' = w_avg + psi (w - w_avg)`` on the first
``truncation_cutoff`` layers (Karras et al. 2019, arXiv:1812.04948, sec. 3.4).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from engine.convert import tensor_to_image
from engine.errors import GanvasError, check


@dataclass
class Sample:
    seed: int
    ws: torch.Tensor  # (1, num_ws, w_dim), float32, on the CPU
    image: np.ndarray  # (H, W, 3) uint8


def seed_to_z(seed: int, z_dim: int) -> torch.Tensor:
    """The official seed-to-latent map: ``(1, z_dim)`` float32."""
    check(0 <= seed < 2**32, f"seed must be in 0 .. 2**32-1. Got: {seed}")
    return torch.from_numpy(np.random.RandomState(seed).randn(1, z_dim).astype(np.float32))


def class_vector(class_index: int | None, c_dim: int) -> torch.Tensor:
    """One-hot label ``(1, c_dim)`` (``(1, 0)`` for an unconditional model)."""
    if c_dim == 0:
        check(class_index is None, f"this model is unconditional; drop the class. Got: class {class_index}")
        return torch.zeros(1, 0)
    check(class_index is not None, f"this model is conditional: choose a class in 0 .. {c_dim - 1}. Got: none")
    check(0 <= class_index < c_dim, f"class must be in 0 .. {c_dim - 1}. Got: {class_index}")
    c = torch.zeros(1, c_dim)
    c[0, class_index] = 1.0
    return c


@torch.no_grad()
def sample(
    G: nn.Module,
    seed: int,
    truncation_psi: float = 1.0,
    truncation_cutoff: int | None = None,
    class_index: int | None = None,
    noise_mode: str = "const",
) -> Sample:
    """Draw one image for ``seed``; returns its latent ``ws`` and the ``uint8`` image."""
    if not 0.0 <= truncation_psi <= 2.0:
        raise GanvasError(f"truncation psi must be in 0 .. 2. Got: {truncation_psi}")
    device = next(G.parameters()).device
    z = seed_to_z(seed, G.z_dim).to(device)
    c = class_vector(class_index, G.c_dim).to(device)
    ws = G.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)
    image = G.synthesis(ws, noise_mode=noise_mode)
    return Sample(seed, ws.cpu(), tensor_to_image(image))


@torch.no_grad()
def render(G: nn.Module, ws: torch.Tensor, noise_mode: str = "const") -> np.ndarray:
    """Synthesise ``ws`` ``(1, num_ws, w_dim)`` to a ``uint8`` image."""
    check(
        ws.ndim == 3 and ws.shape[1:] == (G.num_ws, G.w_dim),
        f"ws must be (1, {G.num_ws}, {G.w_dim}). Got: {tuple(ws.shape)}",
    )
    device = next(G.parameters()).device
    return tensor_to_image(G.synthesis(ws.to(device), noise_mode=noise_mode))
