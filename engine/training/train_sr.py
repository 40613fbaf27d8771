"""Train the house x4 super-resolution network (``house-sr-x4``) on a CPU, within a time budget.

The network is Real-ESRGAN's compact SRVGG net (Wang et al., "Real-ESRGAN", arXiv:2107.10833,
``SRVGGNetCompact``): ``num_conv`` 3x3 convolutions with PReLU at LR resolution, one last
convolution to ``3 * scale^2`` channels, a pixel shuffle, plus the nearest-upsampled input, so
the network learns only the residual. It is spandrel's own ``Compact`` class, so the exported
state dict (``body.N.weight/bias``) loads back in spandrel, chaiNNer and GANvas unchanged.

Training follows the PSNR-oriented recipe of EDSR/SwinIR scaled down to one CPU thread: clean
bicubic degradation (LR = MATLAB-style antialiased bicubic of HR, rounded to 8 bits, exactly
the Set5/Set14 protocol of ``engine.ops.sr_metrics``, pre-computed once per photo), random
aligned LR/HR patches with the 8 flips/rotations, L1 loss, Adam with a cosine learning-rate
decay over the budget and an EMA of the weights (evaluated and exported). Set5 is scored with
the protocol's Y-PSNR every ``eval_minutes`` for monitoring only; it is never trained on.

Size for ~2 h of one thread, measured over 15 steps each with ``torch.set_num_threads(1)``
(batch 16, LR patch 32, i.e. HR 128 px; the 2-core machine was shared with another run):

    ==========  ========  ==========  ========
    num_feat    num_conv  parameters  sec/step
    ==========  ========  ==========  ========
    32          8         0.09 M      0.20
    48          10        0.23 M      0.40
    64          12        0.47 M      0.81
    ==========  ========  ==========  ========

The default is 48 features x 10 convolutions: 20x FSRCNN's parameters in as many layers, which
gives 12k-18k steps (0.2-0.3 M patches) in 120 minutes (0.6 s/step when the machine is heavily
loaded, 0.4 s/step otherwise). The 32x8 net would run twice the steps with half the capacity,
little margin over FSRCNN on Set14's textures; the 64x12 net would get only 6k-9k steps, too
few for Adam to approach convergence within the budget.

    python -m engine.training.train_sr --data data/sr --out runs/house-sr-x4 --minutes 120 --threads 1
    python -m engine.training.train_sr --smoke --out /tmp/sr-smoke      # seconds, tiny network
    python -m engine.training.train_sr --out runs/house-sr-x4 --export-only
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from spandrel.architectures.Compact import Compact
from torch import Tensor, nn

from engine.errors import check
from engine.jobs import CancelToken, Job, Progress
from engine.ops.sr_metrics import evaluate_sr, imresize, round_uint8
from engine.training.run import (CHECKPOINT_NAME, Meter, RunState, budget_used, check_budget, command, eta_minutes,
                                 millions, open_run, parse_config, read_checkpoint, restore_checkpoint, train_steps,
                                 write_checkpoint)

log = logging.getLogger(__name__)

DEFAULT_EXPORT = Path("resources/models/house-sr-x4.safetensors")
SRBENCH = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "srbench"


@dataclass
class SRTrainConfig:
    """Everything a run needs; saved in each checkpoint so a resume rebuilds the same network."""

    data: str = "data/sr"
    out: str = "runs/house-sr-x4"
    scale: int = 4
    # Network (spandrel Compact / SRVGGNetCompact); see the module docstring for the choice.
    num_feat: int = 48
    num_conv: int = 10
    # Optimisation.
    batch: int = 16
    patch: int = 32  # LR patch side; the HR patch is scale * patch (128 px)
    lr: float = 1e-3  # PReLU conv nets without normalisation train stably at 1e-3 with a warm-up
    lr_final: float = 1e-5
    warmup_steps: int = 200
    betas: tuple[float, float] = (0.9, 0.99)
    ema_beta: float = 0.999
    # Budget and bookkeeping; whichever target is reached first stops the run.
    minutes: float | None = None
    steps: int | None = None
    checkpoint_minutes: float = 5.0
    eval_minutes: float = 10.0
    log_every: int = 50
    monitor: str = str(SRBENCH / "Set5")  # scored for monitoring only, never trained on
    seed: int = 0
    export: str | None = str(DEFAULT_EXPORT)
    smoke: bool = False

    def network_fields(self) -> dict[str, int]:
        return {"num_feat": self.num_feat, "num_conv": self.num_conv, "scale": self.scale}


SMOKE = dict(data="", num_feat=8, num_conv=2, batch=2, patch=8, steps=4, warmup_steps=1, log_every=1,
             checkpoint_minutes=0.0, eval_minutes=0.0, monitor="")


@dataclass
class SRTrainState(RunState):
    monitor_psnr: float | None = None  # latest Y-PSNR of the EMA network on the monitor set


# ----------------------------------------------------------------------------
# Data


class PatchSource:
    """Aligned random LR/HR patches from whole photos kept in RAM as ``uint8``.

    Each HR photo is cropped to a multiple of ``scale`` and its LR image computed once with the
    evaluation protocol's bicubic (:func:`engine.ops.sr_metrics.imresize`, rounded to 8 bits), so
    training sees exactly the degradation the benchmarks use.
    """

    def __init__(self, photos: list[np.ndarray], scale: int, patch: int) -> None:
        check(len(photos) > 0, "the SR training set holds no photos. Got: 0")
        self.scale, self.patch = scale, patch
        self.hr: list[Tensor] = []
        self.lr: list[Tensor] = []
        for rgb in photos:
            h, w = rgb.shape[0] - rgb.shape[0] % scale, rgb.shape[1] - rgb.shape[1] % scale
            check(min(h, w) >= scale * patch, f"a training photo is smaller than one HR patch "
                  f"({scale * patch} px). Got: {rgb.shape[1]}x{rgb.shape[0]}")
            hr = np.array(rgb[:h, :w])  # a writable copy (torch.from_numpy shares it)
            lr = round_uint8(imresize(hr, h // scale, w // scale))
            self.hr.append(torch.from_numpy(hr).permute(2, 0, 1).contiguous())  # (3, H, W) uint8
            self.lr.append(torch.from_numpy(lr).permute(2, 0, 1).contiguous())  # (3, H/s, W/s) uint8
        # Draw photos in proportion to their area, so every pixel is equally likely.
        areas = torch.tensor([float(x.shape[1] * x.shape[2]) for x in self.lr])
        self.weights = areas / areas.sum()

    def __len__(self) -> int:
        return len(self.hr)

    def sample(self, batch: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """``(lr, hr)``: ``(B, 3, p, p)`` and ``(B, 3, s*p, s*p)`` float32 in ``[0, 1]``."""
        p, s = self.patch, self.scale
        index = torch.multinomial(self.weights, batch, replacement=True, generator=generator).tolist()
        lrs, hrs = [], []
        for i in index:
            lr, hr = self.lr[i], self.hr[i]
            y = int(torch.randint(0, lr.shape[1] - p + 1, (), generator=generator))
            x = int(torch.randint(0, lr.shape[2] - p + 1, (), generator=generator))
            lrs.append(lr[:, y:y + p, x:x + p])
            hrs.append(hr[:, s * y:s * (y + p), s * x:s * (x + p)])
        lr_batch = torch.stack(lrs).to(torch.float32) / 255.0
        hr_batch = torch.stack(hrs).to(torch.float32) / 255.0
        return dihedral(lr_batch, hr_batch, generator)


def dihedral(lr: Tensor, hr: Tensor, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """One of the 8 flips/rotations, the same for LR and HR (drawn once per batch: cheaper, as good)."""
    k = int(torch.randint(0, 8, (), generator=generator))
    if k >= 4:
        lr, hr = lr.flip(3), hr.flip(3)
    return lr.rot90(k % 4, (2, 3)).contiguous(), hr.rot90(k % 4, (2, 3)).contiguous()


def smoke_photos(count: int = 3, size: int = 48, seed: int = 0) -> list[np.ndarray]:
    """Small synthetic "photos" (ramps, blobs and noise) for ``--smoke`` and tests."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / size
    photos = []
    for _ in range(count):
        f = rng.uniform(2, 8, size=3)
        rgb = np.stack([np.sin(f[c] * (xx + yy * (c + 1)) + rng.uniform(0, 6)) for c in range(3)], axis=2)
        rgb = (rgb + 1) * 110 + rng.normal(0, 6, size=rgb.shape)
        photos.append(np.clip(rgb, 0, 255).astype(np.uint8))
    return photos


def load_photos(cfg: SRTrainConfig) -> tuple[list[np.ndarray], dict[str, Any]]:
    if cfg.smoke and not cfg.data:
        return smoke_photos(seed=cfg.seed), {"count": 3, "licences": {"synthetic": 3}, "packages": []}
    from engine.training.sr_data import load_sr_images

    return load_sr_images(cfg.data)


# ----------------------------------------------------------------------------
# Network, loss, schedule


def build_network(cfg: SRTrainConfig) -> nn.Module:
    """spandrel's ``Compact`` (SRVGGNetCompact) with PReLU, float32."""
    return Compact(num_in_ch=3, num_out_ch=3, num_feat=cfg.num_feat, num_conv=cfg.num_conv,
                   upscale=cfg.scale, act_type="prelu")


def learning_rate(cfg: SRTrainConfig, step: int, done: float) -> float:
    """Linear warm-up over ``warmup_steps``, then cosine from ``lr`` to ``lr_final`` as the budget is spent.

    ``done`` is the fraction of the budget used (0..1); a time budget makes the schedule follow
    wall time, so a resumed run continues the same curve.
    """
    warm = min(1.0, (step + 1) / max(cfg.warmup_steps, 1))
    cosine = 0.5 * (1 + math.cos(math.pi * min(max(done, 0.0), 1.0)))
    return warm * (cfg.lr_final + (cfg.lr - cfg.lr_final) * cosine)


@torch.no_grad()
def update_ema(ema: nn.Module, net: nn.Module, beta: float) -> None:
    """``p_ema <- beta p_ema + (1 - beta) p``."""
    for p_ema, p in zip(ema.parameters(), net.parameters()):
        p_ema.lerp_(p, 1.0 - beta)


def train_step(cfg: SRTrainConfig, net: nn.Module, ema: nn.Module, opt: torch.optim.Optimizer,
               source: PatchSource, state: SRTrainState, generator: torch.Generator, done: float) -> dict[str, float]:
    """One Adam step on an L1 loss, then the EMA update (its decay ramps up over the first steps)."""
    lr_batch, hr_batch = source.sample(cfg.batch, generator)
    rate = learning_rate(cfg, state.step, done)
    for group in opt.param_groups:
        group["lr"] = rate
    loss = F.l1_loss(net(lr_batch), hr_batch)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    state.step += 1
    update_ema(ema, net, min(cfg.ema_beta, (1 + state.step) / (10 + state.step)))
    return {"l1": loss.item(), "lr": rate}


def upscaler(net: nn.Module) -> Any:
    """``uint8`` ``(h, w, 3)`` -> ``uint8`` ``(s*h, s*w, 3)`` through ``net`` (for ``evaluate_sr``)."""
    @torch.no_grad()
    def upscale(lr: np.ndarray) -> np.ndarray:
        x = torch.from_numpy(lr).permute(2, 0, 1)[None].to(torch.float32) / 255.0
        y = net(x).clamp(0, 1)[0].permute(1, 2, 0).numpy()
        return round_uint8(y * 255.0)

    return upscale


def monitor_psnr(cfg: SRTrainConfig, net: nn.Module, folder: str | None = None) -> float | None:
    """Mean Y-PSNR of ``net`` on the PNGs of ``folder`` (default ``cfg.monitor``), or None without one."""
    folder = folder if folder is not None else cfg.monitor
    paths = sorted(Path(folder).glob("*.png")) if folder else []
    if not paths:
        return None
    training = net.training
    try:
        return evaluate_sr(upscaler(net.eval()), paths, cfg.scale).mean
    finally:
        net.train(training)


# ----------------------------------------------------------------------------
# Checkpoints and export


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Read a checkpoint written by :meth:`Run.checkpoint`."""
    return read_checkpoint(path, "GANvas SR", ("nets", "opt"))


def export_model(cfg: SRTrainConfig, ema: nn.Module, state: SRTrainState, data_meta: dict[str, Any],
                 path: Path) -> Path:
    """Write the EMA network as spandrel-loadable ``.safetensors`` with its training record."""
    from engine.models.superres import save_sr_model

    metadata = {
        "name": path.stem,
        "training": cfg.network_fields() | {
            "degradation": "bicubic (MATLAB imresize, antialiased), 8-bit LR", "loss": "l1",
            "batch": cfg.batch, "hr_patch": cfg.patch * cfg.scale, "lr": cfg.lr, "ema_beta": cfg.ema_beta,
            "steps": state.step, "minutes": round(state.seconds / 60, 1),
            "monitor_set5_psnr_y": None if state.monitor_psnr is None else round(state.monitor_psnr, 3),
        },
        "data": {key: data_meta[key] for key in ("count", "pixels", "max_side", "licences", "packages")
                 if key in data_meta},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    return save_sr_model(ema, path, metadata)


# ----------------------------------------------------------------------------
# The loop


# Fields a resumed run takes from the command line; everything else comes from the checkpoint.
RUN_OVERRIDES = frozenset({"minutes", "steps", "checkpoint_minutes", "eval_minutes", "log_every", "export",
                           "out", "monitor", "data"})


@dataclass
class Run:
    """The live objects of one training run."""

    cfg: SRTrainConfig
    source: PatchSource
    data_meta: dict[str, Any]
    net: nn.Module
    ema: nn.Module
    opt: torch.optim.Optimizer
    generator: torch.Generator
    state: SRTrainState

    def checkpoint(self) -> None:
        path = Path(self.cfg.out) / CHECKPOINT_NAME
        write_checkpoint(path, self.cfg, self.state, self.generator, nets={"net": self.net, "ema": self.ema},
                         opt=self.opt)
        log.info("checkpoint at step %d (%.1f min) -> %s", self.state.step, self.state.seconds / 60, path)

    def evaluate(self) -> None:
        t0 = time.perf_counter()
        psnr = monitor_psnr(self.cfg, self.ema)
        if psnr is not None:
            self.state.monitor_psnr = psnr
            log.info("step %d: monitor (%s) Y-PSNR x%d %.3f dB (EMA, %.1f s)", self.state.step,
                     Path(self.cfg.monitor).name, self.cfg.scale, psnr, time.perf_counter() - t0)


def start_run(cfg: SRTrainConfig, resume: bool) -> Run:
    """Build data, network and optimiser; restore them from ``cfg.out``'s checkpoint if resuming."""
    cfg, payload = open_run(cfg, resume, load_checkpoint, RUN_OVERRIDES)
    cfg = dataclasses.replace(cfg, betas=tuple(cfg.betas))
    photos, data_meta = load_photos(cfg)
    source = PatchSource(photos, cfg.scale, cfg.patch)
    torch.manual_seed(cfg.seed)
    net = build_network(cfg)
    ema = copy.deepcopy(net).eval().requires_grad_(False)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr, betas=cfg.betas)
    generator = torch.Generator().manual_seed(cfg.seed)
    state = SRTrainState()
    if payload is not None:
        restore_checkpoint(payload, generator, nets={"net": net, "ema": ema}, opt=opt)
        state = SRTrainState(**payload["state"])
        log.info("resumed at step %d (%.1f min) from %s", state.step, state.seconds / 60,
                 Path(cfg.out) / CHECKPOINT_NAME)
    log.info("data: %d photos, %.1f Mpixel HR; Compact %dnf %dnc x%d, %.3fM parameters", len(source),
             sum(x.shape[1] * x.shape[2] for x in source.hr) / 1e6, cfg.num_feat, cfg.num_conv, cfg.scale,
             millions(net))
    return Run(cfg, source, data_meta, net, ema, opt, generator, state)


def train(cfg: SRTrainConfig, resume: bool = True, progress: Progress | None = None,
          cancel: CancelToken | None = None) -> SRTrainState:
    """Run (or resume) training in ``cfg.out`` until the budget is spent; export the EMA network.

    A checkpoint is written every ``checkpoint_minutes`` and at the end; an error, a cancel or
    SIGTERM (from the command line) writes one first. The monitor set is scored every
    ``eval_minutes`` of training time and after the last step.
    """
    check_budget(cfg)
    run = start_run(cfg, resume)
    cfg, state = run.cfg, run.state
    next_eval = state.seconds + cfg.eval_minutes * 60

    def progress_line(meter: Meter) -> str:
        sec = meter.sec_per_step()
        return (f"step {state.step} l1 {meter.means()['l1']:.4f} lr {meter.last['lr']:.2e} sec/step {sec:.3f} "
                f"time {state.seconds / 60:.1f}m ETA {eta_minutes(cfg, state, sec):.1f}m")

    def evaluate_when_due() -> None:
        nonlocal next_eval
        if state.seconds >= next_eval or budget_used(cfg, state) >= 1:
            run.evaluate()
            next_eval = state.seconds + cfg.eval_minutes * 60

    train_steps(cfg, state, Job(1000, progress, cancel),
                lambda done: train_step(cfg, run.net, run.ema, run.opt, run.source, state, run.generator, done),
                progress_line, run.checkpoint, evaluate_when_due)
    if cfg.export:
        path = export_model(cfg, run.ema, state, run.data_meta, Path(cfg.export))
        log.info("exported the EMA network to %s", path)
    return state


def export_only(cfg: SRTrainConfig) -> Path:
    """Export ``cfg.out``'s latest checkpoint without training."""
    payload = load_checkpoint(Path(cfg.out) / CHECKPOINT_NAME)
    saved = payload["config"]
    cfg = dataclasses.replace(cfg, **{k: saved[k] for k in cfg.network_fields()})
    ema = build_network(cfg)
    ema.load_state_dict(payload["nets"]["ema"])
    check(cfg.export is not None, "export-only needs an --export path. Got: none")
    data_meta = {"count": "smoke"} if saved["smoke"] and not saved["data"] else load_photos(
        dataclasses.replace(cfg, data=saved["data"], smoke=saved["smoke"]))[1]
    return export_model(cfg, ema.eval(), SRTrainState(**payload["state"]), data_meta, Path(cfg.export))


# ----------------------------------------------------------------------------
# Command line


def parse_args(argv: Sequence[str] | None) -> tuple[SRTrainConfig, argparse.Namespace]:
    return parse_config(SRTrainConfig, argv, "Train the house x4 super-resolution network.", SMOKE,
                        "house-sr-smoke.safetensors", threads=1)


def main(argv: Sequence[str] | None = None) -> int:
    cfg, args = parse_args(argv)
    return command(args.threads, lambda: export_only(cfg) if args.export_only else train(cfg, resume=not args.fresh))


if __name__ == "__main__":
    raise SystemExit(main())
