"""Where tensors live: pick CUDA, then Apple's MPS, then the CPU, or what the user asked for.

The choice is made in one place: ``--device`` on the command line or the GUI setting
passes a preference here, and the result names the device in words for the status bar.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch

from engine.errors import GanvasError

ENV_VARIABLE = "GANVAS_DEVICE"
CHOICES = ("auto", "cuda", "mps", "cpu")


@dataclass(frozen=True)
class DeviceChoice:
    device: torch.device
    description: str

    @property
    def supports_half(self) -> bool:
        return self.device.type == "cuda"


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def describe(device: torch.device) -> str:
    """A short human name for ``device``, e.g. ``"CUDA: NVIDIA H100 (79 GiB)"``."""
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        props = torch.cuda.get_device_properties(index)
        return f"CUDA: {props.name} ({props.total_memory / 2**30:.0f} GiB)"
    if device.type == "mps":
        return "MPS: Apple GPU"
    return f"CPU ({torch.get_num_threads()} threads)"


def pick_device(preference: str | None = None) -> DeviceChoice:
    """Choose a device.

    Args:
        preference: ``"auto"``, ``"cuda"``, ``"cuda:1"``, ``"mps"`` or ``"cpu"``; ``None``
            reads the ``GANVAS_DEVICE`` environment variable, then falls back to ``"auto"``.

    Raises:
        GanvasError: the requested device is not available here.
    """
    preference = (preference or os.environ.get(ENV_VARIABLE) or "auto").strip().lower()
    if preference == "auto":
        if torch.cuda.is_available():
            device = torch.device("cuda")
        elif _mps_available():
            device = torch.device("mps")
        else:
            device = torch.device("cpu")
        return DeviceChoice(device, describe(device))
    try:
        device = torch.device(preference)
    except RuntimeError as exc:
        raise GanvasError(f"unknown device; use one of {', '.join(CHOICES)}. Got: {preference}") from exc
    if device.type == "cuda" and not torch.cuda.is_available():
        raise GanvasError(f"CUDA was requested but no CUDA GPU is available. Got: {preference}")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise GanvasError(f"there are {torch.cuda.device_count()} CUDA devices. Got: {preference}")
    if device.type == "mps" and not _mps_available():
        raise GanvasError(f"MPS was requested but is not available on this machine. Got: {preference}")
    if device.type not in ("cuda", "mps", "cpu"):
        raise GanvasError(f"unsupported device; use one of {', '.join(CHOICES)}. Got: {preference}")
    return DeviceChoice(device, describe(device))
