"""Edge maps: Canny for sketches and metrics, a differentiable soft edge map for latent search.

Canny (Canny 1986) through ``kornia.filters.canny``, with the low/high hysteresis thresholds
on the 0-255 scale of ``cv2.Canny``, the annotator of ControlNet (Zhang et al.,
arXiv:2302.05543; defaults 100/200). Like that annotator it does not blur first unless asked:
with ``sigma=0`` the edges agree with ``cv2.Canny`` on 94 % of pixels on the house data.
Hysteresis runs as a connected-component labelling (OpenCV, 8-connected): the same edges as
kornia's iterative hysteresis, which on a CPU costs 30-90 ms per 64 px image (it repeats a
convolution once per pixel of the longest weak chain) against 1.5 ms for the rest of Canny.
The search cannot use Canny (hysteresis and non-maximum suppression have no gradient), so
it compares a soft edge map (the same Sobel magnitude through a sigmoid around the low
threshold) with the drawn edges through their distance transform (chamfer matching,
Barrow et al. 1977): a line drawn a few pixels off still counts. Quality is the boundary
F-score of the BSDS benchmark (Martin et al. 2004): precision and recall of edge pixels
that have a counterpart within a pixel tolerance.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import kornia
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from engine.errors import check

LOW, HIGH = 100.0, 200.0  # ControlNet's Canny thresholds, 0-255 scale


def _check_thresholds(low: float, high: float) -> None:
    check(0 < low <= high, f"Canny thresholds must satisfy 0 < low <= high (0-255 scale). Got: {low}, {high}")


def _blur(grey: Tensor, sigma: float) -> Tensor:
    if sigma <= 0:
        return grey
    size = 2 * int(np.ceil(2 * sigma)) + 1
    return kornia.filters.gaussian_blur2d(grey, (size, size), (sigma, sigma))


def canny(x: Tensor, low: float = LOW, high: float = HIGH, sigma: float = 0.0) -> Tensor:
    """Canny edges of images ``(N, 3|1, H, W)`` in ``[-1, 1]``.

    Args:
        low, high: hysteresis thresholds on the 0-255 scale of ``cv2.Canny`` (unnormalised Sobel).
        sigma: Gaussian blur before the gradient, in pixels; 0 (default) blurs nothing, as ControlNet.

    Returns:
        ``(N, 1, H, W)`` float32, 1 on an edge, 0 elsewhere (no gradient).
    """
    _check_thresholds(low, high)
    check(x.ndim == 4 and x.shape[1] in (1, 3), f"canny expects (N, 1|3, H, W) images. Got: {tuple(x.shape)}")
    unit = (x.detach().float().cpu() + 1) / 2
    grey = kornia.color.rgb_to_grayscale(unit) if unit.shape[1] == 3 else unit
    # weak pixels 0.5, strong 1, after non-maximum suppression
    _, graded = kornia.filters.canny(_blur(grey, sigma), low / 255, high / 255, kernel_size=1, hysteresis=False)
    edges = np.stack([_hysteresis(g) for g in graded[:, 0].numpy()])
    return torch.from_numpy(edges).float()[:, None].to(x.device)


def _hysteresis(graded: np.ndarray) -> np.ndarray:
    """Keep the 8-connected groups of weak (0.5) and strong (1) pixels that hold a strong one: ``(H, W)`` bool."""
    count, labels = cv2.connectedComponents((graded > 0).astype(np.uint8), connectivity=8)
    keep = np.zeros(count, dtype=bool)
    keep[labels[graded > 0.75]] = True
    keep[0] = False  # the background label
    return keep[labels]


def canny_edges(image: np.ndarray, low: float = LOW, high: float = HIGH, sigma: float = 0.0) -> np.ndarray:
    """Canny edges of an image at the API edge.

    Args:
        image: ``(H, W, 3)`` or ``(H, W)``, ``uint8`` or float in ``[0, 1]``.
        low, high, sigma: as :func:`canny`.

    Returns:
        ``(H, W)`` bool, True on an edge.
    """
    check(image.ndim in (2, 3) and (image.ndim == 2 or image.shape[2] in (1, 3, 4)),
          f"expected an (H, W) or (H, W, 3) image. Got: {image.shape}")
    pixels = image[..., :3] if image.ndim == 3 else image[..., None]
    unit = pixels.astype(np.float32) / 255.0 if pixels.dtype == np.uint8 else pixels.astype(np.float32)
    x = torch.from_numpy(np.ascontiguousarray(unit)).permute(2, 0, 1)[None] * 2 - 1  # (1, C, H, W)
    return canny(x, low, high, sigma)[0, 0].numpy() > 0.5


def gradient_magnitude(x: Tensor) -> Tensor:
    """Unnormalised Sobel magnitude of the luma of ``x`` ``(N, 3|1, H, W)`` in ``[-1, 1]``, 0-255 scale.

    The same quantity Canny thresholds: a step of ``d`` grey levels gives about ``4 d``.
    Returns ``(N, 1, H, W)``; differentiable (``eps`` inside the root keeps flat regions finite).
    """
    unit = (x + 1) * 127.5
    grey = kornia.color.rgb_to_grayscale(unit) if unit.shape[1] == 3 else unit
    grad = kornia.filters.spatial_gradient(grey, normalized=False)  # (N, 1, 2, H, W)
    return (grad.square().sum(dim=2) + 1e-6).sqrt()


def soft_edges(x: Tensor, threshold: float = LOW, softness: float = 25.0) -> Tensor:
    """A differentiable edge map of ``x`` ``(N, 3|1, H, W)`` in ``[-1, 1]``: ``(N, 1, H, W)`` in ``[0, 1]``.

    ``sigmoid((|Sobel| - threshold) / softness)``, 0-255 scale: a pixel that Canny's low
    threshold would admit scores over 0.5. Without non-maximum suppression a step edge is
    two pixels wide; the distance tolerance of :func:`edge_loss` absorbs that.
    """
    return torch.sigmoid((gradient_magnitude(x) - threshold) / softness)


def distance_to_edges(edges: np.ndarray) -> np.ndarray:
    """Euclidean distance ``(H, W)`` float32 from each pixel to the nearest True pixel of ``edges``.

    With no edge at all every distance is ``H + W`` (farther than any pixel).
    """
    edges = np.asarray(edges, dtype=bool)
    check(edges.ndim == 2, f"an edge map must be (H, W). Got: {edges.shape}")
    if not edges.any():
        return np.full(edges.shape, float(sum(edges.shape)), dtype=np.float32)
    background = (~edges).astype(np.uint8)
    return cv2.distanceTransform(background, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)


def _as_map(a: np.ndarray, device: torch.device | str) -> Tensor:
    """``(H, W)`` array -> ``(1, 1, H, W)`` float32 tensor."""
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))[None, None].to(device)


@dataclass
class EdgeTarget:
    """Drawn edges prepared once for :func:`edge_loss`.

    ``edges`` ``(1, 1, H, W)`` float 0/1; ``near`` ``(1, 1, H, W)``: distance to the nearest drawn
    edge, in units of ``reach``, capped at 1; ``tolerance`` px: a render edge this close counts.
    """

    edges: Tensor
    near: Tensor
    tolerance: int
    reach: float

    @classmethod
    def from_map(cls, edges: np.ndarray | Tensor, tolerance: int = 2, reach: float = 8.0,
                 device: torch.device | str = "cpu") -> EdgeTarget:
        """``edges`` ``(H, W)`` bool/0-1; ``reach``: distance (px) beyond which a stray edge costs the most."""
        check(tolerance >= 0 and reach > 0, f"tolerance must be >= 0 and reach > 0. Got: {tolerance}, {reach}")
        e = np.asarray(edges.detach().cpu() if isinstance(edges, Tensor) else edges) > 0.5
        check(e.ndim == 2, f"an edge map must be (H, W). Got: {e.shape}")
        near = np.minimum(distance_to_edges(e) / reach, 1.0)
        return cls(_as_map(e, device), _as_map(near, device), int(tolerance), float(reach))


def edge_loss(soft: Tensor, target: EdgeTarget) -> Tensor:
    """Chamfer-style disagreement of a soft edge map ``(N, 1, H, W)`` with drawn edges: ``(N,)`` in ``[0, 2]``.

    Recall: each drawn edge pixel wants a render edge within ``tolerance`` px (a max-pool of
    the soft map), ``mean(1 - pooled)`` over drawn pixels. Precision: the soft-weighted mean
    distance of render edges to the drawing, ``sum(s * near) / (sum(s) + 1)``; the +1 keeps an
    edgeless render from dividing by zero, and recall stops it from winning.
    """
    check(soft.ndim == 4 and soft.shape[1] == 1 and soft.shape[-2:] == target.edges.shape[-2:],
          f"soft edges must be (N, 1, {target.edges.shape[-2]}, {target.edges.shape[-1]}). Got: {tuple(soft.shape)}")
    e, near = target.edges.to(soft), target.near.to(soft)
    k = 2 * target.tolerance + 1
    pooled = F.max_pool2d(soft, k, stride=1, padding=target.tolerance) if k > 1 else soft
    drawn = e.sum().clamp_min(1.0)
    recall = ((1 - pooled) * e).sum(dim=(1, 2, 3)) / drawn
    precision = (soft * near).sum(dim=(1, 2, 3)) / (soft.sum(dim=(1, 2, 3)) + 1.0)
    return recall + precision


@dataclass(frozen=True)
class EdgeScore:
    precision: float  # share of predicted edge pixels within the tolerance of a true one
    recall: float  # share of true edge pixels within the tolerance of a predicted one
    f: float  # harmonic mean


def edge_fscore(predicted: np.ndarray, truth: np.ndarray, tolerance: float = 2.0) -> EdgeScore:
    """Boundary F-score of two ``(H, W)`` edge maps with a distance tolerance in pixels.

    An empty prediction has precision 1, an empty truth recall 1 (nothing to miss); both empty
    scores 1. The tolerance is Euclidean (a pixel 2 px off diagonally, at 2.83 px, is not within 2).
    """
    p, t = np.asarray(predicted) > 0, np.asarray(truth) > 0
    check(p.shape == t.shape and p.ndim == 2, f"edge maps must be two (H, W) arrays of one shape. "
          f"Got: {p.shape}, {t.shape}")
    check(tolerance >= 0, f"tolerance must be >= 0. Got: {tolerance}")
    precision = float((distance_to_edges(t)[p] <= tolerance).mean()) if p.any() else 1.0
    recall = float((distance_to_edges(p)[t] <= tolerance).mean()) if t.any() else 1.0
    f = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return EdgeScore(precision, recall, f)


def resize_edges(edges: np.ndarray, side: int) -> np.ndarray:
    """An ``(N, N)`` edge map at ``side x side``: area averaging to shrink, so a 1 px line drawn on a
    large canvas keeps a trace (a pixel is an edge when a fifth of its area was), nearest to enlarge."""
    e = np.asarray(edges, dtype=np.float32)
    check(e.ndim == 2 and side >= 1, f"an edge map must be (H, W) and the side >= 1. Got: {e.shape}, {side}")
    if e.shape == (side, side):
        return e > 0.5
    interpolation = cv2.INTER_AREA if e.shape[0] > side else cv2.INTER_NEAREST
    return cv2.resize(e, (side, side), interpolation=interpolation) > 0.2


def edges_from_drawing(pixels: np.ndarray) -> np.ndarray:
    """Read a drawn edge map: ``(H, W[, C])`` image -> ``(H, W)`` bool.

    Lines may be white on black (ControlNet's convention, what ``main.py edges`` writes) or
    black on white (a pen on paper): edges are sparse, so the minority side of mid-grey is
    the edge side. An alpha channel, when present, marks the drawn pixels instead.
    """
    check(pixels.ndim in (2, 3), f"expected an (H, W) or (H, W, C) image. Got: {pixels.shape}")
    scale = 255.0 if pixels.dtype == np.uint8 else 65535.0 if pixels.dtype == np.uint16 else 1.0
    unit = pixels.astype(np.float32) / scale
    if unit.ndim == 3 and unit.shape[2] == 4 and float(unit[..., 3].min()) < 1.0:
        return unit[..., 3] >= 0.5
    grey = unit[..., :3].mean(axis=2) if unit.ndim == 3 else unit
    bright = grey >= 0.5
    return bright if bright.mean() <= 0.5 else ~bright


__all__ = ["LOW", "HIGH", "canny", "canny_edges", "gradient_magnitude", "soft_edges", "distance_to_edges",
           "EdgeTarget", "edge_loss", "EdgeScore", "edge_fscore", "resize_edges", "edges_from_drawing"]
