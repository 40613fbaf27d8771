"""Strokes and edges to image on a GAN: search the latent space for renders that honour a drawing.

The GAN route of iGAN (Zhu et al., "Generative Visual Manipulation on the Natural Image
Manifold", arXiv:1609.03552, Sec. 4): pick starts by scoring many random latents against the
constraints, then optimise each with gradients and rank the results by the objective. The
search is :class:`engine.ops.invert.LatentSearch` (Adam, NVlabs' schedule, W+ with the
Gaussian prior of W); this file only supplies the forward operators and their losses:
colour strokes as a masked colour constraint, in CIE Lab, on normalised-convolution blurs
(Knutsson & Westin 1993) of both render and strokes, so a rough stroke asks for a colour region
rather than a brush texture; drawn edges against a soft Sobel edge map with a distance-transform
tolerance (:mod:`engine.ops.edges`); kept pixels of a source image; and a realism term, the
discriminator's non-saturating score (arXiv:1406.2661), when a discriminator is at hand.
Departure from iGAN: W+ with a prior instead of z, and K candidates searched as one batch.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass

import cv2
import kornia
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from engine.convert import image_to_tensor, tensor_to_image
from engine.errors import check
from engine.jobs import CancelToken, Job, Progress
from engine.ops import degrade
from engine.ops.edges import LOW, EdgeTarget, edge_loss, resize_edges, soft_edges
from engine.ops.invert import InvertConfig, LatentSearch, StepRecord, WPrior, w_prior

log = logging.getLogger(__name__)


@dataclass
class SketchConfig:
    """Hyper-parameters of a sketch search; defaults measured on house-gan (``bench/sketch_quality.py``)."""

    mode: str = "w+"  # "w" or "w+"; W+ fits edges better (F 0.87 against 0.81 for W at 100 steps)
    # Strokes keep improving longer than edges: ΔE 10 agreement 0.82 at 200 steps, 0.86 at 300 (lr 0.2);
    # edges reach an F-score of 0.95 by 200.
    steps: int = 300
    candidates: int = 4  # K results from K different starts, searched as one batch
    screen: int = 64  # random latents scored (forward only) to choose the K starts
    screen_psi: float = 0.7  # truncation of the screened latents: inside the well-trained part of W
    lr: float = 0.2  # twice NVlabs' 0.1: +2 points of stroke agreement at 200 steps, edges unchanged
    colour: float = 1.0  # weight of the stroke colour term (MSE in CIE Lab / 50)
    edges: float = 1.0  # weight of the edge term (edge_loss, in [0, 2])
    keep: float = 1.0  # weight of the kept-pixel term (MSE in [-1, 1] RGB)
    # WPrior.nll weight. None: 0 when colour strokes are drawn (dense enough to pin the render down;
    # 0.001 cost 8 points of ΔE agreement), else 0.003 so edges alone do not lead to wild colours.
    latent_prior: float | None = None
    # weight of softplus(-D(x)), only with a discriminator. Off: on house-gan 0.05 cost 2 dB of PSNR on the
    # edge task for +0.03 F-score, and D doubles the time of a step.
    realism: float = 0.0
    # px at the model resolution: how far a stroke's colour spreads. Wider blurs cost agreement on
    # house-gan, which renders sharp colour borders poorly: 1.5 lost 6 points against 0.7, 0.7 one against 0.5.
    stroke_sigma: float = 0.5
    edge_tolerance: int = 2  # px: a render edge this close to a drawn one counts
    edge_reach: float = 8.0  # px: stray render edges cost more up to this distance
    edge_threshold: float = LOW  # soft edge map's midpoint, 0-255 Sobel scale (Canny's low)
    edge_softness: float = 25.0
    warm_steps: int = 20  # live mode: a short search from the last result
    warm_lr: float = 0.02
    preview_every: int = 10
    seed: int = 0
    w_samples: int = 2000


@dataclass
class Sketch:
    """What the user drew, all maps ``H x W`` (square; resized to the model's resolution).

    ``colour``: ``(H, W, 3)`` uint8 / float ``[0, 1]`` stroke colours; ``alpha``: ``(H, W)`` ``[0, 1]``
    stroke coverage (None with a colour: every pixel is painted); ``edges``: ``(H, W)`` bool drawn
    edges; ``keep``: ``(H, W)`` ``[0, 1]`` pixels of ``source`` ``(H, W, 3)`` that must stay.
    """

    colour: np.ndarray | None = None
    alpha: np.ndarray | None = None
    edges: np.ndarray | None = None
    keep: np.ndarray | None = None
    source: np.ndarray | None = None


@dataclass
class SketchCandidate:
    """One result: ``ws`` ``(1, num_ws, w_dim)``; ``image`` the render with kept pixels pasted back,
    ``render`` the generator's own picture, both ``(R, R, 3)`` uint8; ``loss`` and its ``terms``."""

    ws: Tensor
    image: np.ndarray
    render: np.ndarray
    loss: float
    terms: dict[str, float]


@dataclass
class SketchResult:
    candidates: list[SketchCandidate]  # best (lowest objective) first
    history: list[StepRecord]
    steps: int
    seconds: float
    warm: bool  # a live-mode search from a warm start

    @property
    def best(self) -> SketchCandidate:
        return self.candidates[0]


# ----------------------------------------------------------------------------- the drawing at model size


def _unit(pixels: np.ndarray) -> np.ndarray:
    scale = 255.0 if pixels.dtype == np.uint8 else 65535.0 if pixels.dtype == np.uint16 else 1.0
    return pixels.astype(np.float32) / scale


def _resize(a: np.ndarray, side: int) -> np.ndarray:
    """Area averaging to shrink (a thin line keeps a faint trace), nearest to enlarge."""
    if a.shape[0] == side:
        return a
    interpolation = cv2.INTER_AREA if a.shape[0] > side else cv2.INTER_NEAREST
    return cv2.resize(a, (side, side), interpolation=interpolation)


def _as_map(a: np.ndarray, device: torch.device | str) -> Tensor:
    """``(H, W)`` array -> ``(1, 1, H, W)`` float32 tensor."""
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))[None, None].to(device)


@dataclass
class SketchTarget:
    """A :class:`Sketch` at model resolution R as tensors (None where not drawn).

    ``colour`` ``(1, 3, R, R)`` in ``[-1, 1]`` and ``alpha`` ``(1, 1, R, R)``; ``edges`` an
    :class:`~engine.ops.edges.EdgeTarget`; ``keep`` ``(1, 1, R, R)`` 0/1 and ``source`` ``(1, 3, R, R)``.
    """

    colour: Tensor | None
    alpha: Tensor | None
    edges: EdgeTarget | None
    keep: Tensor | None
    source: Tensor | None


def prepare(drawing: Sketch, resolution: int, cfg: SketchConfig, device: torch.device | str = "cpu") -> SketchTarget:
    """Check a drawing and bring it to the model's resolution."""
    maps = {k: v for k, v in vars(drawing).items() if v is not None}
    check(any(k in maps for k in ("colour", "edges", "keep")),
          "a sketch needs strokes, edges or a keep mask. Got: nothing drawn")
    sizes = {k: tuple(v.shape[:2]) for k, v in maps.items()}
    check(len(set(sizes.values())) == 1 and all(h == w for h, w in sizes.values()),
          f"every sketch map must be one square size. Got: {sizes}")
    check(("keep" in maps) == ("source" in maps), f"a keep mask needs its source image and vice versa. "
          f"Got: {sorted(maps)}")
    check("alpha" not in maps or "colour" in maps, "stroke coverage (alpha) needs stroke colours. Got: no colour")
    R = resolution
    colour = alpha = keep = source = edge_target = None
    if "colour" in maps:
        rgb = _unit(maps["colour"])[..., :3]
        check(rgb.ndim == 3 and rgb.shape[2] == 3, f"stroke colours must be (H, W, 3). Got: {maps['colour'].shape}")
        a = np.clip(_unit(maps["alpha"]), 0, 1) if "alpha" in maps else np.ones(rgb.shape[:2], np.float32)
        a_small = _resize(a, R)
        rgb_small = _resize(rgb * a[..., None], R) / np.maximum(a_small, 1e-6)[..., None]  # premultiplied
        check(float(a_small.max()) > 0, "the stroke layer is empty. Got: alpha 0 everywhere")
        colour, alpha = image_to_tensor(np.clip(rgb_small, 0, 1), device), _as_map(a_small, device)
    if "edges" in maps:
        drawn = resize_edges(maps["edges"], R)
        edge_target = EdgeTarget.from_map(drawn, cfg.edge_tolerance, cfg.edge_reach, device)
    if "keep" in maps:
        keep = _as_map(_resize(np.asarray(maps["keep"], np.float32), R) >= 0.5, device)
        src = _unit(maps["source"])[..., :3]
        source = image_to_tensor(cv2.resize(src, (R, R), interpolation=cv2.INTER_AREA) if src.shape[0] != R else src,
                                 device)
    return SketchTarget(colour, alpha, edge_target, keep, source)


# ----------------------------------------------------------------------------- forward operators and losses


def stroke_blur(x: Tensor, alpha: Tensor, sigma: float) -> tuple[Tensor, Tensor]:
    """The stroke operator: normalised convolution of ``x`` ``(N, C, R, R)`` under coverage ``alpha`` ``(1, 1, R, R)``.

    Returns ``(blur(x * alpha) / blur(alpha), blur(alpha))``: the local stroke-weighted mean colour
    and how much stroke lies near each pixel. Both sides of the colour term go through it, so the
    strokes themselves are a zero of the loss whatever the blur.
    """
    if sigma <= 0:
        return x, alpha
    size = 2 * math.ceil(2.5 * sigma) + 1
    coverage = kornia.filters.gaussian_blur2d(alpha, (size, size), (sigma, sigma), border_type="constant")
    weighted = kornia.filters.gaussian_blur2d(x * alpha, (size, size), (sigma, sigma), border_type="constant")
    return weighted / coverage.clamp_min(1e-4), coverage


def _lab(x: Tensor) -> Tensor:
    """``(N, 3, R, R)`` in ``[-1, 1]`` -> CIE Lab / 50 (L in [0, 2]): distances there track ΔE, the figure reported.

    Lab fits strokes closer than RGB MSE (ΔE 10 agreement 0.70 against 0.63 on house-gan).
    """
    return kornia.color.rgb_to_lab(((x + 1) / 2).clamp(0, 1)) / 50


def _weighted_mse(a: Tensor, b: Tensor, weight: Tensor) -> Tensor:
    """Per-sample weighted MSE of ``(N, C, R, R)`` tensors: ``(N,)``."""
    return ((a - b).square().mean(dim=1, keepdim=True) * weight).sum(dim=(1, 2, 3)) / weight.sum().clamp_min(1e-8)


class SketchObjective:
    """The sketch's loss on renders ``(K, 3, R, R)`` in ``[-1, 1]``; see the module docstring."""

    def __init__(self, target: SketchTarget, cfg: SketchConfig, D: nn.Module | None = None):
        self.t, self.cfg = target, cfg
        self.D = D if cfg.realism > 0 else None
        if target.colour is not None:
            stroke_mean, self.stroke_weight = stroke_blur(target.colour, target.alpha, cfg.stroke_sigma)
            self.stroke_lab = _lab(stroke_mean)

    def terms(self, img: Tensor) -> dict[str, Tensor]:
        """Each active term per candidate, ``(K,)``, unweighted."""
        t, cfg, out = self.t, self.cfg, {}
        if t.colour is not None:
            mean, _ = stroke_blur(img, t.alpha, cfg.stroke_sigma)
            out["colour"] = _weighted_mse(_lab(mean), self.stroke_lab, self.stroke_weight)
        if t.edges is not None:
            soft = soft_edges(img, cfg.edge_threshold, cfg.edge_softness)
            out["edges"] = edge_loss(soft, t.edges)
        if t.keep is not None:
            out["keep"] = _weighted_mse(img, t.source, t.keep)
        if self.D is not None:
            out["realism"] = F.softplus(-_d_logits(self.D, img))
        return out

    def per_sample(self, img: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        """Weighted total ``(K,)`` and the terms."""
        terms = self.terms(img)
        weights = {"colour": self.cfg.colour, "edges": self.cfg.edges, "keep": self.cfg.keep,
                   "realism": self.cfg.realism}
        return sum(weights[k] * v for k, v in terms.items()), terms

    def __call__(self, img: Tensor) -> tuple[Tensor, Tensor]:
        """LatentSearch's objective: (mean total, mean fit error); the fit is the colour/keep MSE when drawn."""
        total, terms = self.per_sample(img)
        fit = terms.get("colour", terms.get("keep", total))
        return total.mean(), fit.detach().mean()


def _d_logits(D: nn.Module, img: Tensor) -> Tensor:
    """D's logit per image ``(K,)``, one image at a time: minibatch-std layers would mix the candidates."""
    c = torch.zeros(1, getattr(D, "c_dim", 0), device=img.device)
    return torch.cat([D(x[None], c if c.shape[1] else None).reshape(1) for x in img])


# ----------------------------------------------------------------------------- the search


def _prior_weight(cfg: SketchConfig, target: SketchTarget) -> float:
    if cfg.latent_prior is not None:
        return cfg.latent_prior
    return 0.0 if target.colour is not None else 0.003


def _check_config(cfg: SketchConfig) -> None:
    check(cfg.mode in ("w", "w+"), f"mode must be 'w' or 'w+'. Got: {cfg.mode!r}")
    check(cfg.steps >= 1 and cfg.warm_steps >= 1, f"steps must be >= 1. Got: {cfg.steps}, {cfg.warm_steps}")
    check(cfg.candidates >= 1 and cfg.screen >= cfg.candidates,
          f"need 1 <= candidates <= screen. Got: {cfg.candidates}, {cfg.screen}")
    check(cfg.lr > 0 and cfg.warm_lr > 0, f"learning rates must be > 0. Got: {cfg.lr}, {cfg.warm_lr}")


@torch.no_grad()
def choose_starts(G: nn.Module, objective: SketchObjective, prior: WPrior, cfg: SketchConfig,
                  width: int) -> Tensor:
    """The K latents ``(K, width, w_dim)`` that best fit the sketch among ``w_avg`` and ``screen - 1`` samples."""
    device = prior.w_avg.device
    gen = torch.Generator().manual_seed(cfg.seed)
    z = torch.randn([cfg.screen - 1, G.z_dim], generator=gen).to(device)
    c = None
    if getattr(G, "c_dim", 0) > 0:
        c = F.one_hot(torch.randint(G.c_dim, [cfg.screen - 1], generator=gen), G.c_dim).to(device, torch.float32)
    w = prior.w_avg.lerp(G.mapping(z, c)[:, 0], cfg.screen_psi)  # (S-1, w_dim)
    w = torch.cat([prior.w_avg[None], w])
    scores = []
    for chunk in w.split(16):  # bounded memory for a large screen
        img = G.synthesis(chunk[:, None].expand(-1, G.num_ws, -1), noise_mode="const")
        scores.append(objective.per_sample(img)[0])
    best = torch.cat(scores).argsort()[: cfg.candidates]
    return w[best][:, None].expand(-1, width, -1).clone()


def sketch(G: nn.Module, drawing: Sketch, config: SketchConfig | None = None, *, D: nn.Module | None = None,
           warm_start: Tensor | None = None, prior: WPrior | None = None,
           progress: Progress | None = None, cancel: CancelToken | None = None) -> SketchResult:
    """Find latents whose renders honour ``drawing``; K ranked candidates, or one in live mode.

    Args:
        G: a StyleGAN generator from ``engine.models`` (left unchanged).
        drawing: the strokes, edges and keep mask, :class:`Sketch`.
        config: :class:`SketchConfig`.
        D: the generator's discriminator, for the realism term (``config.realism > 0``).
        warm_start: live mode: the last result's ``ws`` ``(1, 1|num_ws, w_dim)``; a short search
            (``warm_steps`` at ``warm_lr``, no perturbation) continues from it and returns one candidate.
        prior: :func:`engine.ops.invert.w_prior` of G, to reuse between calls (computed when None).
        progress, cancel: the job protocol; a preview of the first candidate every ``preview_every`` steps.

    Returns:
        :class:`SketchResult`, candidates best first.
    """
    cfg = config or SketchConfig()
    _check_config(cfg)
    for attr in ("synthesis", "mapping", "num_ws", "w_dim", "img_resolution"):
        check(hasattr(G, attr), f"G must be a StyleGAN generator (engine.models). Got: no {attr!r}")
    start_time = time.perf_counter()
    device = next(G.parameters()).device
    R = int(G.img_resolution)
    target = prepare(drawing, R, cfg, device)
    objective = SketchObjective(target, cfg, D)
    prior = prior or w_prior(G, cfg.w_samples, cfg.seed)
    warm = warm_start is not None
    steps = cfg.warm_steps if warm else cfg.steps
    search_cfg = InvertConfig(mode=cfg.mode, steps=steps, lr=cfg.warm_lr if warm else cfg.lr,
                              w_noise=0.0 if warm else InvertConfig.w_noise, latent_prior=_prior_weight(cfg, target),
                              preview_every=cfg.preview_every, seed=cfg.seed, w_samples=cfg.w_samples)
    job = Job(steps, progress, cancel)
    search = LatentSearch(G, degrade.identity(R), None, search_cfg, job, steps, objective=objective)
    if warm:
        check(warm_start.ndim == 3 and warm_start.shape[0] == 1 and warm_start.shape[1] in (1, G.num_ws)
              and warm_start.shape[2] == G.w_dim,
              f"warm_start must be (1, 1|{G.num_ws}, {G.w_dim}). Got: {tuple(warm_start.shape)}")
        starts = warm_start.to(device, torch.float32)
    else:
        starts = choose_starts(G, objective, prior, cfg, 1 if cfg.mode == "w" else G.num_ws)
    job.check()
    latents = search.latent_search(starts, prior, steps, None, "live" if warm else "sketch search")
    candidates = _rank(G, latents, objective, target)
    log.info("sketch: %d candidate(s), best loss %.4f, %d steps in %.1f s", len(candidates), candidates[0].loss,
             steps, time.perf_counter() - start_time)
    return SketchResult(candidates, search.history, steps, time.perf_counter() - start_time, warm)


@torch.no_grad()
def _rank(G: nn.Module, latents: Tensor, objective: SketchObjective, target: SketchTarget) -> list[SketchCandidate]:
    ws = latents.expand(-1, G.num_ws, -1)
    renders = G.synthesis(ws, noise_mode="const").clamp(-1, 1)  # (K, 3, R, R)
    totals, terms = objective.per_sample(renders)
    images = renders if target.keep is None else degrade.project(degrade.masked(target.keep), renders,
                                                                 target.source)
    out = [SketchCandidate(ws[k:k + 1].cpu().clone(), tensor_to_image(images[k]), tensor_to_image(renders[k]),
                           float(totals[k]), {name: float(v[k]) for name, v in terms.items()})
           for k in range(len(ws))]
    return sorted(out, key=lambda c: c.loss)


# ----------------------------------------------------------------------------- the colour figure


def delta_e(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """CIE76 colour difference ``(H, W)`` of two ``(H, W, 3)`` sRGB images (uint8 / float ``[0, 1]``).

    Euclidean distance in CIE Lab (kornia); 100 from black to white, about 2.3 a just noticeable one.
    """
    lab = [kornia.color.rgb_to_lab(torch.from_numpy(np.ascontiguousarray(_unit(x)[..., :3])).permute(2, 0, 1)[None])
           for x in (a, b)]
    return (lab[0] - lab[1]).square().sum(dim=1).sqrt()[0].numpy()


def stroke_agreement(image: np.ndarray, colour: np.ndarray, stroked: np.ndarray, threshold: float = 10.0) -> float:
    """Share of stroked pixels (``stroked`` ``(H, W)`` bool) whose ``image`` colour is within ΔE ``threshold``
    of ``colour``, both ``(H, W, 3)``."""
    check(image.shape[:2] == colour.shape[:2] == stroked.shape, f"image, colours and stroke mask must share one "
          f"size. Got: {image.shape[:2]}, {colour.shape[:2]}, {stroked.shape}")
    check(bool(stroked.any()), "no stroked pixel to measure. Got: an empty stroke mask")
    return float((delta_e(image, colour)[stroked] <= threshold).mean())


__all__ = ["SketchConfig", "Sketch", "SketchCandidate", "SketchResult", "SketchTarget", "SketchObjective", "prepare",
           "stroke_blur", "choose_starts", "sketch", "delta_e", "stroke_agreement"]
