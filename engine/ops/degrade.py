"""Forward operators ``A`` of the inverse problems a generator prior solves: ``y = A(x)``.

A GAN inverse problem searches the latent space for ``w`` with ``A(G(w)) ≈ y``
(Bora et al., "Compressed Sensing using Generative Models", arXiv:1703.03208; PULSE,
Menon et al., arXiv:2003.03808, for super-resolution). Each operator here is a
differentiable map from a model-resolution image ``(N, 3, R, R)`` in ``[-1, 1]`` to an
observation: identity (inversion), a known-pixel mask (inpainting), luma (colourisation)
or area down-sampling by an integer factor (super-resolution), built on kornia. An
operator also carries a per-pixel weight in observation space that the losses use, so
a mask's hidden pixels count for nothing and a user can stress a region.
"""

from __future__ import annotations

from dataclasses import dataclass

import kornia
import torch
import torch.nn.functional as F
from torch import Tensor

from engine.errors import check

KINDS = ("identity", "mask", "grey", "down")


@dataclass(frozen=True)
class Operator:
    """A forward operator ``A`` and the per-pixel weight of its observations.

    ``kind``: one of :data:`KINDS`. ``mask``: ``(1, 1, R, R)`` float, 1 where a pixel is
    known (kind "mask" only). ``factor``: the down-sampling factor (kind "down" only).
    ``weight``: optional ``(1, 1, R, R)`` per-pixel weight >= 0 at model resolution; it is
    carried into observation space by :meth:`observation_weight`.
    """

    kind: str = "identity"
    resolution: int = 0  # model resolution R; 0: take it from the first image seen
    mask: Tensor | None = None
    factor: int = 1
    weight: Tensor | None = None

    def __call__(self, x: Tensor) -> Tensor:
        """Apply ``A`` to ``x`` ``(N, 3, R, R)``; returns the observation (see :func:`observation_shape`)."""
        check(x.ndim == 4 and x.shape[1] == 3, f"A expects (N, 3, H, W) images. Got: {tuple(x.shape)}")
        if self.kind == "mask":
            return x * self.mask.to(x)
        if self.kind == "grey":
            return kornia.color.rgb_to_grayscale(x)  # linear in x, so [-1, 1] maps to [-1, 1]
        if self.kind == "down":
            return downsample(x, self.factor)
        return x

    def observation_weight(self, device: torch.device | str = "cpu") -> Tensor | None:
        """Per-pixel weight ``(1, 1, h, w)`` in observation space, or None (all pixels count 1)."""
        weight = self.weight
        if self.kind == "mask":
            weight = self.mask if weight is None else weight * self.mask
        if weight is not None and self.kind == "down":
            weight = downsample(weight, self.factor)
        return None if weight is None else weight.to(device)

    def unseen(self) -> Tensor | None:
        """``(1, 1, R, R)`` 1 where a pixel is not observed at all (hidden or zero weight), or None."""
        weight = self.weight if self.kind != "mask" else self.observation_weight()
        if weight is None or self.kind == "down":
            return None
        return (weight <= 0).to(torch.float32)

    def describe(self) -> str:
        if self.kind == "mask":
            return f"mask ({100 * (1 - float(self.mask.mean())):.0f} % hidden)"
        if self.kind == "down":
            return f"down-sampling x{self.factor}"
        return self.kind


def downsample(x: Tensor, factor: int) -> Tensor:
    """Area (box) down-sampling ``(N, C, H, W)`` -> ``(N, C, H/factor, W/factor)``.

    Area averaging is what OpenCV's ``INTER_AREA`` and the command line's resizing do, so
    an observation shrunk by either is explained exactly by this operator.
    """
    check(factor >= 1 and x.shape[-1] % factor == 0 and x.shape[-2] % factor == 0,
          f"the image side must be a multiple of the factor {factor}. Got: {tuple(x.shape[-2:])}")
    if factor == 1:
        return x
    return kornia.geometry.transform.resize(x, (x.shape[-2] // factor, x.shape[-1] // factor),
                                            interpolation="area")


def _as_map(t: Tensor | None, resolution: int, name: str) -> Tensor | None:
    """A user mask/weight ``(H, W)``, ``(1, H, W)`` or ``(1, 1, H, W)`` -> ``(1, 1, R, R)`` float32."""
    if t is None:
        return None
    t = torch.as_tensor(t, dtype=torch.float32)
    while t.ndim < 4:
        t = t.unsqueeze(0)
    check(t.shape[:2] == (1, 1) and t.shape[-2:] == (resolution, resolution),
          f"{name} must be ({resolution}, {resolution}) at the model resolution. Got: {tuple(t.shape)}")
    check(bool(torch.isfinite(t).all()) and float(t.min()) >= 0, f"{name} must be finite and >= 0. "
          f"Got: min {float(t.min()):.3g}")
    return t.contiguous()


def identity(resolution: int, weight: Tensor | None = None) -> Operator:
    """``A(x) = x``: plain inversion."""
    return Operator("identity", resolution, weight=_as_map(weight, resolution, "weight"))


def masked(mask: Tensor, weight: Tensor | None = None) -> Operator:
    """``A(x) = m * x``: inpainting. ``mask`` ``(R, R)`` (any leading 1-dims), 1 = known pixel.

    Values are thresholded at 0.5 so an anti-aliased mask still hides whole pixels.
    """
    m = torch.as_tensor(mask, dtype=torch.float32)
    check(m.ndim >= 2, f"mask must be (H, W). Got: {tuple(m.shape)}")
    resolution = int(m.shape[-1])
    m = (_as_map(m, resolution, "mask") > 0.5).to(torch.float32)
    check(float(m.sum()) > 0, "the mask hides every pixel; nothing is left to fit. Got: 0 known pixels")
    return Operator("mask", resolution, mask=m, weight=_as_map(weight, resolution, "weight"))


def greyscale(resolution: int, weight: Tensor | None = None) -> Operator:
    """``A(x) = luma(x)`` (ITU-R 601 weights, kornia): colourisation."""
    return Operator("grey", resolution, weight=_as_map(weight, resolution, "weight"))


def downsampling(resolution: int, factor: int, weight: Tensor | None = None) -> Operator:
    """``A(x) = area_down(x, factor)``: GAN-prior super-resolution (PULSE-style)."""
    check(isinstance(factor, int) and factor >= 2 and resolution % factor == 0,
          f"the factor must be an integer >= 2 dividing the resolution {resolution}. Got: {factor}")
    return Operator("down", resolution, factor=factor, weight=_as_map(weight, resolution, "weight"))


def observation_shape(op: Operator, resolution: int) -> tuple[int, int, int]:
    """``(C, h, w)`` of ``A``'s output for a model of resolution ``resolution``."""
    if op.kind == "grey":
        return 1, resolution, resolution
    if op.kind == "down":
        return 3, resolution // op.factor, resolution // op.factor
    return 3, resolution, resolution


def observe(op: Operator, y: Tensor, resolution: int) -> Tensor:
    """Bring a target into observation space.

    ``y`` ``(1, C, H, W)`` in ``[-1, 1]`` is either a full image at the model resolution
    (it is then degraded by ``A``, which simulates the problem) or already an observation
    of ``A``'s output shape (a grey observation may come as 3 equal channels).
    """
    check(y.ndim == 4 and y.shape[0] == 1 and y.shape[1] in (1, 3),
          f"the target must be one (1, 1|3, H, W) image. Got: {tuple(y.shape)}")
    shape = observation_shape(op, resolution)
    if y.shape[1] == 3 and tuple(y.shape[-2:]) == (resolution, resolution):
        return op(y)
    if op.kind == "grey" and tuple(y.shape[-2:]) == (resolution, resolution):
        return y  # already a one-channel luma observation
    check(tuple(y.shape[1:]) == shape, f"the target must be a {resolution} px image or an observation "
          f"of shape {shape} for {op.describe()}. Got: {tuple(y.shape[1:])}")
    return y


def project(op: Operator, x: Tensor, y: Tensor, iterations: int = 20) -> Tensor:
    """Make ``x`` (N, 3, R, R) agree with the observation ``y``: the data-consistency step.

    Mask: known pixels are taken from ``y``. Grey: every channel shifts by the luma error (the
    luma weights sum to 1, so chroma is kept and luma becomes exact). Down-sampling: iterative
    back-projection (Irani & Peleg 1991) with a bicubic spread of the low-resolution residual.
    Identity: ``x`` is returned unchanged (projecting would return ``y`` itself).
    """
    if op.kind == "mask":
        m = op.mask.to(x)
        return m * y + (1 - m) * x
    if op.kind == "grey":
        return x + (y - kornia.color.rgb_to_grayscale(x))
    if op.kind == "down":
        size = x.shape[-2:]
        for _ in range(iterations):
            residual = y - downsample(x, op.factor)
            x = x + kornia.geometry.transform.resize(residual, size, interpolation="bicubic", align_corners=False)
        return x
    return x


def to_image_space(obs: Tensor, op: Operator, resolution: int) -> Tensor:
    """An observation as a 3-channel model-resolution image, for networks that need one.

    Grey is repeated over 3 channels; a low-resolution observation is enlarged by
    nearest-neighbour repetition, which keeps both sides of a comparison in the same space.
    """
    if obs.shape[1] == 1:
        obs = obs.expand(-1, 3, -1, -1)
    if obs.shape[-1] != resolution:
        obs = F.interpolate(obs, size=(resolution, resolution), mode="nearest")
    return obs


__all__ = ["Operator", "KINDS", "identity", "masked", "greyscale", "downsampling", "downsample",
           "observation_shape", "observe", "project", "to_image_space"]
