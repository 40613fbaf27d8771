"""Latent files (``.npz`` with a ``ws`` array) shared by the commands that read them."""

from __future__ import annotations

import numpy as np
import torch

from engine.errors import GanvasError, check

def read_latent(path: str, num_ws: int, w_dim: int) -> torch.Tensor:
    """The ``ws`` array of a latent file (``generate --save-latent``) as ``[1, num_ws, w_dim]``."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            ws = archive["ws"].astype(np.float32)
    except (OSError, ValueError, KeyError) as exc:
        raise GanvasError(f"{path}: not a latent file with a 'ws' array. Got: {type(exc).__name__}: {exc}") from None
    check(ws.size == num_ws * w_dim, f"{path}: ws must be (1, {num_ws}, {w_dim}) for this model. Got: {ws.shape}")
    return torch.from_numpy(ws.reshape(1, num_ws, w_dim))
