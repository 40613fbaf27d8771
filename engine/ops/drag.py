"""Point-based drag editing: move handle points of a generated image onto target points.

DragGAN (Pan et al., "Drag Your GAN", arXiv:2305.10973, Sec. 3): each step renders the latent
with the feature map ``F`` of one synthesis block, then (Eq. 1) *motion supervision* pulls a
small disc of features around each handle ``p`` one pixel towards its target ``t``,
``sum_q |F(q + d) - sg(F(q))|_1`` with ``d = (t - p) / |t - p|`` and ``F(q + d)`` sampled
bilinearly, plus ``lambda |(F - F_0) * (1 - M)|_1`` keeping the features outside the
editable mask ``M`` as they were; Adam updates the first W+ slots only. Then (Eq. 2) *point
tracking* moves each handle to the pixel, within a radius ``r2``, whose feature is nearest in
L1 to the handle's feature in the first image. It stops when every handle is within
``stop_distance`` pixels of its target.

Departures: features are sampled from the block's own map at image coordinates instead of
resizing the whole map to image size first (the same values at pixel centres, without a
``(C, R, R)`` copy, which is 1 GB at 1024 px); the latent is optimised as a delta on the
start latent, so the edit stack can store it and re-render the result bit for bit; radii,
learning rate and feature block default by resolution (see :class:`DragConfig`); a ``stop``
token ends the search early and keeps the result (``cancel`` discards it).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from engine.convert import tensor_to_image
from engine.errors import GanvasError, check
from engine.jobs import CancelToken, Job, Progress
from engine.ops.edit import DragEdit

log = logging.getLogger(__name__)

Point = tuple[float, float]  # (x, y) in pixels of the generator's image; (0, 0) is the top-left pixel's centre
MODES = ("w", "w+")


@dataclass
class DragConfig:
    """Hyper-parameters of one drag. ``None`` fields are chosen from the model's resolution
    (:func:`resolved_config`); measured on ``house-gan`` (64 px) by ``bench/drag.py``."""

    mode: str = "w+"  # "w+": one w per optimised slot; "w": one w shared by the optimised slots
    # Slots optimised, from the first; None: 6, or all of a smaller network's. DragGAN optimises W+ slots
    # 0-5 of 18. StyleGAN2 spends one slot on the 4 px block and two on each block after it, so slots
    # 0-5 reach the first 32 px conv at every resolution: the same layers here (house-gan: 4 slots need
    # 55 steps to arrive, 6 need 36, 8 need 32 and change more of the image).
    layers: int | None = None
    feature_block: int | None = None  # resolution of the block whose output is F; None: min(128, R / 2)
    r1: float | None = None  # motion-supervision disc radius, image px; None: max(3 R / 512, 2) (13 px at 64)
    # tracking search radius, image px; None: max(12 R / 512, 3). Small enough that the handle cannot jump
    # onto a look-alike, large enough for the ~0.3 px a house-gan step moves it (3 and 6 arrive alike there)
    r2: float | None = None
    lr: float | None = None  # Adam step; None: 2e-3 (the paper's) at 512 px and up, more for smaller models
    lambda_mask: float = 10.0  # the paper's weight on the features outside the editable mask
    max_steps: int = 300
    stop_distance: float = 2.0  # px; DragGAN stops at max(2, 2 R / 512)
    preview_every: int = 1  # steps between previews (the last step always has one)


@dataclass
class DragPreview:
    """What each step reports as its progress preview: the render and where the handles are now."""

    image: np.ndarray  # (R, R, 3) uint8
    points: list[Point]
    targets: list[Point]
    step: int


@dataclass
class DragResult:
    """One drag's outcome.

    ``latent``: ``start + delta``, ``(1, num_ws, w_dim)``; ``delta``: ``(num_ws, w_dim)``, zero
    beyond the optimised slots; ``points``: the handles' tracked positions at the end;
    ``distances[s][i]``: handle ``i``'s distance to its target (px) after ``s`` steps;
    ``stopped``: "arrived", "max_steps" or "user".
    """

    latent: Tensor
    delta: Tensor
    handles: list[Point]
    targets: list[Point]
    points: list[Point]
    steps: int
    seconds: float
    distances: list[list[float]]
    stopped: str
    image: np.ndarray
    config: DragConfig = field(default_factory=DragConfig)

    @property
    def arrived(self) -> bool:
        return self.stopped == "arrived"

    def edit(self, name: str = "drag") -> DragEdit:
        """The result as an entry of the edit stack (``engine.ops.edit.apply_edits`` adds the delta)."""
        return DragEdit(self.delta.clone(), tuple(self.handles), tuple(self.targets), name)


# ----------------------------------------------------------------------------- configuration


def feature_blocks(G: nn.Module) -> list[int]:
    """Resolutions of G's synthesis blocks, whose outputs can serve as F (StyleGAN2 family only)."""
    syn = getattr(G, "synthesis", None)
    blocks = getattr(syn, "block_resolutions", None)
    check(blocks is not None, "drag editing needs a StyleGAN2 synthesis network (per-resolution blocks). "
                              f"Got: {type(syn).__name__}")
    return [int(r) for r in blocks]


def resolved_config(G: nn.Module, config: DragConfig | None = None) -> DragConfig:
    """``config`` with every ``None`` replaced by its default for G's resolution ``R``.

    Feature block: DragGAN reads the 128 px block at 256-1024 px (its ``feat[5]``); a smaller
    model has no such block and uses its R/2 one: fine enough to place a handle to a pixel or two,
    and not the last block, which mostly carries colour for the final ToRGB. On house-gan (10 seeds,
    ``bench/drag.py`` set-up) the 32 px block arrives 10/10 in a median 36 steps, the 16 px block
    10/10 in 40, the 64 px block 7/8.
    """
    cfg = DragConfig(**vars(config)) if config is not None else DragConfig()
    R = int(G.img_resolution)
    blocks = feature_blocks(G)
    if cfg.feature_block is None:
        cfg.feature_block = max(r for r in blocks if r <= min(128, max(R // 2, blocks[0])))
    if cfg.layers is None:
        cfg.layers = min(6, int(G.num_ws))
    if cfg.r1 is None:
        cfg.r1 = max(3.0 * R / 512, 2.0)
    if cfg.r2 is None:
        cfg.r2 = max(12.0 * R / 512, 3.0)
    if cfg.lr is None:
        # 64 px (house-gan, median steps to arrive): 5e-3 66, 1e-2 36, 2e-2 22 but the image changes more
        # far from the handle. 512 px and up: the paper's 2e-3; geometric in between.
        t = min(max((math.log2(R) - 6) / 3, 0.0), 1.0)
        cfg.lr = 1e-2 ** (1 - t) * 2e-3 ** t
    check(cfg.mode in MODES, f"mode must be one of {MODES}. Got: {cfg.mode!r}")
    check(1 <= cfg.layers <= G.num_ws, f"layers must be in 1 .. {G.num_ws}. Got: {cfg.layers}")
    check(cfg.feature_block in blocks, f"feature_block must be one of {blocks}. Got: {cfg.feature_block}")
    check(cfg.r1 > 0 and cfg.r2 >= 1, f"r1 must be > 0 and r2 >= 1. Got: {cfg.r1}, {cfg.r2}")
    check(cfg.lr > 0 and cfg.max_steps >= 0 and cfg.stop_distance >= 0,
          f"lr > 0, max_steps >= 0 and stop_distance >= 0 required. Got: {cfg.lr}, {cfg.max_steps}, "
          f"{cfg.stop_distance}")
    return cfg


# ----------------------------------------------------------------------------- features


def sample_features(feat: Tensor, points: Tensor, resolution: int) -> Tensor:
    """Bilinear features at image points: ``feat`` ``(1, C, h, w)``, ``points`` ``(K, 2)`` (x, y)
    in pixels of an ``resolution``-px image -> ``(K, C)``.

    Same values as resizing ``feat`` to the image size (bilinear, half-pixel centres, edges
    clamped) and reading it at ``points``, without making the resized map.
    """
    grid = (points.to(feat) + 0.5) * (2.0 / resolution) - 1.0  # pixel centres -> [-1, 1]
    out = F.grid_sample(feat, grid.reshape(1, 1, -1, 2), mode="bilinear", padding_mode="border",
                        align_corners=False)  # (1, C, 1, K)
    return out[0, :, 0].t()


def _disc(center: Tensor, radius: float, resolution: int) -> Tensor:
    """Integer pixel positions ``(K, 2)`` (x, y) inside the image within ``radius`` of ``center`` (2,)."""
    r = int(math.floor(radius))
    offsets = torch.arange(-r - 1, r + 2, dtype=torch.float32)
    yy, xx = torch.meshgrid(offsets, offsets, indexing="ij")
    grid = torch.stack([xx.reshape(-1), yy.reshape(-1)], dim=1) + center.round()  # (M, 2)
    inside = ((grid - center).norm(dim=1) <= radius) & (grid >= 0).all(dim=1) & (grid <= resolution - 1).all(dim=1)
    return grid[inside]


def track_points(feat: Tensor, points: Tensor, refs: Tensor, radius: float, resolution: int) -> Tensor:
    """DragGAN Eq. 2: each point moves to the pixel within ``radius`` of it whose feature is
    nearest (L1) to its reference feature.

    ``feat`` ``(1, C, h, w)``; ``points`` ``(N, 2)`` (x, y) image px; ``refs`` ``(N, C)`` -> ``(N, 2)``.
    """
    out = points.clone()
    with torch.no_grad():
        for i in range(points.shape[0]):
            candidates = _disc(points[i], radius, resolution)
            if candidates.shape[0] == 0:
                continue
            cost = (sample_features(feat, candidates, resolution) - refs[i]).abs().sum(dim=1)  # (K,)
            out[i] = candidates[int(cost.argmin())]
    return out


def motion_loss(feat: Tensor, points: Tensor, targets: Tensor, radius: float, resolution: int) -> Tensor:
    """DragGAN Eq. 1, first term: ``sum_i mean_q |F(q + d_i) - sg(F(q))|`` over the disc of
    ``radius`` around each handle that is more than 1 px from its target (a unit step would
    overshoot a nearer one). ``points``, ``targets``: ``(N, 2)``; returns a scalar."""
    loss = feat.new_zeros(())
    for p, t in zip(points, targets):
        gap = (t - p).norm()
        if float(gap) <= 1.0:
            continue
        q = _disc(p, radius, resolution)
        if q.shape[0] == 0:
            continue
        d = (t - p) / gap
        here = sample_features(feat, q, resolution).detach()
        ahead = sample_features(feat, q + d, resolution)
        loss = loss + (ahead - here).abs().mean()
    return loss


def fixed_region_loss(feat: Tensor, feat0: Tensor, fixed: Tensor) -> Tensor:
    """DragGAN Eq. 1, second term: ``mean |(F - F_0) * fixed|``; ``fixed`` ``(1, 1, h, w)`` in [0, 1]."""
    return ((feat - feat0) * fixed).abs().mean()


def _fixed_map(mask: np.ndarray | Tensor, resolution: int, size: int, device: torch.device) -> Tensor:
    """The region to keep, ``1 - editable``, area-resized to the feature map: ``(1, 1, size, size)``."""
    m = torch.as_tensor(np.asarray(mask) if not isinstance(mask, Tensor) else mask).to(device, torch.float32)
    if m.ndim == 3:
        m = m[..., 0] if m.shape[-1] in (1, 3, 4) else m[0]
    check(m.ndim == 2, f"the mask must be (H, W). Got: {tuple(m.shape)}")
    m = (m > 0).float()[None, None]
    if m.shape[-1] != resolution or m.shape[-2] != resolution:
        m = F.interpolate(m, size=(resolution, resolution), mode="nearest")
    return 1.0 - F.adaptive_avg_pool2d(m, size)


# ----------------------------------------------------------------------------- the search


def _as_points(points: Sequence[Sequence[float]], what: str, resolution: int) -> Tensor:
    try:
        t = torch.tensor([[float(p[0]), float(p[1])] for p in points], dtype=torch.float32).reshape(-1, 2)
    except (TypeError, ValueError, IndexError):
        raise GanvasError(f"{what} must be (x, y) pairs. Got: {points!r}") from None
    inside = bool(((t >= 0) & (t <= resolution - 1)).all()) and bool(torch.isfinite(t).all())
    check(inside, f"{what} must lie in the {resolution} x {resolution} image (0 .. {resolution - 1}). "
                  f"Got: {t.tolist()}")
    return t


def _compose(ws0: Tensor, delta: Tensor, layers: int) -> Tensor:
    """``ws0`` ``(1, num_ws, w_dim)`` plus ``delta`` ``(1, layers | 1, w_dim)`` on its first ``layers`` slots."""
    head = delta.expand(1, layers, -1)
    rest = ws0.new_zeros(1, ws0.shape[1] - layers, ws0.shape[2])
    return ws0 + torch.cat([head, rest], dim=1)


def _points_list(t: Tensor) -> list[Point]:
    return [(float(x), float(y)) for x, y in t.tolist()]


def drag(G: nn.Module, ws: Tensor, handles: Sequence[Sequence[float]], targets: Sequence[Sequence[float]],
         mask: np.ndarray | Tensor | None = None, config: DragConfig | None = None, *,
         progress: Progress | None = None, cancel: CancelToken | None = None,
         stop: CancelToken | None = None) -> DragResult:
    """Drag ``handles`` of the image of ``ws`` onto ``targets`` (DragGAN).

    Args:
        G: a StyleGAN2-family generator (``engine.models``), left unchanged.
        ws: the start latent ``(1, num_ws, w_dim)`` (with any earlier edits applied).
        handles, targets: equally many ``(x, y)`` points in pixels of G's ``R x R`` image.
        mask: optional ``(H, W)`` array (any size; resized to R), non-zero where the image may
            change; the features elsewhere are held in place (weight ``lambda_mask``).
        config: :class:`DragConfig`; ``None`` fields default by resolution.
        progress, cancel: the job protocol; every ``preview_every`` steps the preview is a
            :class:`DragPreview` (render + tracked handles). A set ``cancel`` raises Cancelled.
        stop: a token that ends the search after the current step and returns what it has.

    Returns:
        :class:`DragResult`.
    """
    cfg = resolved_config(G, config)
    R = int(G.img_resolution)
    check(ws.ndim == 3 and tuple(ws.shape) == (1, G.num_ws, G.w_dim),
          f"ws must be (1, {G.num_ws}, {G.w_dim}). Got: {tuple(ws.shape)}")
    p0, tgt = _as_points(handles, "handles", R), _as_points(targets, "targets", R)
    check(len(p0) >= 1 and len(p0) == len(tgt),
          f"give one target per handle, at least one pair. Got: {len(p0)} handles, {len(tgt)} targets")
    start = time.perf_counter()
    device = next(G.parameters()).device
    ws0 = ws.detach().to(device, torch.float32)
    block = f"b{cfg.feature_block}"
    job = Job(cfg.max_steps, progress, cancel)

    def render(latent: Tensor) -> tuple[Tensor, Tensor]:
        img, feats = G.synthesis(latent, noise_mode="const", return_features=True)
        return img, feats[block]

    with torch.no_grad():
        _, feat0 = render(ws0)
    refs = sample_features(feat0, p0.to(device), R)  # (N, C): what each handle looks like
    fixed = None if mask is None else _fixed_map(mask, R, feat0.shape[-1], device)
    width = 1 if cfg.mode == "w" else cfg.layers
    delta = torch.zeros(1, width, G.w_dim, device=device, requires_grad=True)
    opt = torch.optim.Adam([delta], lr=cfg.lr)
    points, tgt_d = p0.to(device), tgt.to(device)
    distances: list[list[float]] = []
    step, stopped = 0, "max_steps"
    while True:
        job.check()
        img, feat = render(_compose(ws0, delta, cfg.layers))
        if step > 0:
            points = track_points(feat, points, refs, cfg.r2, R)
        gaps = (tgt_d - points).norm(dim=1)
        distances.append([round(float(g), 3) for g in gaps])
        if bool((gaps <= cfg.stop_distance).all()):
            stopped = "arrived"
        elif stop is not None and stop.cancelled:
            stopped = "user"
        if step > 0 and (stopped != "max_steps" or step == cfg.max_steps or step % cfg.preview_every == 0):
            preview = DragPreview(tensor_to_image(img.detach()), _points_list(points.cpu()), _points_list(tgt), step)
            job.step(step, f"step {step}, {float(gaps.max()):.1f} px to go", preview=preview)
        if stopped != "max_steps" or step == cfg.max_steps:
            break
        loss = motion_loss(feat, points, tgt_d, cfg.r1, R)
        if fixed is not None:
            loss = loss + cfg.lambda_mask * fixed_region_loss(feat, feat0, fixed)
        if loss.requires_grad:  # every handle within 1 px of its target and no mask: nothing to move
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        step += 1
    with torch.no_grad():
        full = _compose(ws0.new_zeros(ws0.shape), delta.detach(), cfg.layers)[0]  # (num_ws, w_dim)
        latent = ws0 + full  # the very sum DragEdit applies: the stack re-renders this bit for bit
        image = tensor_to_image(G.synthesis(latent, noise_mode="const"))
    seconds = time.perf_counter() - start
    log.info("drag: %s after %d steps, %.2f s, distances %s", stopped, step, seconds, distances[-1])
    return DragResult(latent.cpu(), full.cpu(), _points_list(p0), _points_list(tgt), _points_list(points.cpu()),
                      step, seconds, distances, stopped, image, cfg)


def parse_points(text: str) -> tuple[list[Point], list[Point]]:
    """``"x1,y1:tx1,ty1;x2,y2:tx2,ty2"`` -> (handles, targets)."""
    handles, targets = [], []
    for pair in filter(None, (p.strip() for p in text.split(";"))):
        try:
            a, b = pair.split(":")
            hx, hy = (float(v) for v in a.split(","))
            tx, ty = (float(v) for v in b.split(","))
        except ValueError:
            raise GanvasError(f"points must read x,y:tx,ty[;x,y:tx,ty...]. Got: {pair!r}") from None
        handles.append((hx, hy))
        targets.append((tx, ty))
    check(bool(handles), f"give at least one handle:target pair. Got: {text!r}")
    return handles, targets


__all__ = ["drag", "DragConfig", "DragResult", "DragPreview", "Point", "resolved_config", "feature_blocks",
           "sample_features", "track_points", "motion_loss", "fixed_region_loss", "parse_points", "MODES"]
