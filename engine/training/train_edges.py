"""Train the house edge-to-image model ``house-edges`` (pix2pix) on Canny edges of the house data.

pix2pix (Isola et al., arXiv:1611.07004): a U-Net generator (``engine.models.unet``) maps an
edge map to an image; a conditional PatchGAN discriminator judges (edges, image) pairs patch by
patch; G minimises the GAN loss plus 100 x L1 to the real image (Sec. 3.1, Eq. 4); Adam
2e-4 (0.5, 0.999); D's loss is halved; dropout in the middle of the U-Net is the noise; the
learning rate is constant, then decays linearly to 0 (the reference's n_epochs + n_epochs_decay,
here halves of the time budget). The edges are ControlNet's Canny (100/200, ``engine.ops.edges``),
computed once per run and cached, so what the app draws or extracts is what the model saw.
Departures for 64 px on one CPU thread: 6 U-Net levels (the 1 x 1 bottleneck of ``unet_256`` at
256 px is reached at 64 px after 6 halvings), ngf 32, a 2-layer PatchGAN (34 px patches: the
reference's 70 px on 256 px images are a quarter of the side, 2 layers the nearest at 64 px),
batch 16 with batch norm (the reference uses batch 1).
The last ``holdout`` images of the data set are never trained on; ``bench/sketch_quality.py``
measures on avatars rendered with another seed, unseen by both house models.

    python -m engine.training.train_edges --data data/house.npz --out runs/house-edges --minutes 45 --threads 1
    python -m engine.training.train_edges --smoke --out /tmp/smoke      # seconds, tiny network
    python -m engine.training.train_edges --out runs/house-edges --export-only
"""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from engine.errors import check
from engine.jobs import CancelToken, Job, Progress
from engine.models.unet import UnetConfig, UnetGenerator, save_unet
from engine.ops.edges import HIGH, LOW, canny
from engine.training.run import (CHECKPOINT_NAME, Meter, RunState, atomic_write, budget_used, check_budget, command,
                                 millions, open_run, parse_config, read_checkpoint, restore_checkpoint, train_steps,
                                 write_checkpoint)

log = logging.getLogger(__name__)

DEFAULT_EXPORT = Path("resources/models/house-edges.safetensors")
INPUT_CONVENTION = "1 channel: +1 on a Canny edge, -1 elsewhere"


@dataclass
class EdgesConfig:
    """Everything a run needs; saved in each checkpoint so a resume rebuilds the same nets."""

    data: str = "data/house.npz"
    out: str = "runs/house-edges"
    holdout: int = 1000  # the last images of the data set, never trained on
    # Networks. ngf 32: G 7.3 M parameters, 0.28 s a step on one thread; ngf 64: 29 M at 0.82 s, a third
    # of the steps in the same budget; ngf 16: 1.8 M at 0.16 s.
    num_downs: int = 6
    ngf: int = 32
    ndf: int = 32
    d_layers: int = 2
    # Optimisation (pix2pix).
    batch: int = 16
    lr: float = 2e-4
    beta1: float = 0.5
    l1_weight: float = 100.0
    decay_from: float = 0.5  # fraction of the budget after which the learning rate decays linearly to 0
    mirror: bool = True
    low: float = LOW  # Canny thresholds of the training edges (0-255 scale)
    high: float = HIGH
    # Budget and bookkeeping; whichever target is reached first stops the run.
    minutes: float | None = None
    steps: int | None = None
    checkpoint_minutes: float = 5.0
    log_every: int = 20
    eval_count: int = 200  # held-out images for the validation figures
    sheet_size: int = 8
    seed: int = 0
    export: str | None = str(DEFAULT_EXPORT)
    smoke: bool = False

    def unet(self) -> UnetConfig:
        return UnetConfig(input_nc=1, output_nc=3, num_downs=self.num_downs, ngf=self.ngf, norm="batch", dropout=True)


# A network and data set small enough that two steps take well under a second.
SMOKE = dict(data="", holdout=4, num_downs=5, ngf=4, ndf=4, d_layers=1, batch=4, steps=2, log_every=1,
             eval_count=4, sheet_size=2, checkpoint_minutes=0.0)
SMOKE_RESOLUTION, SMOKE_COUNT = 32, 16


EdgesState = RunState  # the step count and training seconds are all it needs


# ----------------------------------------------------------------------------- data


def load_images(cfg: EdgesConfig) -> tuple[np.ndarray, dict[str, Any]]:
    """Every image of the data set ``(N, R, R, 3)`` uint8 (a memmap) and its meta."""
    if cfg.smoke and not cfg.data:
        from engine.training.faces import render_faces

        images, _ = render_faces(SMOKE_COUNT, SMOKE_RESOLUTION, seed=cfg.seed)
        return images, {"kind": "parametric", "style": "parametric", "count": SMOKE_COUNT}
    from engine.training.dataset import load_dataset

    data = load_dataset(cfg.data, mmap=True)
    return data.images, data.meta


def edge_maps(images: np.ndarray, low: float, high: float, cache: Path | None = None,
              job: Job | None = None) -> np.ndarray:
    """Canny edges ``(N, R, R)`` bool of ``images``, read from / written to ``cache`` (``.npy``, bit-packed)."""
    side = images.shape[2]
    if cache is not None and cache.is_file():
        packed = np.load(cache, allow_pickle=False)
        if packed.shape[:2] == images.shape[:2]:
            return np.unpackbits(packed, axis=-1, count=side).astype(bool)
        log.warning("ignoring %s: its shape %s does not match the images", cache, packed.shape)
    edges = np.empty(images.shape[:3], dtype=bool)
    for start in range(0, len(images), 256):
        if job is not None:
            job.check()
        chunk = torch.from_numpy(np.ascontiguousarray(images[start:start + 256])).permute(0, 3, 1, 2)
        edges[start:start + 256] = canny(chunk.float() / 127.5 - 1, low, high)[:, 0].numpy() > 0.5
    if cache is not None:  # bit-packed: 8x smaller, 15 MB for the house data
        atomic_write(cache, lambda tmp: np.save(tmp, np.packbits(edges, axis=-1)), ".npy")
    return edges


class PairSource:
    """Random (edges, image) batches from the training part of the data set."""

    def __init__(self, images: np.ndarray, edges: np.ndarray, mirror: bool):
        check(images.ndim == 4 and images.shape[3] == 3 and images.dtype == np.uint8,
              f"training images must be (N, H, W, 3) uint8. Got: {images.shape} {images.dtype}")
        self.images, self.edges, self.mirror = images, edges, mirror

    def __len__(self) -> int:
        return len(self.images)

    def batch(self, index: np.ndarray) -> tuple[Tensor, Tensor]:
        """``(B, 1, R, R)`` edges in {-1, 1} and ``(B, 3, R, R)`` images in ``[-1, 1]``."""
        index = np.sort(index)
        x = torch.from_numpy(np.ascontiguousarray(self.images[index])).permute(0, 3, 1, 2).float() / 127.5 - 1
        e = torch.from_numpy(self.edges[index]).float()[:, None] * 2 - 1
        return e, x

    def sample(self, batch: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        e, x = self.batch(torch.randint(0, len(self), (batch,), generator=generator).numpy())
        if self.mirror:  # the edges of a mirrored image are the mirrored edges (up to Canny's tie rule)
            flip = (torch.rand(batch, generator=generator) < 0.5).view(-1, 1, 1, 1)
            e, x = torch.where(flip, e.flip(3), e), torch.where(flip, x.flip(3), x)
        return e, x


# ----------------------------------------------------------------------------- networks


class PatchDiscriminator(nn.Module):
    """pix2pix's ``NLayerDiscriminator``: a logit per overlapping patch of ``(N, in_nc, H, W)``.

    ``layers`` stride-2 4x4 convs (channels doubling up to 8 ndf), then two stride-1 ones;
    receptive field 16 px for 1 layer, 34 for 2, 70 for 3 (the reference's default).
    """

    def __init__(self, in_nc: int, ndf: int = 64, layers: int = 3):
        super().__init__()
        seq: list[nn.Module] = [nn.Conv2d(in_nc, ndf, 4, 2, 1), nn.LeakyReLU(0.2, True)]
        mult = 1
        for n in range(1, layers + 1):
            prev, mult = mult, min(2 ** n, 8)
            stride = 2 if n < layers else 1
            seq += [nn.Conv2d(ndf * prev, ndf * mult, 4, stride, 1, bias=False), nn.BatchNorm2d(ndf * mult),
                    nn.LeakyReLU(0.2, True)]
        seq.append(nn.Conv2d(ndf * mult, 1, 4, 1, 1))
        self.model = nn.Sequential(*seq)

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)


def build_networks(cfg: EdgesConfig) -> tuple[UnetGenerator, PatchDiscriminator]:
    return UnetGenerator(cfg.unet()), PatchDiscriminator(1 + 3, cfg.ndf, cfg.d_layers)


def _init_weights(net: nn.Module, generator: torch.Generator) -> None:
    """The reference's "normal" init: conv weights N(0, 0.02), norm weights N(1, 0.02), biases 0."""
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
                m.weight.copy_(torch.randn(m.weight.shape, generator=generator) * 0.02)
                if m.bias is not None:
                    m.bias.zero_()
            elif isinstance(m, nn.BatchNorm2d):
                m.weight.copy_(1 + torch.randn(m.weight.shape, generator=generator) * 0.02)
                m.bias.zero_()


# ----------------------------------------------------------------------------- one step


def train_step(cfg: EdgesConfig, G: nn.Module, D: nn.Module, opts: dict[str, torch.optim.Optimizer],
               edges: Tensor, real: Tensor) -> dict[str, float]:
    """One D update on (edges, real) against (edges, G(edges)), then one G update (GAN + λ L1)."""
    fake = G(edges)
    fake_logits = D(torch.cat([edges, fake.detach()], dim=1))
    real_logits = D(torch.cat([edges, real], dim=1))
    loss_d = 0.5 * (F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
                    + F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits)))
    opts["D"].zero_grad(set_to_none=True)
    loss_d.backward()
    opts["D"].step()
    D.requires_grad_(False)
    logits = D(torch.cat([edges, fake], dim=1))
    gan = F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))
    l1 = (fake - real).abs().mean()
    opts["G"].zero_grad(set_to_none=True)
    (gan + cfg.l1_weight * l1).backward()
    opts["G"].step()
    D.requires_grad_(True)
    return {"D": loss_d.item(), "G_gan": gan.item(), "L1": l1.item()}


def lr_factor(cfg: EdgesConfig, used: float) -> float:
    """Constant, then linear decay to 0 over the rest of the budget."""
    if used <= cfg.decay_from:
        return 1.0
    return max(0.0, (1 - used) / (1 - cfg.decay_from))


@torch.no_grad()
def validate(G: nn.Module, source: PairSource, count: int) -> dict[str, float]:
    """L1 and PSNR of G (eval mode) on the first ``count`` held-out pairs."""
    was_training = G.training
    G.eval()
    l1 = se = 0.0
    n = min(count, len(source))
    for start in range(0, n, 50):
        e, x = source.batch(np.arange(start, min(start + 50, n)))
        y = G(e)
        l1 += float((y - x).abs().mean(dim=(1, 2, 3)).sum())
        se += float((((y - x) / 2).square().mean(dim=(1, 2, 3))).clamp_min(1e-10).log10().sum())
    G.train(was_training)
    return {"l1": l1 / n, "psnr": -10 * se / n}  # PSNR: mean over images, on the [0, 1] scale


@torch.no_grad()
def contact_sheet(G: nn.Module, source: PairSource, count: int) -> np.ndarray:
    """Rows of (edges, output, real) for the first ``count`` held-out pairs: ``(3 R, count R, 3)`` uint8."""
    was_training = G.training
    G.eval()
    e, x = source.batch(np.arange(min(count, len(source))))
    y = G(e)
    G.train(was_training)
    rows = [e.expand(-1, 3, -1, -1), y, x]
    grid = torch.cat([torch.cat(list(r), dim=2) for r in rows], dim=1)  # (3, 3R, count R)
    return ((grid.clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).numpy()


# ----------------------------------------------------------------------------- the run


# Fields a resumed run takes from the command line; everything else comes from the checkpoint.
RUN_OVERRIDES = frozenset({"minutes", "steps", "checkpoint_minutes", "log_every", "export", "out"})


@dataclass
class Run:
    cfg: EdgesConfig
    train: PairSource
    heldout: PairSource
    data_meta: dict[str, Any]
    G: UnetGenerator
    D: PatchDiscriminator
    opts: dict[str, torch.optim.Optimizer]
    generator: torch.Generator
    state: EdgesState

    @property
    def out(self) -> Path:
        return Path(self.cfg.out)

    def checkpoint(self) -> None:
        """Save everything a resume needs (atomically) and the held-out contact sheet."""
        from PIL import Image

        write_checkpoint(self.out / CHECKPOINT_NAME, self.cfg, self.state, self.generator,
                         nets={"G": self.G, "D": self.D}, opts=self.opts)
        sheet = contact_sheet(self.G, self.heldout, self.cfg.sheet_size)
        atomic_write(self.out / "sheet-latest.png", Image.fromarray(sheet).save, ".png")


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Read a checkpoint written by :meth:`Run.checkpoint`."""
    return read_checkpoint(path, "house-edges", ("nets", "opts"))


def start_run(cfg: EdgesConfig, resume: bool, job: Job | None = None) -> Run:
    """Data, edges, networks and optimisers; restored from ``cfg.out``'s checkpoint when resuming."""
    cfg, payload = open_run(cfg, resume, load_checkpoint, RUN_OVERRIDES)
    images, meta = load_images(cfg)
    check(0 < cfg.holdout < len(images), f"holdout must leave training images. Got: {cfg.holdout} of {len(images)}")
    split = len(images) - cfg.holdout
    cache = None if cfg.smoke else Path(cfg.out) / f"edges-{cfg.low:g}-{cfg.high:g}.npy"
    t0 = time.perf_counter()
    edges = edge_maps(images, cfg.low, cfg.high, cache, job)
    log.info("Canny edges of %d images ready in %.0f s", len(images), time.perf_counter() - t0)
    train_src = PairSource(images[:split], edges[:split], cfg.mirror)
    heldout = PairSource(images[split:], edges[split:], mirror=False)
    generator = torch.Generator().manual_seed(cfg.seed)
    G, D = build_networks(cfg)
    _init_weights(G, generator)
    _init_weights(D, generator)
    opts = {name: torch.optim.Adam(net.parameters(), lr=cfg.lr, betas=(cfg.beta1, 0.999))
            for name, net in (("G", G), ("D", D))}
    state = EdgesState()
    if payload is not None:
        restore_checkpoint(payload, generator, nets={"G": G, "D": D}, opts=opts)
        state = EdgesState(**payload["state"])
        log.info("resumed at step %d (%.1f min)", state.step, state.seconds / 60)
    log.info("data %s: %d training and %d held-out images at %d px; G %.2fM, D %.2fM parameters",
             meta.get("style"), split, cfg.holdout, images.shape[1], millions(G), millions(D))
    return Run(cfg, train_src, heldout, meta, G.train(), D.train(), opts, generator, state)


def train(cfg: EdgesConfig, resume: bool = True, progress: Progress | None = None,
          cancel: CancelToken | None = None) -> EdgesState:
    """Run (or resume) training in ``cfg.out`` until the budget is spent; export at the end.

    A checkpoint is written every ``checkpoint_minutes``, at the end, and on an error, a cancel or
    SIGTERM (from the command line), so an interrupted run resumes where it stopped.
    """
    check_budget(cfg)
    job = Job(1000, progress, cancel)
    run = start_run(cfg, resume, job)
    cfg, state = run.cfg, run.state

    def step(used: float) -> dict[str, float]:
        for opt in run.opts.values():
            for group in opt.param_groups:
                group["lr"] = cfg.lr * lr_factor(cfg, used)
        stats = train_step(cfg, run.G, run.D, run.opts, *run.train.sample(cfg.batch, run.generator))
        state.step += 1
        return stats

    def progress_line(meter: Meter) -> str:
        means = " ".join(f"{k} {v:.3f}" for k, v in meter.means().items())
        return (f"step {state.step} {means} sec/step {meter.sec_per_step():.3f} time {state.seconds / 60:.1f}m "
                f"lr x{lr_factor(cfg, budget_used(cfg, state)):.2f}")

    train_steps(cfg, state, job, step, progress_line, run.checkpoint)
    if cfg.export:
        path = export(run)
        log.info("exported the generator to %s", path)
    return state


def export(run: Run) -> Path:
    """Validate on the held-out images and write the generator with its metadata."""
    cfg, state = run.cfg, run.state
    figures = validate(run.G, run.heldout, cfg.eval_count)
    log.info("held-out validation (%d images): L1 %.4f, PSNR %.2f dB", min(cfg.eval_count, len(run.heldout)),
             figures["l1"], figures["psnr"])
    total = len(run.train) + len(run.heldout)
    extra = {
        "name": "house-edges", "kind": "edges-to-image", "resolution": int(run.train.images.shape[1]),
        "input": INPUT_CONVENTION, "canny": {"low": cfg.low, "high": cfg.high, "sigma": 0.0},
        "training": {"batch": cfg.batch, "lr": cfg.lr, "l1_weight": cfg.l1_weight, "ngf": cfg.ngf, "ndf": cfg.ndf,
                     "d_layers": cfg.d_layers, "steps": state.step, "minutes": round(state.seconds / 60, 1)},
        "heldout": {"first": total - cfg.holdout, "count": cfg.holdout},
        "validation": {k: round(v, 4) for k, v in figures.items()} | {"count": min(cfg.eval_count, len(run.heldout))},
        "data": {k: run.data_meta[k] for k in ("kind", "style", "count", "seed", "card") if k in run.data_meta},
    }
    return save_unet(run.G.eval(), cfg.export, extra)


def export_only(cfg: EdgesConfig) -> Path:
    """Export ``cfg.out``'s latest checkpoint without training."""
    check(cfg.export is not None, "export-only needs an --export path. Got: none")
    run = start_run(cfg, resume=True)
    check(run.state.step > 0, f"no checkpoint to export in {cfg.out}. Got: step 0")
    return export(run)


# ----------------------------------------------------------------------------- command line


def parse_args(argv: Sequence[str] | None) -> tuple[EdgesConfig, argparse.Namespace]:
    return parse_config(EdgesConfig, argv, "Train the house edge-to-image model (pix2pix) on Canny edges.", SMOKE,
                        "house-edges-smoke.safetensors", threads=1)


def main(argv: Sequence[str] | None = None) -> int:
    cfg, args = parse_args(argv)
    return command(args.threads, lambda: export_only(cfg) if args.export_only else train(cfg, resume=not args.fresh))


if __name__ == "__main__":
    raise SystemExit(main())
