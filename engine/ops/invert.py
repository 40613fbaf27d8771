"""Latent search ``A(G(w)) ≈ y``: GAN inversion and the inverse problems a generator prior solves.

W and W+: the projector of NVlabs/stylegan2-ada-pytorch (Karras et al., arXiv:1912.04958,
Sec. 5 and App. D): Adam from ``w_avg``, learning-rate ramp up and cosine ramp down, a
decaying Gaussian perturbation of ``w`` scaled by W's spread, and (optionally) per-layer
noise maps kept white by a multi-scale autocorrelation penalty. W+ optimises one
``w`` per synthesis layer (Abdal et al., Image2StyleGAN, arXiv:1904.03189). Pivotal
tuning (Roich et al., PTI, arXiv:2106.05744) then fine-tunes the synthesis weights on a
pivot latent, with a locality regulariser that keeps renders of latents around the
pivot unchanged. The forward operator ``A`` (``engine.ops.degrade``) makes the same
search an inpainter, a coloriser or a super-resolver (PULSE, arXiv:2003.03808).
Departures: the loss is ``engine.ops.losses.Distance`` (LPIPS only when its weights are
on disk); PTI's locality radius is measured in units of W's spread rather than fixed.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from engine.convert import image_to_tensor, tensor_to_image
from engine.errors import GanvasError, check
from engine.jobs import CancelToken, Job, Progress
from engine.ops import degrade, losses
from engine.ops.degrade import Operator
from engine.ops.losses import Distance, DistanceWeights, LPIPS

log = logging.getLogger(__name__)

MODES = ("w", "w+", "pti")
_AUTO = "auto"


@dataclass
class InvertConfig:
    """Hyper-parameters of one search. Defaults aim at a 64 px, ~1M-parameter G on one CPU core
    (about 25 latent steps/s, 10 tuning steps/s): W+ in ~20 s, PTI in ~50 s (``bench/invert_quality.py``).
    """

    mode: str = "w+"  # "w", "w+" or "pti" (a W+ pivot, then weight tuning)
    # Latent steps (the pivot's, for PTI). None: 500, or 200 when several samples are averaged (x4 SR, mean
    # of 8: 22.95 dB at 200 steps, 22.94 at 500, in half the time; bench/results/invert_superres.md).
    steps: int | None = None
    lr: float = 0.1  # NVlabs' value; measured best for W+ too (0.05 loses ~0.5 dB at 500 steps)
    lr_rampup: float = 0.05  # fraction of steps
    lr_rampdown: float = 0.25  # fraction of steps, cosine
    w_noise: float = 0.05  # initial perturbation of w, in units of W's spread (NVlabs)
    w_noise_ramp: float = 0.75  # fraction of steps over which the perturbation fades
    optimize_noise: bool = False  # measured no gain on the house model, and edits would have to carry the maps
    noise_reg: float = 1e5  # NVlabs' weight on the noise autocorrelation penalty
    # Far from the mapping's output, G paints wild colours where only luma is seen and hides texture in
    # what a down-sampler averages away; WPrior.nll keeps codes near it. None: 0 for inversion, else 0.003.
    latent_prior: float | None = None
    consistent: bool = True  # inverse problems: project the render onto A(x) = y (keeps the known data)
    # K > 1: K searches from K starts (w_avg, then random w) run as one batch, and the answer is the mean of
    # their observation-consistent images: a posterior-mean estimate, the least squared error when the data
    # leave the details open, but softer than any one of them (x4 SR: one guess loses to bicubic, the mean
    # of 8 beats it, bench/results/invert_superres.md). The latent is the best-fitting candidate's.
    # None: 8 for super-resolution with a generator up to 128 px, else 1 (``with_defaults``).
    samples: int | None = None
    pti_steps: int = 400
    # PTI uses 3e-4 for 350 steps at 1024 px; a 64 px net this small needs 5e-3 (+3 dB over 3e-4 at 400 steps)
    pti_lr: float = 5e-3
    # PTI's 0.1 let random samples drift to 22 dB of their original; 1.0 keeps them at 25 dB for -0.6 dB
    locality: float = 1.0
    locality_radius: float = 1.0  # distance of the regulariser's latents, in units of W's spread
    locality_every: int = 4  # PTI regularises every step; every 4th costs a third of the time
    preview_every: int = 10  # steps between preview images
    seed: int = 0
    w_samples: int = 2000  # mapping samples for W's spread (10 000 in NVlabs; 2 000 is within 1 %)
    distance: DistanceWeights = field(default_factory=DistanceWeights)


@dataclass
class StepRecord:
    step: int
    loss: float
    psnr: float  # of the observation fit, dB


@dataclass
class InversionResult:
    """What one search returns.

    ``latent``: ``(1, 1, w_dim)`` for W (broadcast to every layer) or ``(1, num_ws, w_dim)``;
    ``image``: the answer ``(R, R, 3)`` uint8: the render (tuned weights and noise maps applied), made
    consistent with the observation for inverse problems (known pixels kept, luma exact, ...);
    ``render``: the render itself, before that projection (equal to ``image`` for inversion);
    ``psnr``/``ssim``/``lpips``: of ``image`` against ``truth`` when given, else against the observation;
    ``psnr_observed``: of the render's observation ``A(G(w))`` against the observation;
    ``psnr_unseen``: PSNR on pixels the operator hides (mask holes), when ``truth`` is given;
    ``weights_delta``: PTI's tuned-minus-original synthesis weights (apply with
    :func:`tuned_generator`); ``noise``: optimised unit noise maps, one per conv layer;
    ``candidates``: the latents of several samples (``InvertConfig.samples``), whose consistent renders
    ``image`` averages.
    """

    mode: str
    task: str
    latent: Tensor
    image: np.ndarray
    history: list[StepRecord]
    psnr: float
    ssim: float
    lpips: float | None
    psnr_observed: float
    psnr_unseen: float | None
    distance: str
    steps: int
    seconds: float
    render: np.ndarray
    num_ws: int
    noise: list[Tensor] | None = None
    weights_delta: dict[str, Tensor] | None = None
    pivot_psnr: float | None = None  # PTI: PSNR of the pivot before tuning
    candidates: Tensor | None = None  # (K, num_ws, w_dim) when ``image`` is the mean of K candidates' answers

    @property
    def ws(self) -> Tensor:
        """The latent broadcast to ``(1, num_ws, w_dim)``."""
        return self.latent if self.latent.shape[1] > 1 else self.latent.expand(1, self.num_ws, -1)


# ----------------------------------------------------------------------------- helpers


def _lr_at(cfg: InvertConfig, t: float, base: float) -> float:
    """NVlabs' schedule: linear ramp up, cosine ramp down; ``t`` in [0, 1]."""
    ramp = min(1.0, (1.0 - t) / cfg.lr_rampdown)
    ramp = 0.5 - 0.5 * math.cos(ramp * math.pi)
    return base * ramp * min(1.0, t / cfg.lr_rampup)


@dataclass
class WPrior:
    """Statistics of W from mapped samples.

    ``w_avg`` (w_dim,); ``w_std``: RMS distance of samples from ``w_avg`` (NVlabs' ``w_std``);
    ``mean`` and ``whiten`` (w_dim,), (w_dim, w_dim): a Gaussian fit in the "P_N" space of Zhu et al.
    (arXiv:2012.09036), where the mapping's last leaky ReLU is undone so that W looks Gaussian.
    """

    w_avg: Tensor
    w_std: float
    mean: Tensor
    whiten: Tensor

    def nll(self, latent: Tensor) -> Tensor:
        """Mean squared Mahalanobis norm per dimension of ``latent`` (1, k, w_dim); ~1 for samples."""
        v = _unleak(latent) - self.mean
        return (v @ self.whiten).square().mean()


def _unleak(w: Tensor) -> Tensor:
    """Inverse of the mapping's last activation (leaky ReLU, slope 0.2; the gain cancels in whitening)."""
    return torch.where(w >= 0, w, w * 5.0)


@torch.no_grad()
def w_prior(G: nn.Module, n: int = 2000, seed: int = 0) -> WPrior:
    """:class:`WPrior` of ``G`` from ``n`` mapped standard-normal z (random labels if conditional)."""
    gen = torch.Generator().manual_seed(seed)
    device = next(G.parameters()).device
    n = max(n, 4 * G.w_dim)  # a full covariance needs several samples per dimension
    z = torch.randn([n, G.z_dim], generator=gen).to(device)
    c = None
    if getattr(G, "c_dim", 0) > 0:
        c = F.one_hot(torch.randint(G.c_dim, [n], generator=gen), G.c_dim).to(device, torch.float32)
    w = G.mapping(z, c)[:, 0]  # (n, w_dim)
    w_avg = G.w_avg.to(device) if hasattr(G, "w_avg") and float(G.w_avg.abs().sum()) > 0 else w.mean(0)
    w_std = float((w - w_avg).square().sum(dim=1).mean().sqrt())
    v = _unleak(w).double()
    mean = v.mean(0)
    cov = torch.cov((v - mean).t()) + 1e-6 * torch.eye(v.shape[1], dtype=v.dtype, device=device)
    evals, evecs = torch.linalg.eigh(cov)
    whiten = evecs / evals.clamp_min(1e-12).sqrt()  # v @ whiten has unit covariance
    return WPrior(w_avg.clone(), w_std, mean.float(), whiten.float())


def _noise_layers(G: nn.Module) -> list[nn.Module]:
    """The synthesis conv layers that take a noise map, in ``synthesis(noise=...)`` order."""
    syn = G.synthesis
    layers = []
    for res in getattr(syn, "block_resolutions", []):
        block = getattr(syn, f"b{res}")
        layers += [block.conv0] if hasattr(block, "conv0") else []
        layers += [block.conv1] if hasattr(block, "conv1") else []
    return layers


def _noise_reg(maps: list[Tensor]) -> Tensor:
    """NVlabs' penalty: squared autocorrelation at lag 1 (both axes), over a pyramid of each map."""
    reg = maps[0].new_zeros(())
    for m in maps:
        while True:
            reg = reg + (m * torch.roll(m, 1, dims=3)).mean().square() + (m * torch.roll(m, 1, dims=2)).mean().square()
            if m.shape[2] <= 8:
                break
            m = F.avg_pool2d(m, 2)
    return reg


@torch.no_grad()
def _normalise_noise_(maps: list[Tensor]) -> None:
    for m in maps:
        m.sub_(m.mean()).div_(m.square().mean().sqrt().clamp_min(1e-8))


def _to_target(y: Tensor | np.ndarray, device: torch.device) -> Tensor:
    """Image at the API edge (``(H, W, 3|1)`` uint8 / float [0, 1]) or ``(1, C, H, W)`` [-1, 1] tensor."""
    if isinstance(y, np.ndarray):
        if y.ndim == 2 or (y.ndim == 3 and y.shape[2] == 1):
            grey = y.reshape(y.shape[0], y.shape[1], 1)
            return image_to_tensor(np.repeat(grey, 3, axis=2), device)[:, :1]
        return image_to_tensor(y, device)
    check(isinstance(y, Tensor), f"the target must be an image array or a tensor. Got: {type(y).__name__}")
    return y.to(device, torch.float32)


def _task(op: Operator) -> str:
    return {"identity": "invert", "mask": "inpaint", "grey": "colorize", "down": "superres"}[op.kind]


def _check_generator(G: nn.Module) -> int:
    for attr in ("synthesis", "mapping", "num_ws", "w_dim", "img_resolution"):
        check(hasattr(G, attr), f"G must be a StyleGAN generator (engine.models). Got: no {attr!r}")
    return int(G.img_resolution)


# ----------------------------------------------------------------------------- the search


# ``objective(img)`` for renders ``(K, 3, R, R)`` -> (total, fit error) scalars, each a mean over the K
# candidates (a mean keeps the prior's relative weight independent of K; Adam is per element, so K
# candidates searched together follow the same paths as K searches run one by one).
Objective = Callable[[Tensor], tuple[Tensor, Tensor]]


class LatentSearch:
    """State shared by the phases of one search: G, operator, distance (or an objective), job, history.

    ``objective`` replaces ``distance(A(G(w)))`` for tasks whose observation is not an image
    (``engine.ops.sketch``); ``distance`` may then be None. ``preview`` makes the preview image
    ``(1, 3, R, R)`` of a step's renders ``(K, 3, R, R)``; by default the first candidate's.
    """

    def __init__(self, G: nn.Module, op: Operator, distance: Distance | None, cfg: InvertConfig, job: Job,
                 total_steps: int, objective: Objective | None = None,
                 preview: Callable[[Tensor], Tensor] | None = None):
        check(distance is not None or objective is not None, "a search needs a distance or an objective. Got: none")
        self.G, self.op, self.distance, self.cfg, self.job = G, op, distance, cfg, job
        self.objective = objective
        self.preview = preview or (lambda img: img[:1])
        self.resolution = int(G.img_resolution)
        self.history: list[StepRecord] = []
        self.done, self.total = 0, total_steps
        self.device = next(G.parameters()).device
        self.prior_weight = (0.0 if op.kind == "identity" else 0.003) if cfg.latent_prior is None else cfg.latent_prior

    def render(self, ws: Tensor, noise: list[Tensor] | None = None, G: nn.Module | None = None) -> Tensor:
        G = G or self.G
        if noise is not None:
            return G.synthesis(ws, noise_mode="const", noise=noise)
        return G.synthesis(ws, noise_mode="const")

    def loss(self, img: Tensor) -> tuple[Tensor, Tensor]:
        """``img`` (K, 3, R, R) -> (total, mse) against the target, in observation space."""
        if self.objective is not None:
            return self.objective(img)
        return self.distance(degrade.to_image_space(self.op(img), self.op, self.resolution))

    def report(self, phase: str, loss: float, err: float, img: Tensor, last: bool) -> None:
        """One finished step: history, then progress (a preview every few steps), then cancel check."""
        self.done += 1
        fit = 10 * math.log10(4.0 / max(err, 1e-10))
        self.history.append(StepRecord(self.done, loss, fit))
        preview = None
        if last or self.done % max(1, self.cfg.preview_every) == 0:
            with torch.no_grad():
                preview = tensor_to_image(self.preview(img.detach()))
        self.job.step(self.done, f"{phase}: step {self.done}/{self.total}, loss {loss:.4f}, fit {fit:.1f} dB",
                      preview=preview)

    def latent_search(self, latent: Tensor, prior: WPrior, steps: int, noise: list[Tensor] | None,
                      phase: str, lr_scale: float = 1.0) -> Tensor:
        """Adam over ``latent`` ``(K, 1|num_ws, w_dim)`` (and ``noise`` maps) for ``steps`` steps.

        K > 1 searches K candidates at once (one batched render per step).
        """
        cfg = self.cfg
        latent = latent.detach().clone().requires_grad_(True)
        params = [latent] + (noise or [])
        opt = torch.optim.Adam(params, lr=cfg.lr * lr_scale, betas=(0.9, 0.999))
        gen = torch.Generator(device="cpu").manual_seed(cfg.seed)
        for i in range(steps):
            self.job.check()
            t = i / max(steps, 1)
            for group in opt.param_groups:
                group["lr"] = _lr_at(cfg, t, cfg.lr * lr_scale)
            sigma = prior.w_std * cfg.w_noise * max(0.0, 1.0 - t / cfg.w_noise_ramp) ** 2
            w = latent + sigma * torch.randn(latent.shape, generator=gen).to(latent)
            img = self.render(w.expand(latent.shape[0], self.G.num_ws, -1), noise)
            total, err = self.loss(img)
            if noise:
                total = total + cfg.noise_reg * _noise_reg(noise)
            if self.prior_weight > 0:
                total = total + self.prior_weight * prior.nll(latent)
            opt.zero_grad(set_to_none=True)
            total.backward()
            opt.step()
            if noise:
                _normalise_noise_(noise)
            self.report(phase, float(total.detach()), float(err.detach()), img, last=i == steps - 1)
        return latent.detach()

    def random_starts(self, prior: WPrior, width: int, count: int) -> Tensor:
        """``(count, width, w_dim)``: w_avg, then ``count - 1`` random w pulled to psi 0.7 (the well-trained part of W)."""
        gen = torch.Generator().manual_seed(self.cfg.seed + 1)
        starts = [prior.w_avg]
        with torch.no_grad():
            for _ in range(count - 1):
                z = torch.randn([1, self.G.z_dim], generator=gen).to(self.device)
                c = torch.zeros([1, getattr(self.G, "c_dim", 0)], device=self.device)
                starts.append(prior.w_avg.lerp(self.G.mapping(z, c if c.shape[1] else None)[0, 0], 0.7))
        return torch.stack(starts)[:, None].expand(-1, width, -1)

    def tune(self, ws: Tensor, w_std: float) -> nn.Module:
        """PTI: fine-tune a copy of G's synthesis weights on the pivot ``ws`` (1, num_ws, w_dim)."""
        cfg = self.cfg
        G_t = copy.deepcopy(self.G)
        params = [p for p in G_t.synthesis.parameters() if p.is_floating_point()]
        for p in params:
            p.requires_grad_(True)
        opt = torch.optim.Adam(params, lr=cfg.pti_lr, betas=(0.9, 0.999))
        gen = torch.Generator().manual_seed(cfg.seed + 2)
        c = torch.zeros([1, getattr(self.G, "c_dim", 0)], device=self.device)
        for i in range(cfg.pti_steps):
            self.job.check()
            for group in opt.param_groups:
                group["lr"] = _lr_at(cfg, i / cfg.pti_steps, cfg.pti_lr)
            img = self.render(ws, G=G_t)
            total, err = self.loss(img)
            if cfg.locality > 0 and i % cfg.locality_every == 0:
                total = total + cfg.locality * self._locality(G_t, ws, w_std, gen, c)
            opt.zero_grad(set_to_none=True)
            total.backward()
            opt.step()
            self.report("tuning", float(total.detach()), float(err.detach()), img, last=i == cfg.pti_steps - 1)
        return G_t.requires_grad_(False)

    def _locality(self, G_t: nn.Module, ws: Tensor, w_std: float, gen: torch.Generator, c: Tensor) -> Tensor:
        """PTI's regulariser: renders at a random latent near the pivot must not move."""
        with torch.no_grad():
            z = torch.randn([1, self.G.z_dim], generator=gen).to(self.device)
            w_z = self.G.mapping(z, c if c.shape[1] else None)  # (1, num_ws, w_dim)
            step = w_z - ws
            w_r = ws + self.cfg.locality_radius * w_std * step / step.norm(dim=-1, keepdim=True).clamp_min(1e-8)
            before = self.render(w_r).clamp(-1, 1)
        after = self.render(w_r, G=G_t)
        # Only what an image shows counts: beyond [-1, 1] on the side where it already was, nothing moved.
        hidden = ((before >= 1) & (after > before)) | ((before <= -1) & (after < before))
        return (torch.where(hidden, before, after) - before).square().mean()


# Averaging pays for small generators; a batch of 8 at 1024 px would take 8x the memory and time of one search.
AVERAGE_UP_TO = 128  # px: the largest generator whose super-resolution averages samples by default


def with_defaults(cfg: InvertConfig, task: str, resolution: int) -> InvertConfig:
    """``cfg`` with its automatic fields set for ``task`` (invert, inpaint, colorize, superres) on a
    generator of ``resolution`` px: 8 samples to super-resolve up to :data:`AVERAGE_UP_TO` px, else 1;
    200 latent steps when several samples are averaged, else 500."""
    averages = task == "superres" and resolution <= AVERAGE_UP_TO
    samples = cfg.samples if cfg.samples is not None else (8 if averages else 1)
    steps = cfg.steps if cfg.steps is not None else (200 if samples > 1 else 500)
    return dataclasses.replace(cfg, samples=samples, steps=steps)


def invert(G: nn.Module, target: Tensor | np.ndarray, operator: Operator | None = None,
           config: InvertConfig | None = None, *, truth: Tensor | np.ndarray | None = None,
           D: nn.Module | None = None, lpips: LPIPS | None | str = _AUTO,
           progress: Progress | None = None, cancel: CancelToken | None = None) -> InversionResult:
    """Search G's latent space for ``w`` with ``A(G(w)) ≈ target``.

    Args:
        G: a StyleGAN generator from ``engine.models`` (left unchanged; PTI tunes a copy).
        target: the image ``(H, W, 3)`` uint8 / float ``[0, 1]``, or ``(1, C, H, W)`` in ``[-1, 1]``:
            either a full ``R x R`` image (it is then degraded by ``operator``) or an observation
            of the operator's output shape (a ``R/f`` px image for ``down``, one channel for ``grey``).
        operator: a forward operator from ``engine.ops.degrade``; default identity (inversion).
        config: hyper-parameters, :class:`InvertConfig`.
        truth: the full ``R x R`` image, when known, for the quality figures.
        D: a discriminator for feature matching (used when ``config.distance.d_features > 0``).
        lpips: an :class:`~engine.ops.losses.LPIPS`, None for none, or "auto" to look on disk.
        progress, cancel: the job protocol; a preview image comes every ``preview_every`` steps.

    Returns:
        :class:`InversionResult`; ``distance`` names the loss used.

    Raises:
        GanvasError: bad arguments. Cancelled: the token was set (within one step).
    """
    R = _check_generator(G)
    op = operator or degrade.identity(R)
    cfg = with_defaults(config or InvertConfig(), _task(op), R)
    samples = cfg.samples
    check(cfg.mode in MODES, f"mode must be one of {MODES}. Got: {cfg.mode!r}")
    check(cfg.steps >= 1 and cfg.lr > 0, f"steps must be >= 1 and lr > 0. Got: {cfg.steps}, {cfg.lr}")
    check(cfg.mode != "pti" or cfg.pti_steps >= 1, f"PTI needs pti_steps >= 1. Got: {cfg.pti_steps}")
    check(samples >= 1, f"samples must be >= 1. Got: {samples}")
    start_time = time.perf_counter()
    device = next(G.parameters()).device
    check(op.resolution in (0, R), f"the operator was made for {op.resolution} px, the model is {R} px. "
          f"Got: {op.resolution}")
    y = degrade.observe(op, _to_target(target, device), R)
    truth_t = None if truth is None else _to_target(truth, device)
    check(truth_t is None or tuple(truth_t.shape) == (1, 3, R, R),
          f"truth must be a {R} x {R} RGB image. Got: {None if truth_t is None else tuple(truth_t.shape)}")
    lpips_net = losses.find_lpips() if isinstance(lpips, str) else lpips
    if lpips_net is not None:
        lpips_net = lpips_net.to(device)
    distance = Distance(cfg.distance, lpips_net, D)
    weight = op.observation_weight(device)
    image_weight = None if weight is None else F.interpolate(weight, size=(R, R), mode="nearest")
    distance.set_target(degrade.to_image_space(y, op, R), image_weight)

    total = cfg.steps + (cfg.pti_steps if cfg.mode == "pti" else 0)
    job = Job(total, progress, cancel)
    # Several samples preview their answer as it forms: the mean of their consistent renders.
    preview = (lambda img: _answer(op, img, y, cfg.consistent)) if samples > 1 else None
    search = LatentSearch(G, op, distance, cfg, job, total, preview=preview)
    prior = w_prior(G, cfg.w_samples, cfg.seed)
    width = 1 if cfg.mode == "w" else G.num_ws
    noise = None
    if cfg.optimize_noise and cfg.mode != "pti" and _noise_layers(G):
        noise = [layer.noise_const.detach().clone().reshape(1, 1, *layer.noise_const.shape).requires_grad_(True)
                 for layer in _noise_layers(G)]
    latent = search.random_starts(prior, width, samples)
    latent = search.latent_search(latent, prior, cfg.steps, noise, "searching " + cfg.mode.upper())
    candidates = latent.expand(-1, G.num_ws, -1)
    latent = latent[_best(search, candidates)][None]
    G_final, delta, pivot_psnr = G, None, None
    ws = latent.expand(1, G.num_ws, -1)
    if cfg.mode == "pti":  # tunes G on the best candidate alone; the others were found for the untuned G
        pivot_psnr = _figures(search, G, ws, None, y, truth_t, None).psnr
        G_final = search.tune(ws, prior.w_std)
        delta = weights_delta(G, G_final)
        candidates = ws
    noise = None if noise is None else [m.detach() for m in noise]
    fig = _figures(search, G_final, ws, noise, y, truth_t, lpips_net, candidates)
    log.info("inversion %s/%s: %.2f dB in %d steps", _task(op), cfg.mode, fig.psnr, search.done)
    return InversionResult(
        mode=cfg.mode, task=_task(op), latent=latent.cpu(), image=tensor_to_image(fig.image),
        history=search.history, psnr=fig.psnr, ssim=fig.ssim, lpips=fig.lpips, psnr_observed=fig.observed,
        psnr_unseen=fig.unseen, distance=distance.name, steps=search.done,
        seconds=time.perf_counter() - start_time, render=tensor_to_image(fig.render), num_ws=G.num_ws,
        noise=None if noise is None else [m.cpu() for m in noise], weights_delta=delta, pivot_psnr=pivot_psnr,
        candidates=candidates.cpu() if len(candidates) > 1 else None)


@dataclass
class _Figures:
    psnr: float
    ssim: float
    lpips: float | None
    observed: float
    unseen: float | None
    image: Tensor  # (1, 3, R, R) in [-1, 1], projected onto the observation for inverse problems
    render: Tensor  # (1, 3, R, R) in [-1, 1]


def _answer(op: Operator, renders: Tensor, y: Tensor, consistent: bool) -> Tensor:
    """The mean ``(1, 3, R, R)`` of ``renders`` ``(K, 3, R, R)``, each made consistent with ``y`` first."""
    return (degrade.project(op, renders, y) if consistent else renders).clamp(-1, 1).mean(0, keepdim=True)


@torch.no_grad()
def _best(search: LatentSearch, candidates: Tensor) -> int:
    """Index of the candidate ``(K, num_ws, w_dim)`` whose render fits the observation best."""
    if len(candidates) == 1:
        return 0
    return min(range(len(candidates)), key=lambda k: float(search.loss(search.render(candidates[k:k + 1]))[0]))


@torch.no_grad()
def _figures(search: LatentSearch, G: nn.Module, ws: Tensor, noise: list[Tensor] | None, y: Tensor,
             truth: Tensor | None, lpips_net: LPIPS | None, candidates: Tensor | None = None) -> _Figures:
    """Quality of the render of ``ws`` and of the answer: the render made consistent with the observation,
    or, given ``candidates`` ``(K, num_ws, w_dim)``, the mean of their consistent renders."""
    R, op = search.resolution, search.op
    render = search.render(ws, noise, G=G)
    if candidates is not None and len(candidates) > 1:
        img = _answer(op, search.render(candidates, G=G), y, search.cfg.consistent)
    else:
        img = degrade.project(op, render, y) if search.cfg.consistent else render
    img, render = img.clamp(-1, 1), render.clamp(-1, 1)
    observed = losses.psnr(degrade.to_image_space(op(render), op, R), degrade.to_image_space(y, op, R),
                           search.distance.weight)
    if truth is None:  # no full image: judge the answer in observation space
        x, ref, weight = degrade.to_image_space(op(img), op, R), degrade.to_image_space(y, op, R), \
            search.distance.weight
    else:
        x, ref, weight = img, truth, None
    hidden = op.unseen()
    unseen = None
    if truth is not None and hidden is not None and float(hidden.sum()) > 0:
        unseen = losses.psnr(img, truth, hidden.to(img))
    lp = float(lpips_net(x, ref, weight)) if lpips_net is not None else None
    return _Figures(losses.psnr(x, ref, weight), losses.ssim(x, ref, weight), lp, observed, unseen, img, render)


# ----------------------------------------------------------------------------- tuned weights


def weights_delta(G: nn.Module, G_tuned: nn.Module) -> dict[str, Tensor]:
    """``{name: tuned - original}`` for the parameters that changed (CPU tensors)."""
    original = dict(G.named_parameters())
    return {name: (p.detach() - original[name].detach()).cpu() for name, p in G_tuned.named_parameters()
            if not torch.equal(p, original[name])}


def tuned_generator(G: nn.Module, result: InversionResult) -> nn.Module:
    """A copy of ``G`` with a PTI result's weight delta added (``G`` itself is unchanged)."""
    check(result.weights_delta is not None, f"the result holds no tuned weights. Got: mode {result.mode!r}")
    G_t = copy.deepcopy(G)
    params = dict(G_t.named_parameters())
    missing = sorted(set(result.weights_delta) - set(params))
    if missing:
        raise GanvasError(f"the tuned weights do not belong to this generator. Got: unknown {missing[:3]}")
    with torch.no_grad():
        for name, d in result.weights_delta.items():
            params[name].add_(d.to(params[name]))
    return G_t


@torch.no_grad()
def render_result(G: nn.Module, result: InversionResult, ws: Tensor | None = None) -> np.ndarray:
    """Render a result (or an edited ``ws`` of it) with its tuned weights and noise maps: uint8 image.

    This is ``result.render``, the generator's own picture, not the projected ``result.image``.
    """
    G_r = tuned_generator(G, result) if result.weights_delta is not None else G
    device = next(G_r.parameters()).device
    ws = (result.ws if ws is None else ws).to(device)
    if result.noise is not None:
        return tensor_to_image(G_r.synthesis(ws, noise_mode="const", noise=[m.to(device) for m in result.noise]))
    return tensor_to_image(G_r.synthesis(ws, noise_mode="const"))


__all__ = ["invert", "with_defaults", "InvertConfig", "LatentSearch", "Objective", "InversionResult", "StepRecord", "MODES", "WPrior",
           "w_prior", "weights_delta", "tuned_generator", "render_result"]
