"""Named attribute directions fitted from a classifier, refined to leave the rest of the picture be.

1. InterFaceGAN (Shen et al., arXiv:2005.09635): sample w, label the images with an attribute
   classifier, fit a linear boundary in W (:func:`engine.ops.edit.fit_direction`); its unit normal
   is the attribute's direction.
2. Keeping the rest: a boundary normal moves whatever the generator couples with the attribute
   (in the house generator, growing hair also opens the mouth). A W+ edit ``d`` is fitted so that
   ``G(w + d)`` looks like the plain edit inside the attribute's region and like ``G(w)`` outside
   it (:func:`keep_direction`), on samples moved towards the other side of the boundary, with
   the other attributes' places weighted up. The region of an attribute is where its images
   differ on average, ``|mean(yes) - mean(no)|`` over the *data set* (:func:`data_set_regions`),
   whose labels are drawn independently; every house avatar has the same pose, so these maps are
   sharp (glasses across the eyes, the mouth, the hair around the head). Generated samples would
   not do: their attributes come coupled. This is the masked-blending target of localised editing
   (cf. StyleSpace, Wu et al., arXiv:2011.12799) turned into one latent direction.

No classifier is differentiated through: a direction optimised to raise a classifier's score
(even an ensemble's, judged by another classifier trained apart) learns small changes that fool
classifiers of the same kind rather than drawing the attribute, as the house-gan bench found.

    python -m engine.ops.attributes --model house-gan --data data/house.npz \\
        --classifier runs/attr-classifier-seed1.pt runs/attr-classifier-seed2.pt
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from engine.errors import GanvasError, check
from engine.jobs import CancelToken, Job, Progress
from engine.ops.edit import (Direction, apply_edits, direction_scale, directions_path, fit_direction, sample_w,
                             save_directions)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Attribute:
    """A binary attribute over one categorical data-set label: which values count as yes / no."""

    name: str
    label: str
    positive: tuple[str, ...]
    negative: tuple[str, ...]


_HATS = ("hat", "hijab", "turban", "winterHat02", "winterHat03", "winterHat04", "winterHat1")
_LONG = ("bigHair", "bob", "bun", "curly", "curvy", "dreads", "frida", "fro", "froBand", "longButNotTooLong",
         "miaWallace", "shavedSides", "straight01", "straight02", "straightAndStrand")
_SHORT = ("dreads01", "dreads02", "frizzle", "shaggy", "shaggyMullet", "shortCurly", "shortFlat", "shortRound",
          "shortWaved", "sides", "theCaesar", "theCaesarAndSidePart")
# The house data set's labels (DiceBear "avataaars" option names, engine/training/dataset.py).
HOUSE_ATTRIBUTES = (
    Attribute("glasses", "accessoriesVariant", ("kurt", "prescription01", "prescription02", "round", "sunglasses",
                                                "wayfarers"), ("none",)),
    Attribute("facial_hair", "facialHairVariant", ("beardLight", "beardMajestic", "beardMedium", "moustacheFancy",
                                                   "moustacheMagnum"), ("none",)),
    Attribute("hat", "topVariant", _HATS, ("none",) + _LONG + _SHORT),
    Attribute("bald", "topVariant", ("none",), _LONG + _SHORT),
    Attribute("long_hair", "topVariant", _LONG, _SHORT),
    Attribute("smile", "mouthVariant", ("smile", "twinkle", "default", "tongue"),
              ("concerned", "sad", "serious", "grimace", "disbelief", "screamOpen", "vomit")),
    Attribute("dark_skin", "skinColor", ("#614335", "#ae5d29", "#d08b5b"), ("#ffdbb4", "#edb98a", "#f8d25c", "#fd9841")),
    Attribute("dark_hair", "hairColor", ("#2c1b18", "#4a312c", "#724133"), ("#d6b370", "#ecdcbf", "#e8e1e1", "#b58143")),
)

# images (B, 3, H, W) in [-1, 1] -> label name -> class probabilities (B, K), K = len(vocab[label])
Predictor = Callable[[Tensor], dict[str, Tensor]]


def classifier_predictor(paths: str | os.PathLike | Sequence[str | os.PathLike], resolution: int
                         ) -> tuple[Predictor, dict[str, list[str]]]:
    """The attribute classifier(s) of :mod:`engine.training.evaluate_gan` as one :data:`Predictor`
    (several files: their class probabilities averaged), and the vocabularies."""
    from engine.training.evaluate_gan import load_classifier

    paths = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    check(bool(paths), "at least one classifier file is needed. Got: none")
    nets, vocab = [], None
    for path in paths:
        trained = load_classifier(path)
        check(trained.resolution == resolution, f"{path}: the classifier reads {trained.resolution} px images, "
                                                f"the generator makes {resolution} px. Got: {trained.resolution}")
        check(vocab is None or trained.vocab == vocab, f"{path}: another label vocabulary than {paths[0]}. Got: "
                                                       f"{sorted(trained.vocab)}")
        vocab = trained.vocab
        nets.append(trained.net.eval().requires_grad_(False))

    def predict(images: Tensor) -> dict[str, Tensor]:
        x = images.clamp(-1, 1).float().cpu().contiguous(memory_format=torch.channels_last)
        out: dict[str, Tensor] = {}
        for net in nets:
            for name, logits in net(x).items():
                out[name] = out.get(name, 0) + logits.softmax(dim=1) / len(nets)
        return out

    return predict, vocab


def yes_no(probs: dict[str, Tensor], vocab: dict[str, list[str]], attr: Attribute) -> tuple[Tensor, Tensor]:
    """P(yes) and P(no) of ``attr``, each ``(N,)``: the summed probabilities of its positive / negative classes."""
    check(attr.label in probs and attr.label in vocab, f"the classifier has no label {attr.label!r}. "
                                                       f"Got: {sorted(probs)}")
    index = {v: i for i, v in enumerate(vocab[attr.label])}
    p = probs[attr.label]
    return p[:, [index[v] for v in attr.positive]].sum(dim=1), p[:, [index[v] for v in attr.negative]].sum(dim=1)


def _predict_latents(G: nn.Module, predict: Predictor, ws: Tensor, batch: int, job: Job | None = None
                     ) -> dict[str, Tensor]:
    """Class probabilities of the images of ``ws`` ``(N, num_ws, w_dim)``, per label: ``(N, K)``."""
    device = next(G.parameters()).device
    probs: dict[str, list[Tensor]] = {}
    for i, start in enumerate(range(0, len(ws), batch)):
        images = G.synthesis(ws[start:start + batch].to(device), noise_mode="const")
        for name, p in predict(images).items():
            probs.setdefault(name, []).append(p.float().cpu())
        if job is not None:
            job.step(i + 1, f"labelled {min(start + batch, len(ws))} of {len(ws)} samples")
    return {name: torch.cat(p) for name, p in probs.items()}


# ----------------------------------------------------------------------------- regions


def attribute_regions(images: Tensor, labels: dict[str, Tensor], blur: int = 5) -> dict[str, Tensor]:
    """Where each attribute shows: ``|mean(yes) - mean(no)|`` of ``images`` ``(N, C, H, W)`` over colour,
    box-blurred by ``blur`` px, made mirror-symmetric (faces, and x-flipped training) and scaled to max 1.

    ``labels``: attribute name -> ``(N,)`` with 1 yes, 0 no, -1 unsure (left out). Returns name -> ``(H, W)``.
    """
    out = {}
    for name, y in labels.items():
        yes, no = images[y == 1], images[y == 0]
        check(len(yes) > 0 and len(no) > 0, f"{name}: a region needs samples of both sides. Got: {len(yes)} yes, "
                                            f"{len(no)} no")
        diff = (yes.double().mean(0) - no.double().mean(0)).abs().mean(0).float()  # (H, W)
        diff = F.avg_pool2d(diff[None, None], blur, 1, blur // 2, count_include_pad=False)[0, 0]
        diff = diff.maximum(diff.flip(1))
        out[name] = diff / diff.max().clamp_min(1e-12)
    return out


def keep_weights(regions: dict[str, Tensor], name: str, focus: float) -> Tensor:
    """Per-pixel weight ``(H, W)`` of change when editing ``name``, mean 1: ``(1 - R_name)^2``, times
    ``1 + focus * sum over the others of (R_other - R_name)^+ / its mean``: places that belong more to
    another attribute weigh more, each other attribute as much in all, however small its place (a mouth)."""
    own = regions[name]
    parts = [(r - own).clamp_min(0) for n, r in regions.items() if n != name]
    others = sum((p / p.mean() for p in parts if p.max() > 0), torch.zeros_like(own))
    weight = (1 - own).clamp(0, 1).square() * (1 + focus * others)
    return weight / weight.mean().clamp_min(1e-12)


# ----------------------------------------------------------------------------- fitting


@dataclass(frozen=True)
class KeepConfig:
    """How :func:`keep_direction` refines a direction (the defaults made the house-gan directions)."""

    strength: float = 3.0  # the plain edit it copies, in standard deviations of sampled w along the normal
    steps: int = 300
    batch: int = 32
    lr: float = 0.01  # Adam's step, as a fraction of the edit's length in W
    focus: float = 5.0  # extra weight on the other attributes' regions (keep_weights)
    seed: int = 0


def keep_direction(G: nn.Module, start: Direction, pool: Tensor, yes: Tensor, region: Tensor, weights: Tensor,
                   cfg: KeepConfig = KeepConfig(), job: Job | None = None, step_offset: int = 0) -> Tensor:
    """A W+ edit ``(num_ws, w_dim)``, in W units, that does what ``start`` does at ``cfg.strength`` inside
    ``region`` ``(H, W)`` (values in [0, 1]) and nothing outside it.

    Each step takes a batch of ``pool`` w ``(N, w_dim)``, moves each towards the other side of the
    attribute (``yes`` ``(N,)`` bool: those move down) and fits, in squared error weighted by
    ``weights`` ``(H, W)``::

        G(w + d)  ~  region * G(w + s * start)  +  (1 - region) * G(w)

    No classifier takes part, so nothing here can learn to fool one: the attribute changes as much
    as the plain edit changes it inside its region.
    """
    device = next(G.parameters()).device
    num_ws = G.num_ws
    normal = start.vector.detach().float().to(device)
    normal = normal[None].expand(num_ws, -1) if normal.ndim == 1 else normal
    plain = normal * start.scale * cfg.strength  # (num_ws, w_dim): the plain edit's move
    d = plain.clone().requires_grad_(True)
    opt = torch.optim.Adam([d], lr=cfg.lr * float(plain.norm()))
    gen = torch.Generator().manual_seed(cfg.seed)
    region, weights = region.clamp(0, 1).to(device), weights.to(device)
    for step in range(cfg.steps):
        idx = torch.randint(0, len(pool), (cfg.batch,), generator=gen)
        w = pool[idx].to(device)[:, None].repeat(1, num_ws, 1)
        side = torch.where(yes[idx], -1.0, 1.0).to(device)[:, None, None]  # towards the other side
        with torch.no_grad():
            target = torch.lerp(G.synthesis(w, noise_mode="const"), G.synthesis(w + side * plain, noise_mode="const"),
                                region)
        loss = ((G.synthesis(w + side * d, noise_mode="const") - target).square().mean(1) * weights).mean()
        (d.grad,) = torch.autograd.grad(loss, d)  # the direction's gradient only: G's weights are left be
        opt.step()
        if job is not None:
            job.step(step_offset + step + 1, f"{start.name}: step {step + 1} of {cfg.steps}, error {loss.item():.4f}")
    return d.detach().cpu()


@torch.no_grad()
def fit_attribute_directions(G: nn.Module, predict: Predictor, vocab: dict[str, list[str]],
                             attributes: Sequence[Attribute] = HOUSE_ATTRIBUTES, n: int = 4000, seed: int = 0,
                             batch: int = 64, min_confidence: float = 0.8, keep: KeepConfig | None = None,
                             regions: dict[str, Tensor] | None = None, progress: Progress | None = None,
                             cancel: CancelToken | None = None) -> list[Direction]:
    """Sample ``n`` w, label their images with ``predict``, fit one InterFaceGAN direction per attribute
    on the confident predictions (probability of yes or no >= ``min_confidence``) and, given ``keep``,
    refine each with :func:`keep_direction` inside its region (``regions``: name -> ``(H, W)``, from
    :func:`data_set_regions`: generated samples would mix in whatever G couples with the attribute)."""
    ws = sample_w(G, n, seed)
    label_batches = -(-n // batch)
    job = Job(label_batches + (keep.steps * len(attributes) if keep is not None else 0), progress, cancel)
    if keep is not None:
        missing = [a.name for a in attributes if regions is None or a.name not in regions]
        check(not missing, f"refining needs the region of every attribute. Got none for: {missing}")
    probs = _predict_latents(G, predict, ws[:, None].repeat(1, G.num_ws, 1), batch, job)
    fitted: list[tuple[Direction, Tensor]] = []
    for attr in attributes:
        yes, no = yes_no(probs, vocab, attr)
        sure = (yes >= min_confidence) | (no >= min_confidence)
        labels = (yes[sure] > no[sure]).long()
        n_yes = int(labels.sum())
        if min(n_yes, len(labels) - n_yes) < 20:
            log.warning("skipped %s: %d confident yes and %d no samples", attr.name, n_yes, len(labels) - n_yes)
            continue
        fit = fit_direction(ws[sure], labels, seed=seed)
        info = {"accuracy": round(fit.accuracy, 4), "positive": n_yes, "negative": len(labels) - n_yes, "samples": n}
        fitted.append((Direction(attr.name, fit.normal, None, direction_scale(ws, fit.normal), "interfacegan", info),
                       yes >= no))
    if keep is None:
        return [d for d, _ in fitted]

    job.total = label_batches + keep.steps * len(fitted)  # skipped attributes take no steps
    names = [d.name for d, _ in fitted]
    out = []
    for i, (plain, yes) in enumerate(fitted):
        weights = keep_weights({n: regions[n] for n in names}, plain.name, keep.focus)
        weights = torch.maximum(weights, regions[plain.name])  # inside the region: copy the plain edit
        with torch.enable_grad():
            move = keep_direction(G, plain, ws, yes, regions[plain.name], weights, keep, job,
                                  label_batches + i * keep.steps)
        # Strength s of the kept direction = the plain edit of strength s inside the region, so its
        # scale is the fitted move's length per unit of strength, not the spread of w along it.
        scale = float(move.norm()) / keep.strength
        info = dict(plain.info, keep=dataclasses.asdict(keep))
        out.append(Direction(plain.name, move / move.norm(), None, scale, "interfacegan+keep", info))
    return out


def data_set_regions(path: str | os.PathLike, attributes: Sequence[Attribute] = HOUSE_ATTRIBUTES,
                     count: int = 8000) -> dict[str, Tensor]:
    """:func:`attribute_regions` of the first ``count`` images of a labelled data set
    (:mod:`engine.training.dataset`), whose labels are independent of each other."""
    from engine.training.dataset import load_dataset

    data = load_dataset(path, mmap=True)
    images = torch.from_numpy(np.array(data.images[:count])).permute(0, 3, 1, 2).float() / 127.5 - 1
    labels = {}
    for attr in attributes:
        check(attr.label in data.vocab, f"{path}: no label {attr.label!r}. Got: {sorted(data.vocab)}")
        vocab = list(data.vocab[attr.label])
        values = torch.from_numpy(data.labels[attr.label][:count].astype(np.int64))
        positive = torch.isin(values, torch.tensor([vocab.index(v) for v in attr.positive if v in vocab]))
        negative = torch.isin(values, torch.tensor([vocab.index(v) for v in attr.negative if v in vocab]))
        labels[attr.name] = torch.where(positive, 1, torch.where(negative, 0, -1))
    return attribute_regions(images, labels)


@torch.no_grad()
def edit_effects(G: nn.Module, predict: Predictor, vocab: dict[str, list[str]], directions: Sequence[Direction],
                 attributes: Sequence[Attribute] = HOUSE_ATTRIBUTES, n: int = 256, strength: float = 2.0,
                 seed: int = 1, batch: int = 64) -> dict[str, dict[str, float]]:
    """How each edit moves each attribute: direction -> attribute -> mean change of P(yes | yes or no)
    from ``-strength`` to ``+strength`` over ``n`` fresh samples. Off-diagonal entries are entanglement."""
    base = sample_w(G, n, seed)[:, None].repeat(1, G.num_ws, 1)
    out: dict[str, dict[str, float]] = {}
    for d in directions:
        low, high = (_predict_latents(G, predict, apply_edits(base, [d.edit(s)]), batch) for s in (-strength, strength))
        out[d.name] = {}
        for a in attributes:
            (y0, n0), (y1, n1) = yes_no(low, vocab, a), yes_no(high, vocab, a)
            change = y1 / (y1 + n1).clamp_min(1e-6) - y0 / (y0 + n0).clamp_min(1e-6)
            out[d.name][a.name] = round(float(change.mean()), 3)
    return out


# ----------------------------------------------------------------------------- command line


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine.ops.attributes",
                                     description="fit a model's named directions from attribute classifiers")
    parser.add_argument("--model", required=True, help="model id or weights file")
    parser.add_argument("--classifier", required=True, nargs="+",
                        help="attribute classifier(s) (.pt) from evaluate_gan; several are averaged")
    parser.add_argument("--samples", type=int, default=4000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", default=None,
                        help="the model's labelled data set (engine.training.dataset): where each attribute lives; "
                             "without it the plain InterFaceGAN normals are kept")
    parser.add_argument("--keep-steps", type=int, default=KeepConfig.steps, help="refinement steps per direction")
    parser.add_argument("--strength", type=float, default=KeepConfig.strength,
                        help="the plain edit copied inside each region, in standard deviations")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--out", default=None, help="default: <model>.directions.safetensors beside the weights")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        return _fit_command(args)
    except GanvasError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def _fit_command(args: argparse.Namespace) -> int:
    from engine.document import file_sha256
    from engine.models.catalog import resolve
    from engine.models.checkpoint import load_generator

    weights = resolve(args.model)
    G = load_generator(weights)
    predict, vocab = classifier_predictor(args.classifier, G.img_resolution)
    keep = regions = None
    if args.data is not None and args.keep_steps > 0:
        keep = KeepConfig(strength=args.strength, steps=args.keep_steps)
        regions = data_set_regions(args.data)

    def report(step: int, total: int, message: str, preview: object = None) -> None:
        print(f"\r{step}/{total} {message:<70}", end="", file=sys.stderr, flush=True)

    directions = fit_attribute_directions(G, predict, vocab, n=args.samples, seed=args.seed, keep=keep,
                                          regions=regions, progress=report)
    print(file=sys.stderr)
    effects = edit_effects(G, predict, vocab, directions)
    for d in directions:
        d.info["effect_of_2_sigma"] = effects[d.name]  # P(yes) change of every attribute, -2 -> +2 sigma
        d.info["classifiers"] = [Path(c).name for c in args.classifier]
    out = save_directions(args.out or directions_path(weights), directions, file_sha256(weights))
    names = [a.name for a in HOUSE_ATTRIBUTES]
    print(f"{'direction':<12} {'scale':>6} {'w acc':>6}   P(yes) change -2 -> +2 sigma: "
          + " ".join(f"{n[:9]:>9}" for n in names))
    for d in directions:
        row = " ".join(f"{d.info['effect_of_2_sigma'][n]:>9.2f}" for n in names)
        print(f"{d.name:<12} {d.scale:>6.3f} {d.info['accuracy']:>6.3f}   {row}")
    print(f"wrote {len(directions)} directions to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
