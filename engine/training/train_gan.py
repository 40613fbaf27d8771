"""Train the house StyleGAN2 on a rendered face data set, on a CPU, within a time budget.

StyleGAN2 (Karras et al., arXiv:1912.04958) with the training recipe of StyleGAN2-ADA
(arXiv:2006.06676): non-saturating logistic loss, lazy R1 regularisation on real
images every ``r1_interval`` steps (Sec. 4 of the StyleGAN2 paper, with the Adam
hyper-parameters rescaled by ``interval / (interval + 1)``), style mixing, and an EMA
generator whose half-life is counted in images. Departures, for a 2-core budget: no
path-length regularisation; DiffAugment (arXiv:2006.10738) instead of ADA; and each
step draws one fake batch that serves the D update (detached) and then the G update,
which saves a generator forward pass per step.

    python -m engine.training.train_gan --data data/house.npz --out runs/house-gan --minutes 100 --threads 1
    python -m engine.training.train_gan --out runs/more --init resources/models/house-gan.safetensors --minutes 300
    python -m engine.training.train_gan --smoke --out /tmp/smoke      # seconds, tiny network
    python -m engine.training.train_gan --out runs/house-gan --export-only
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from engine.errors import CheckpointError, GanvasError, check
from engine.jobs import CancelToken, Job, Progress
from engine.training.augment import diff_augment
from engine.training.run import (CHECKPOINT_NAME, Meter, RunState, atomic_write, check_budget, command, eta_minutes,
                                 millions, open_run, parse_config, read_checkpoint, restore_checkpoint, train_steps,
                                 write_checkpoint)

log = logging.getLogger(__name__)

DEFAULT_EXPORT = Path("resources/models/house-gan.safetensors")


@dataclass
class TrainConfig:
    """Everything a run needs; saved in each checkpoint so a resume rebuilds the same nets."""

    data: str = "data/house.npz"
    out: str = "runs/house-gan"
    # Network (StyleGAN2-ADA constructor arguments).
    z_dim: int = 128
    w_dim: int = 128
    mapping_layers: int = 2  # 8 in the paper; 2 suffices for a narrow synthetic domain
    # Channels at resolution r: min(channel_base / r, channel_max): 128 up to 16 px, 64 at 32 px, 32 at
    # 64 px. On 2 idle cores, 48 img/s at batch 32, against 18-20 img/s with 64 channels at 64 px.
    channel_base: int = 2048
    channel_max: int = 128
    mbstd_group: int = 4
    # Optimisation.
    batch: int = 32  # 25 % more images per second than 16 on 2 cores
    lr: float = 0.0025
    beta1: float = 0.0
    beta2: float = 0.99
    # Official heuristic 0.0002 * res^2 / batch gives 0.026 .. 0.05 at 64 px; a little more for stability.
    r1_gamma: float = 0.1
    r1_interval: int = 16
    style_mixing: float = 0.9
    augment: str = "color,translation,cutout"
    mirror: bool = True
    ema_kimg: float | None = None  # None: batch * 10 / 32, the official automatic setting
    ema_rampup: float | None = 0.05
    # Budget and bookkeeping; whichever target is reached first stops the run.
    minutes: float | None = None
    kimg: float | None = None
    steps: int | None = None
    checkpoint_minutes: float = 10.0
    log_every: int = 10
    sheet_size: int = 8  # the contact sheet is sheet_size x sheet_size samples
    seed: int = 0
    export: str | None = str(DEFAULT_EXPORT)
    # A fresh run may start from an exported model (G + D ``.safetensors``, e.g. the shipped one)
    # instead of random weights: its counters go on from the export's; the optimisers start anew.
    init: str | None = None
    smoke: bool = False

    def ema_half_life_kimg(self) -> float:
        return self.ema_kimg if self.ema_kimg is not None else self.batch * 10 / 32

    def network_fields(self) -> dict[str, Any]:
        names = ("z_dim", "w_dim", "mapping_layers", "channel_base", "channel_max", "mbstd_group")
        return {name: getattr(self, name) for name in names}


# A network and data set small enough that two steps take well under a second.
SMOKE = dict(data="", z_dim=32, w_dim=32, mapping_layers=1, channel_base=256, channel_max=32, batch=4,
             r1_interval=2, steps=2, log_every=1, sheet_size=2, checkpoint_minutes=0.0)
SMOKE_RESOLUTION = 16
SMOKE_COUNT = 16


@dataclass
class TrainState(RunState):
    nimg: int = 0


# ----------------------------------------------------------------------------
# Data and networks


class ImageSource:
    """Random batches from a ``(N, H, W, 3)`` ``uint8`` array (a memmap is fine)."""

    def __init__(self, images: np.ndarray, mirror: bool) -> None:
        check(images.ndim == 4 and images.shape[3] == 3 and images.dtype == np.uint8,
              f"training images must be (N, H, W, 3) uint8. Got: {images.shape} {images.dtype}")
        check(images.shape[1] == images.shape[2], f"training images must be square. Got: {images.shape}")
        self.images = images
        self.mirror = mirror

    @property
    def resolution(self) -> int:
        return int(self.images.shape[1])

    def sample(self, batch: int, generator: torch.Generator) -> Tensor:
        """``(batch, 3, H, W)`` float32 in ``[-1, 1]``."""
        index = torch.randint(0, len(self.images), (batch,), generator=generator).sort().values.numpy()
        x = torch.from_numpy(np.ascontiguousarray(self.images[index])).permute(0, 3, 1, 2)  # (B, 3, H, W)
        x = x.to(torch.float32) / 127.5 - 1.0
        if self.mirror:
            flip = torch.rand(batch, generator=generator) < 0.5
            x = torch.where(flip.view(-1, 1, 1, 1), x.flip(3), x)
        return x


def load_images(cfg: TrainConfig) -> tuple[np.ndarray, dict[str, Any]]:
    """The training images and the data set's meta (style, licence card)."""
    if cfg.smoke and not cfg.data:
        from engine.training.faces import render_faces

        images, _ = render_faces(SMOKE_COUNT, SMOKE_RESOLUTION, seed=cfg.seed)
        return images, {"kind": "parametric", "style": "parametric"}
    from engine.training.dataset import load_dataset

    data = load_dataset(cfg.data, mmap=True)
    return data.images, data.meta


def build_networks(cfg: TrainConfig, resolution: int) -> tuple[nn.Module, nn.Module]:
    """An unconditional StyleGAN2 generator and discriminator in float32 for the CPU."""
    from engine.models.stylegan2 import Discriminator, Generator

    G = Generator(
        z_dim=cfg.z_dim, c_dim=0, w_dim=cfg.w_dim, img_resolution=resolution, img_channels=3,
        mapping_kwargs={"num_layers": cfg.mapping_layers},
        synthesis_kwargs={"channel_base": cfg.channel_base, "channel_max": cfg.channel_max,
                          "num_fp16_res": 0, "conv_clamp": None},
    )
    D = Discriminator(
        c_dim=0, img_resolution=resolution, img_channels=3,
        channel_base=cfg.channel_base, channel_max=cfg.channel_max, num_fp16_res=0, conv_clamp=None,
        epilogue_kwargs={"mbstd_group_size": cfg.mbstd_group},
    )
    return G, D


def make_optimizers(cfg: TrainConfig, G: nn.Module, D: nn.Module) -> tuple[torch.optim.Adam, torch.optim.Adam]:
    """Adam for G; Adam for D with lr and betas rescaled for lazy R1 (StyleGAN2 Sec. 4)."""
    ratio = cfg.r1_interval / (cfg.r1_interval + 1)
    opt_G = torch.optim.Adam(G.parameters(), lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), eps=1e-8)
    opt_D = torch.optim.Adam(D.parameters(), lr=cfg.lr * ratio, betas=(cfg.beta1**ratio, cfg.beta2**ratio), eps=1e-8)
    return opt_G, opt_D


# ----------------------------------------------------------------------------
# One training step


def mixed_latents(G: nn.Module, batch: int, mixing: float, generator: torch.Generator) -> Tensor:
    """``(batch, num_ws, w_dim)``: with probability ``mixing``, layers from a cutoff on
    come from a second latent (style mixing regularisation, StyleGAN Sec. 3.1)."""
    c = torch.zeros(batch, 0)
    # In training mode the mapping network also tracks w_avg (the truncation centre).
    ws = G.mapping(torch.randn(batch, G.z_dim, generator=generator), c)
    if mixing > 0 and torch.rand((), generator=generator).item() < mixing:
        cutoff = int(torch.randint(1, ws.shape[1], (), generator=generator))
        other = G.mapping(torch.randn(batch, G.z_dim, generator=generator), c)
        ws = torch.cat([ws[:, :cutoff], other[:, cutoff:]], dim=1)
    return ws


def r1_penalty(D: nn.Module, real: Tensor) -> tuple[Tensor, Tensor]:
    """D's logits on ``real`` and ``||grad_x D(x)||^2`` per sample (StyleGAN2 eq. R1)."""
    real = real.detach().requires_grad_(True)
    logits = D(real, torch.zeros(real.shape[0], 0))
    (grad,) = torch.autograd.grad(logits.sum(), real, create_graph=True)
    return logits, grad.square().sum(dim=(1, 2, 3))


def discriminator_step(cfg: TrainConfig, D: nn.Module, opt_D: torch.optim.Optimizer, real: Tensor, fake: Tensor,
                       do_r1: bool, generator: torch.Generator) -> dict[str, float]:
    """Softplus loss on augmented real and fake batches, plus lazy R1 when ``do_r1``."""
    c = torch.zeros(real.shape[0], 0)
    fake_logits = D(diff_augment(fake.detach(), cfg.augment, generator), c)
    real_aug = diff_augment(real, cfg.augment, generator)
    stats = {}
    if do_r1:
        real_logits, penalty = r1_penalty(D, real_aug)
        r1 = penalty.mean() * (cfg.r1_gamma / 2) * cfg.r1_interval
        stats["r1"] = penalty.mean().item()
    else:
        real_logits, r1 = D(real_aug, c), torch.zeros(())
    loss = F.softplus(fake_logits).mean() + F.softplus(-real_logits).mean()
    opt_D.zero_grad(set_to_none=True)
    (loss + r1).backward()
    opt_D.step()
    return {"D": loss.item(), "real": real_logits.mean().item(), "fake": fake_logits.mean().item()} | stats


def generator_step(cfg: TrainConfig, D: nn.Module, opt_G: torch.optim.Optimizer, fake: Tensor,
                   generator: torch.Generator) -> dict[str, float]:
    """Non-saturating loss ``softplus(-D(T(G(z))))``; D's weights get no gradient."""
    D.requires_grad_(False)
    logits = D(diff_augment(fake, cfg.augment, generator), torch.zeros(fake.shape[0], 0))
    loss = F.softplus(-logits).mean()
    opt_G.zero_grad(set_to_none=True)
    loss.backward()
    opt_G.step()
    D.requires_grad_(True)
    return {"G": loss.item()}


@torch.no_grad()
def update_ema(G_ema: nn.Module, G: nn.Module, beta: float) -> None:
    """``p_ema <- beta p_ema + (1 - beta) p``; buffers (w_avg) are copied."""
    for p_ema, p in zip(G_ema.parameters(), G.parameters()):
        p_ema.copy_(p.lerp(p_ema, beta))
    for b_ema, b in zip(G_ema.buffers(), G.buffers()):
        b_ema.copy_(b)


def ema_beta(cfg: TrainConfig, nimg: int) -> float:
    """Per-step decay for a half-life of ``ema_kimg`` thousand images, ramped up early."""
    ema_nimg = cfg.ema_half_life_kimg() * 1000
    if cfg.ema_rampup is not None:
        ema_nimg = min(ema_nimg, nimg * cfg.ema_rampup)
    return 0.5 ** (cfg.batch / max(ema_nimg, 1e-8))


def train_step(cfg: TrainConfig, nets: dict[str, nn.Module], opts: dict[str, torch.optim.Optimizer],
               source: ImageSource, state: TrainState, generator: torch.Generator) -> dict[str, float]:
    """One D update and one G update on the same fake batch, then the EMA update."""
    G, D = nets["G"], nets["D"]
    ws = mixed_latents(G, cfg.batch, cfg.style_mixing, generator)
    fake = G.synthesis(ws, noise_mode="random")  # (B, 3, H, W), graph kept for the G step
    real = source.sample(cfg.batch, generator)
    do_r1 = cfg.r1_gamma > 0 and state.step % cfg.r1_interval == 0
    stats = discriminator_step(cfg, D, opts["D"], real, fake, do_r1, generator)
    stats.update(generator_step(cfg, D, opts["G"], fake, generator))
    state.step += 1
    state.nimg += cfg.batch
    update_ema(nets["G_ema"], G, ema_beta(cfg, state.nimg))
    return stats


# ----------------------------------------------------------------------------
# Checkpoints, contact sheets, export


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Read a checkpoint written by :meth:`Run.checkpoint`."""
    return read_checkpoint(path, "GANvas", ("nets", "opts"))


@torch.no_grad()
def contact_sheet(G: nn.Module, z: Tensor) -> np.ndarray:
    """A square grid of ``G``'s samples for ``z`` ``(n*n, z_dim)``: ``(n*H, n*W, 3)`` ``uint8``."""
    n = math.isqrt(z.shape[0])
    images = G.synthesis(G.mapping(z, torch.zeros(z.shape[0], 0)), noise_mode="const")  # (n*n, 3, H, W)
    images = ((images.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    _, channels, height, width = images.shape
    grid = images.view(n, n, channels, height, width).permute(0, 3, 1, 4, 2)  # (n, H, n, W, 3)
    return grid.reshape(n * height, n * width, channels).numpy()


def save_sheet(G: nn.Module, z: Tensor, path: Path) -> None:
    from PIL import Image

    atomic_write(path, Image.fromarray(contact_sheet(G, z)).save, ".png")


def export_generator(cfg: TrainConfig, G_ema: nn.Module, D: nn.Module, state: TrainState,
                     data_meta: dict[str, Any], path: Path) -> Path:
    """Write the EMA generator and the discriminator to ``.safetensors`` with a model card."""
    from engine.models.checkpoint import save_generator

    metadata = {
        "name": "house-gan",
        "training": cfg.network_fields() | {
            "batch": cfg.batch, "lr": cfg.lr, "r1_gamma": cfg.r1_gamma, "r1_interval": cfg.r1_interval,
            "style_mixing": cfg.style_mixing, "augment": cfg.augment, "ema_kimg": cfg.ema_half_life_kimg(),
            "kimg": round(state.nimg / 1000, 1), "steps": state.step, "minutes": round(state.seconds / 60, 1),
        },
        "data": {key: data_meta[key] for key in ("kind", "style", "count", "seed", "card") if key in data_meta},
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    save_generator(G_ema, path, D=D, extra_metadata=metadata)
    return path


# ----------------------------------------------------------------------------
# The loop


# Fields a resumed run takes from the command line; everything else comes from the checkpoint.
RUN_OVERRIDES = frozenset({"minutes", "kimg", "steps", "checkpoint_minutes", "log_every", "export", "out", "init"})
# Training hyper-parameters that leave the networks' shapes alone: a resumed run takes these from the
# command line only when they are given there (e.g. lighter augmentation once the data set is seen often).
RETUNABLE = frozenset({"augment", "lr", "r1_gamma", "style_mixing", "ema_kimg"})


@dataclass
class Run:
    """The live objects of one training run and where they are saved."""

    cfg: TrainConfig
    source: ImageSource
    data_meta: dict[str, Any]
    nets: dict[str, nn.Module]
    opts: dict[str, torch.optim.Optimizer]
    generator: torch.Generator
    state: TrainState
    sheet_z: Tensor  # fixed latents, so successive contact sheets are comparable

    @property
    def out(self) -> Path:
        return Path(self.cfg.out)

    def checkpoint(self) -> None:
        """Save the checkpoint and the contact sheets."""
        write_checkpoint(self.out / CHECKPOINT_NAME, self.cfg, self.state, self.generator, nets=self.nets,
                         opts=self.opts)
        save_sheet(self.nets["G_ema"], self.sheet_z, self.out / f"sheet-{self.state.nimg // 1000:06d}kimg.png")
        save_sheet(self.nets["G_ema"], self.sheet_z, self.out / "sheet-latest.png")
        log.info("checkpoint at step %d (%.1f kimg) -> %s", self.state.step, self.state.nimg / 1000,
                 self.out / CHECKPOINT_NAME)


def start_run(cfg: TrainConfig, resume: bool, retune: frozenset[str] = frozenset()) -> Run:
    """Build data, networks and optimisers; restore them from ``cfg.out``'s checkpoint if resuming.

    A resumed run keeps the checkpoint's configuration except ``RUN_OVERRIDES`` and the
    ``RETUNABLE`` fields named in ``retune``, which come from ``cfg``.
    """
    cfg, payload = open_run(cfg, resume, load_checkpoint, RUN_OVERRIDES | (retune & RETUNABLE))
    if payload is not None:
        changed = {k: getattr(cfg, k) for k in retune & RETUNABLE if payload["config"].get(k) != getattr(cfg, k)}
        if changed:
            log.info("resuming with changed %s", ", ".join(f"{k}={v!r}" for k, v in changed.items()))
    images, data_meta = load_images(cfg)
    source = ImageSource(images, cfg.mirror)
    torch.manual_seed(cfg.seed)
    G, D = build_networks(cfg, source.resolution)
    nets = {"G": G, "D": D, "G_ema": copy.deepcopy(G).eval().requires_grad_(False)}
    opt_G, opt_D = make_optimizers(cfg, G, D)
    opts: dict[str, torch.optim.Optimizer] = {"G": opt_G, "D": opt_D}
    generator = torch.Generator().manual_seed(cfg.seed)
    state = TrainState()
    if payload is not None:
        restore_checkpoint(payload, generator, nets=nets, opts=opts)
        state = TrainState(**payload["state"])
        log.info("resumed at step %d (%.1f kimg, %.1f min) from %s", state.step, state.nimg / 1000,
                 state.seconds / 60, Path(cfg.out) / CHECKPOINT_NAME)
    elif cfg.init:
        state = load_export(Path(cfg.init), nets)
        log.info("started from %s at step %d (%.1f kimg, %.1f min)", cfg.init, state.step, state.nimg / 1000,
                 state.seconds / 60)
    sheet_z = torch.randn(cfg.sheet_size**2, cfg.z_dim, generator=torch.Generator().manual_seed(cfg.seed + 1))
    log.info("data %s: %d images at %d px; G %.2fM, D %.2fM parameters", data_meta.get("style"), len(images),
             source.resolution, millions(G), millions(D))
    return Run(cfg, source, data_meta, nets, opts, generator, state, sheet_z)


def progress_line(cfg: TrainConfig, state: TrainState, meter: Meter) -> str:
    """The log line for the steps since the last one: mean losses and logits, pace, ETA."""
    means = " ".join(f"{k} {v:.3f}" for k, v in meter.means().items())
    sec_per_step = meter.sec_per_step()
    return (f"step {state.step} kimg {state.nimg / 1000:.1f} {means} sec/step {sec_per_step:.2f} "
            f"time {state.seconds / 60:.1f}m ETA {eta_minutes(cfg, state, sec_per_step):.1f}m")


def train(cfg: TrainConfig, resume: bool = True, progress: Progress | None = None,
          cancel: CancelToken | None = None, retune: frozenset[str] = frozenset()) -> TrainState:
    """Run (or resume) training in ``cfg.out`` until a budget runs out; export at the end.

    Returns the final state. A checkpoint and a contact sheet are written every
    ``checkpoint_minutes`` and at the end; an error, a cancel or SIGTERM (from the
    command line) writes a checkpoint first.
    """
    check_budget(cfg)
    run = start_run(cfg, resume, retune)
    cfg, state = run.cfg, run.state
    train_steps(cfg, state, Job(1000, progress, cancel),
                lambda used: train_step(cfg, run.nets, run.opts, run.source, state, run.generator),
                lambda meter: progress_line(cfg, state, meter), run.checkpoint)
    if cfg.export:
        path = export_generator(cfg, run.nets["G_ema"], run.nets["D"], state, run.data_meta, Path(cfg.export))
        log.info("exported the EMA generator and the discriminator to %s", path)
    return state


def load_export(path: Path, nets: dict[str, nn.Module]) -> TrainState:
    """Load an export of :func:`export_generator` into ``nets`` (its EMA generator into both G and
    G_ema) and return the training state it records."""
    from engine.models.checkpoint import load_discriminator, load_generator

    try:
        G, D = load_generator(path), load_discriminator(path)
    except GanvasError as e:
        raise CheckpointError(f"--init: {e}") from None
    try:
        for name, source in (("G", G), ("G_ema", G), ("D", D)):
            nets[name].load_state_dict(source.state_dict())
    except RuntimeError as e:
        raise CheckpointError(f"--init {path}: its networks are not this run's (z_dim, w_dim, channels, "
                              f"resolution). Got: {str(e).splitlines()[0]}") from None
    training = getattr(G, "extra_metadata", {}).get("training", {})
    steps = int(training.get("steps", 0))  # the batch is fixed for a run: steps count the images exactly
    return TrainState(step=steps, seconds=60 * float(training.get("minutes", 0)),
                      nimg=steps * int(training.get("batch", 0)))


def export_only(cfg: TrainConfig) -> Path:
    """Export ``cfg.out``'s latest checkpoint without training."""
    payload = load_checkpoint(Path(cfg.out) / CHECKPOINT_NAME)
    cfg = dataclasses.replace(cfg, **{k: v for k, v in payload["config"].items() if k in cfg.network_fields()})
    images, data_meta = load_images(dataclasses.replace(cfg, data=payload["config"]["data"],
                                                        smoke=payload["config"]["smoke"]))
    G, D = build_networks(cfg, int(images.shape[1]))
    G.load_state_dict(payload["nets"]["G_ema"])
    D.load_state_dict(payload["nets"]["D"])
    check(cfg.export is not None, "export-only needs an --export path. Got: none")
    return export_generator(cfg, G.eval(), D, TrainState(**payload["state"]), data_meta, Path(cfg.export))


# ----------------------------------------------------------------------------
# Command line


def parse_args(argv: Sequence[str] | None) -> tuple[TrainConfig, argparse.Namespace]:
    return parse_config(TrainConfig, argv, "Train the house StyleGAN2 on a rendered face data set.", SMOKE,
                        "house-gan-smoke.safetensors", threads=2)


def main(argv: Sequence[str] | None = None) -> int:
    cfg, args = parse_args(argv)
    given = frozenset(f.name for f in dataclasses.fields(TrainConfig) if getattr(args, f.name, None) is not None)
    return command(args.threads, lambda: export_only(cfg) if args.export_only
                   else train(cfg, resume=not args.fresh, retune=given))


if __name__ == "__main__":
    raise SystemExit(main())
