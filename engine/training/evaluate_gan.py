"""Quality of a house generator, measured with a classifier trained on its own data set.

No ImageNet network ships with GANvas, so the Fréchet distance of Heusel et al.
(arXiv:1706.08500, eq. 6) is taken in the penultimate features of a small multi-head
CNN trained to predict the data set's attribute labels (hair, skin, eyes, mouth,
glasses, beard, background ...), not in Inception features:
``FD = |mu1 - mu2|^2 + tr(S1 + S2 - 2 (S1^1/2 S2 S1^1/2)^1/2)``, both square roots
from symmetric eigendecompositions. Generated images carry no labels, so per
attribute we report how sure the classifier is on them (mean max-softmax, entropy)
and how far its predicted class histogram lies from the real label histogram
(total variation), each beside the same figure on held-out real images.

    python -m engine.training.evaluate_gan --data data/house.npz --model house-gan --threads 1 \
        --classifier runs/attr-classifier.pt --count 5000 --psi 1 0.7 \
        --out runs/house-gan/quality.json --sheets resources/models/
    python -m engine.training.evaluate_gan --smoke --model tiny.safetensors --out /tmp/q/quality.json
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from engine.errors import CheckpointError, GanvasError, check
from engine.jobs import CancelToken, Job, Progress
from engine.training.dataset import LabelledImages

log = logging.getLogger(__name__)

CLASSIFIER_FORMAT = "ganvas.attribute-classifier"
DEFAULT_CLASSIFIER = Path("runs/attr-classifier.pt")


# ----------------------------------------------------------------------------
# Fréchet distance


def feature_statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean ``(D,)`` and unbiased covariance ``(D, D)`` of ``(N, D)`` features, in float64."""
    check(features.ndim == 2 and features.shape[0] >= 2,
          f"features must be (N, D) with N >= 2. Got: {tuple(features.shape)}")
    x = np.asarray(features, dtype=np.float64)
    return x.mean(axis=0), np.cov(x, rowvar=False).reshape(x.shape[1], x.shape[1])


def _sqrt_psd(matrix: np.ndarray) -> np.ndarray:
    """Square root of a symmetric positive semi-definite matrix; rounding's tiny negative eigenvalues -> 0."""
    values, vectors = np.linalg.eigh(matrix)
    return (vectors * np.sqrt(values.clip(min=0.0))) @ vectors.T


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """Fréchet (2-Wasserstein squared) distance between N(mu1, sigma1) and N(mu2, sigma2).

    ``tr((S1 S2)^1/2)`` is computed as ``tr((S1^1/2 S2 S1^1/2)^1/2)``: the inner matrix is
    symmetric PSD, so both roots come from ``eigh`` and stay real, where a general
    ``sqrtm`` of the non-symmetric ``S1 S2`` can return complex rounding noise.
    """
    dim = mu1.shape[0]
    check(mu1.shape == mu2.shape == (dim,) and sigma1.shape == sigma2.shape == (dim, dim),
          f"means must be (D,) and covariances (D, D) for one D. Got: {mu1.shape}, {sigma1.shape}, "
          f"{mu2.shape}, {sigma2.shape}")
    sigma1, sigma2 = (np.asarray(s, dtype=np.float64) for s in (sigma1, sigma2))
    root1 = _sqrt_psd((sigma1 + sigma1.T) / 2)
    middle = root1 @ sigma2 @ root1
    trace_root = np.sqrt(np.linalg.eigvalsh((middle + middle.T) / 2).clip(min=0.0)).sum()
    mean_term = np.square(np.asarray(mu1, np.float64) - np.asarray(mu2, np.float64)).sum()
    return float(max(mean_term + np.trace(sigma1) + np.trace(sigma2) - 2.0 * trace_root, 0.0))


def frechet_distance_features(a: np.ndarray, b: np.ndarray) -> float:
    """:func:`frechet_distance` between the Gaussians fitted to features ``a`` ``(N, D)`` and ``b`` ``(M, D)``."""
    check(a.ndim == b.ndim == 2 and a.shape[1] == b.shape[1],
          f"feature sets must be (N, D) and (M, D) with the same D. Got: {a.shape} and {b.shape}")
    return frechet_distance(*feature_statistics(a), *feature_statistics(b))


# ----------------------------------------------------------------------------
# Per-attribute statistics


def entropy_bits(probs: np.ndarray) -> np.ndarray:
    """Entropy in bits of each row of ``(N, K)`` probabilities: ``(N,)``."""
    p = np.asarray(probs, dtype=np.float64)
    return -(p * np.log2(np.where(p > 0, p, 1.0))).sum(axis=1)


def histogram(classes: np.ndarray, num_classes: int) -> np.ndarray:
    """Class shares ``(K,)`` of integer ``classes`` ``(N,)``."""
    return np.bincount(classes.astype(np.int64), minlength=num_classes)[:num_classes] / max(len(classes), 1)


def total_variation(p: np.ndarray, q: np.ndarray) -> float:
    """``0.5 * sum |p - q|`` between two distributions over the same classes, in [0, 1]."""
    return float(0.5 * np.abs(np.asarray(p, np.float64) - np.asarray(q, np.float64)).sum())


def prediction_statistics(probs: np.ndarray, reference_labels: np.ndarray) -> dict[str, float]:
    """What the classifier says about a set of images it has no labels for.

    Args:
        probs: ``(N, K)`` softmax outputs for the images.
        reference_labels: ``(M,)`` true classes of a real reference set.

    Returns:
        ``confidence`` (mean max-softmax), ``entropy_bits`` (mean prediction entropy)
        and ``tv`` (total variation between the histogram of argmax predictions and the
        reference label histogram).
    """
    num_classes = probs.shape[1]
    predicted = histogram(probs.argmax(axis=1), num_classes)
    return {
        "confidence": float(probs.max(axis=1).mean()),
        "entropy_bits": float(entropy_bits(probs).mean()),
        "tv": total_variation(predicted, histogram(reference_labels, num_classes)),
    }


# ----------------------------------------------------------------------------
# The attribute classifier


@dataclass
class ClassifierConfig:
    """Size and training of the attribute classifier."""

    # Channels: width at the stem, doubling at each down-sampling up to 4 * width. Width 32
    # trains at ~450 img/s at 64 px on one core, so 8 epochs of 20k images take ~6 min.
    width: int = 32
    features: int = 256  # the penultimate layer, where the Fréchet distance is measured
    epochs: int = 8
    batch: int = 64
    lr: float = 2e-3
    weight_decay: float = 1e-4
    shift: int = 2  # random translation in pixels; generated faces are not pixel-exactly centred
    holdout: int = 10000  # never trained on: two disjoint real sets of up to holdout / 2 for FD
    train_count: int | None = 20000  # None: every image not held out
    attributes: list[str] | None = None  # None: every categorical label with two or more classes seen
    seed: int = 0


def _conv_block(in_channels: int, out_channels: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False),
                         nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True))


class AttributeClassifier(nn.Module):
    """A plain conv net from ``(B, 3, R, R)`` in ``[-1, 1]`` to a 4 x 4 map, a feature layer and one head per label."""

    def __init__(self, heads: dict[str, int], resolution: int, width: int = 32, features: int = 256) -> None:
        super().__init__()
        check(resolution >= 8 and resolution & (resolution - 1) == 0,
              f"classifier resolution must be a power of two >= 8. Got: {resolution}")
        levels = int(math.log2(resolution // 4))  # stride-2 convolutions down to 4 x 4
        channels = [min(width * 2**i, 4 * width) for i in range(levels)]
        layers = [_conv_block(3, channels[0], 2)]
        for i in range(1, levels):
            layers += [_conv_block(channels[i - 1], channels[i - 1], 1), _conv_block(channels[i - 1], channels[i], 2)]
        self.trunk = nn.Sequential(*layers)
        self.embed = nn.Sequential(nn.Flatten(), nn.Linear(channels[levels - 1] * 16, features), nn.ReLU())
        self.heads = nn.ModuleDict({name: nn.Linear(features, classes) for name, classes in heads.items()})

    def features(self, x: Tensor) -> Tensor:
        """``(B, 3, R, R)`` -> penultimate features ``(B, features)``."""
        return self.embed(self.trunk(x))

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        """``(B, 3, R, R)`` -> logits ``(B, K_name)`` per attribute."""
        h = self.features(x)
        return {name: head(h) for name, head in self.heads.items()}


@dataclass
class TrainedClassifier:
    """A trained classifier with what it needs to be reused on the same data set."""

    net: AttributeClassifier
    vocab: dict[str, list[str]]  # attribute -> class names, in head order
    heldout: np.ndarray  # (holdout,) int64 indices of data-set images never trained on
    resolution: int
    config: ClassifierConfig
    data_count: int  # size of the data set it was trained on: a guard against another data set
    accuracy: dict[str, float] = field(default_factory=dict)  # top-1 accuracy on the unflipped held-out set
    seconds: float = 0.0


def choose_attributes(data: LabelledImages, names: Sequence[str] | None = None) -> dict[str, int]:
    """Attribute -> number of classes, for categorical labels with at least two classes present."""
    categorical = [n for n in data.labels if n in data.vocab]
    chosen = list(names) if names else categorical
    unknown = [n for n in chosen if n not in categorical]
    check(not unknown, f"unknown or non-categorical attributes; choose from {categorical}. Got: {unknown}")
    heads = {n: len(data.vocab[n]) for n in chosen if len(np.unique(data.labels[n])) >= 2}
    check(bool(heads), f"no attribute has two or more classes. Got: {chosen}")
    return heads


def split_indices(count: int, holdout: int, train_count: int | None, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A seeded shuffle of ``range(count)`` into (train, held-out) index arrays."""
    check(0 < holdout < count, f"the held-out set must leave training images. Got: {holdout} of {count}")
    order = np.random.default_rng(seed).permutation(count)
    heldout, train = order[:holdout], order[holdout:]
    if train_count is not None:
        train = train[:train_count]
    return train.astype(np.int64), heldout.astype(np.int64)


def images_to_tensor(images: np.ndarray) -> Tensor:
    """``(B, H, W, 3)`` ``uint8`` -> ``(B, 3, H, W)`` float32 in ``[-1, 1]``, channels-last in memory."""
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2)  # (B, 3, H, W) view of NHWC
    return x.to(torch.float32) / 127.5 - 1.0


def _augment(x: Tensor, shift: int, generator: torch.Generator) -> Tensor:
    """Random horizontal flips (the house generator trains on mirrored images) and translations."""
    batch, _, height, width = x.shape
    flip = torch.rand(batch, generator=generator) < 0.5
    x = torch.where(flip.view(-1, 1, 1, 1), x.flip(3), x)
    if shift <= 0:
        return x
    padded = F.pad(x, [shift] * 4, mode="replicate")
    dx, dy = torch.randint(0, 2 * shift + 1, (2, batch), generator=generator).tolist()
    return torch.stack([padded[i, :, dy[i]:dy[i] + height, dx[i]:dx[i] + width] for i in range(batch)])


def train_classifier(data: LabelledImages, cfg: ClassifierConfig = ClassifierConfig(),
                     progress: Progress | None = None, cancel: CancelToken | None = None) -> TrainedClassifier:
    """Train an :class:`AttributeClassifier` on ``data`` minus a held-out set; report held-out accuracy."""
    start = time.perf_counter()
    heads = choose_attributes(data, cfg.attributes)
    train_idx, heldout = split_indices(len(data), cfg.holdout, cfg.train_count, cfg.seed)
    train_idx = np.sort(train_idx)  # sorted reads from a memory-mapped file
    images = np.ascontiguousarray(data.images[train_idx])
    labels = {n: torch.from_numpy(data.labels[n][train_idx].astype(np.int64)) for n in heads}
    resolution = int(images.shape[1])
    torch.manual_seed(cfg.seed)
    net = AttributeClassifier(heads, resolution, cfg.width, cfg.features).to(memory_format=torch.channels_last)
    steps_per_epoch = max(len(train_idx) // cfg.batch, 1)
    total = steps_per_epoch * cfg.epochs
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    schedule = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=total, pct_start=0.15)
    generator = torch.Generator().manual_seed(cfg.seed)
    job = Job(total, progress, cancel)
    net.train()
    for epoch in range(cfg.epochs):
        order = torch.randperm(len(train_idx), generator=generator)
        running = 0.0
        for step in range(steps_per_epoch):
            batch = order[step * cfg.batch:(step + 1) * cfg.batch]
            x = _augment(images_to_tensor(images[batch.numpy()]), cfg.shift, generator)
            logits = net(x.contiguous(memory_format=torch.channels_last))
            loss = sum(F.cross_entropy(logits[n], labels[n][batch]) for n in heads) / len(heads)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            schedule.step()
            running += loss.item()
            job.step(epoch * steps_per_epoch + step + 1, f"classifier epoch {epoch + 1}/{cfg.epochs}")
        log.info("classifier epoch %d/%d: mean loss %.3f (%.0f s)", epoch + 1, cfg.epochs,
                 running / steps_per_epoch, time.perf_counter() - start)
    net.eval()
    vocab = {n: list(data.vocab[n]) for n in heads}
    trained = TrainedClassifier(net, vocab, heldout, resolution, cfg, len(data))
    _, probs = classify(net, data.images[np.sort(heldout)], cancel=cancel)
    trained.accuracy = {n: float((p.argmax(1) == data.labels[n][np.sort(heldout)]).mean()) for n, p in probs.items()}
    trained.seconds = time.perf_counter() - start
    return trained


@torch.no_grad()
def classify(net: AttributeClassifier, images: np.ndarray, flip: np.ndarray | None = None, batch: int = 250,
             cancel: CancelToken | None = None) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Run ``net`` in eval mode on ``(N, H, W, 3)`` ``uint8`` images (``flip``: ``(N,)`` bool, mirror those).

    Returns:
        features ``(N, features)`` float64 and softmax probabilities ``(N, K)`` float32 per attribute.
    """
    check(images.ndim == 4 and images.shape[3] == 3 and images.dtype == np.uint8,
          f"images must be (N, H, W, 3) uint8. Got: {images.shape} {images.dtype}")
    net.eval()
    job = Job(len(images), None, cancel)
    features, probs = [], {n: [] for n in net.heads}
    for start in range(0, len(images), batch):
        job.check()
        x = images_to_tensor(images[start:start + batch])
        if flip is not None:
            x = torch.where(torch.from_numpy(flip[start:start + batch]).view(-1, 1, 1, 1), x.flip(3), x)
        h = net.features(x.contiguous(memory_format=torch.channels_last))
        features.append(h.double().numpy())
        for name, head in net.heads.items():
            probs[name].append(head(h).softmax(dim=1).numpy())
    return np.concatenate(features), {n: np.concatenate(p) for n, p in probs.items()}


def save_classifier(trained: TrainedClassifier, path: str | Path) -> Path:
    """Write the classifier with its vocabularies, held-out indices and accuracy (``torch.save``, plain data)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": CLASSIFIER_FORMAT, "version": 1, "config": dataclasses.asdict(trained.config),
        "vocab": trained.vocab, "resolution": trained.resolution, "data_count": trained.data_count,
        "heldout": torch.from_numpy(trained.heldout), "accuracy": trained.accuracy, "seconds": trained.seconds,
        "state_dict": trained.net.state_dict(),
    }
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    tmp.replace(path)
    return path


def load_classifier(path: str | Path) -> TrainedClassifier:
    """Read a file written by :func:`save_classifier` (``weights_only``: tensors and plain data only)."""
    path = Path(path)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several unrelated types for a bad or missing file
        raise CheckpointError(f"cannot read attribute classifier {str(path)!r}. Got: {exc}") from exc
    kind = payload.get("format") if isinstance(payload, dict) else type(payload).__name__
    check(kind == CLASSIFIER_FORMAT, f"{str(path)!r} is not a GANvas attribute classifier. Got: {kind!r}",
          CheckpointError)
    cfg = ClassifierConfig(**payload["config"])
    heads = {n: len(v) for n, v in payload["vocab"].items()}
    net = AttributeClassifier(heads, payload["resolution"], cfg.width, cfg.features)
    net.load_state_dict(payload["state_dict"])
    net = net.to(memory_format=torch.channels_last).eval()
    return TrainedClassifier(net, payload["vocab"], payload["heldout"].numpy(), payload["resolution"], cfg,
                             payload["data_count"], payload["accuracy"], payload["seconds"])


def check_classifier_fits(trained: TrainedClassifier, data: LabelledImages, source: str) -> None:
    """Raise if ``trained`` was trained on another data set than ``data`` (size, resolution, classes)."""
    check(trained.data_count == len(data) and trained.resolution == data.images.shape[1],
          f"{source} was trained on {trained.data_count} images at {trained.resolution} px; retrain it with "
          f"--train-classifier. Got: {len(data)} images at {data.images.shape[1]} px", CheckpointError)
    for name, classes in trained.vocab.items():
        check(data.vocab.get(name) == classes, f"{source}: the classes of {name!r} differ from the data set's; "
              f"retrain it with --train-classifier. Got: {data.vocab.get(name)}", CheckpointError)


# ----------------------------------------------------------------------------
# Sampling and contact sheets


@torch.no_grad()
def generate_images(G: nn.Module, seeds: Sequence[int], psi: float = 1.0, batch: int = 50,
                    progress: Progress | None = None, cancel: CancelToken | None = None) -> np.ndarray:
    """Images for ``seeds`` (official seed-to-z map, constant noise): ``(N, R, R, 3)`` ``uint8``."""
    from engine.convert import batch_to_images
    from engine.ops.generate import seed_to_z

    check(G.c_dim == 0, f"quality is measured for unconditional generators. Got: c_dim {G.c_dim}")
    device = next(G.parameters()).device
    job = Job(len(seeds), progress, cancel)
    out = []
    for start in range(0, len(seeds), batch):
        chunk = seeds[start:start + batch]
        z = torch.cat([seed_to_z(int(s), G.z_dim) for s in chunk]).to(device)
        ws = G.mapping(z, torch.zeros(len(chunk), 0, device=device), truncation_psi=psi)
        out.extend(batch_to_images(G.synthesis(ws, noise_mode="const")))
        job.step(start + len(chunk), f"generated {start + len(chunk)}/{len(seeds)} images at psi {psi:g}")
    return np.stack(out)


def contact_sheet(images: np.ndarray, columns: int) -> np.ndarray:
    """Tile ``(N, H, W, 3)`` images row by row: ``(ceil(N / columns) * H, columns * W, 3)``, blanks white."""
    count, height, width, channels = images.shape
    rows = -(-count // columns)
    padded = np.full((rows * columns, height, width, channels), 255, dtype=images.dtype)
    padded[:count] = images
    grid = padded.reshape(rows, columns, height, width, channels).transpose(0, 2, 1, 3, 4)  # (rows, H, cols, W, 3)
    return grid.reshape(rows * height, columns * width, channels)


def save_contact_sheets(G: nn.Module, folder: str | Path, prefix: str, psis: Sequence[float] = (1.0, 0.7),
                        count: int = 64) -> list[Path]:
    """Write ``<prefix>-samples-psi<psi>.png`` grids of seeds ``0 .. count-1`` for each truncation ``psi``."""
    from engine.images import save_image

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    columns = math.isqrt(count - 1) + 1
    paths = []
    for psi in psis:
        sheet = contact_sheet(generate_images(G, list(range(count)), psi), columns)
        paths.append(save_image(folder / f"{prefix}-samples-psi{psi:g}.png", sheet))
    return paths


# ----------------------------------------------------------------------------
# The evaluation


def _classify_real_sets(classifier: TrainedClassifier, data: LabelledImages, count: int, mirror: bool, seed: int,
                        cancel: CancelToken | None) -> tuple[dict[str, Any], dict[str, dict[str, np.ndarray]]]:
    """Features and probabilities of real sets "A" and "B", and their labels per attribute."""
    rng = np.random.default_rng(seed)
    real, labels = {}, {}
    for key, part in (("A", classifier.heldout[:count]), ("B", classifier.heldout[count:2 * count])):
        part = np.sort(part)  # sorted reads from a memory-mapped file
        flip = rng.random(count) < 0.5 if mirror else None
        real[key] = classify(classifier.net, data.images[part], flip, cancel=cancel)
        labels[key] = {n: data.labels[n][part].astype(np.int64) for n in classifier.vocab}
    return real, labels


def _real_attribute_row(name: str, classes: int, real: dict[str, Any],
                        labels: dict[str, dict[str, np.ndarray]]) -> dict[str, Any]:
    """Accuracy on A and B together; confidence, entropy and TV of B's predictions against A's labels."""
    probs_ab = np.concatenate([real["A"][1][name], real["B"][1][name]])
    labels_ab = np.concatenate([labels["A"][name], labels["B"][name]])
    return {
        "classes": classes,
        "majority_share": float(histogram(labels_ab, classes).max()),
        "accuracy_real": float((probs_ab.argmax(1) == labels_ab).mean()),
        "real": prediction_statistics(real["B"][1][name], labels["A"][name]),
        "generated": {},
    }


def evaluate(G: nn.Module, classifier: TrainedClassifier, data: LabelledImages, count: int = 5000,
             psis: Sequence[float] = (1.0,), mirror: bool = True, seed: int = 0,
             progress: Progress | None = None, cancel: CancelToken | None = None) -> dict[str, Any]:
    """Compare ``count`` generated images (seeds ``0 .. count-1``) with ``count`` held-out real ones.

    The real sets A and B are disjoint ``count``-image slices of the classifier's held-out
    images. With ``mirror`` each real image is flipped with probability 1/2, as the
    generator saw them in training. Returns the report written by :func:`main`.
    """
    check(G.img_resolution == classifier.resolution,
          f"generator and classifier resolutions differ. Got: {G.img_resolution} and {classifier.resolution} px")
    check(1 < count and 2 * count <= len(classifier.heldout),
          f"count must be in 2 .. {len(classifier.heldout) // 2} (half the classifier's held-out images). "
          f"Got: {count}")
    timings: dict[str, float] = {}
    clock = time.perf_counter()
    real, labels = _classify_real_sets(classifier, data, count, mirror, seed, cancel)
    timings["classify_real"] = time.perf_counter() - clock
    fd_real = frechet_distance_features(real["A"][0], real["B"][0])
    report_attributes = {name: _real_attribute_row(name, len(classes), real, labels)
                         for name, classes in classifier.vocab.items()}
    fd_generated = {}
    for psi in psis:
        clock = time.perf_counter()
        fake = generate_images(G, list(range(count)), psi, progress=progress, cancel=cancel)
        timings[f"generate_psi{psi:g}"] = time.perf_counter() - clock
        clock = time.perf_counter()
        features, probs = classify(classifier.net, fake, cancel=cancel)
        timings[f"classify_psi{psi:g}"] = time.perf_counter() - clock
        fd_generated[f"{psi:g}"] = frechet_distance_features(features, real["A"][0])
        for name in classifier.vocab:
            report_attributes[name]["generated"][f"{psi:g}"] = prediction_statistics(probs[name], labels["A"][name])
    return {
        "count": count, "mirror": mirror, "feature_dim": int(real["A"][0].shape[1]),
        "fd": {"real_vs_real": fd_real, "generated_vs_real": fd_generated},
        "attributes": report_attributes, "seconds": timings,
    }


DEFINITIONS = """\
Definitions. FD: Fréchet distance between Gaussians fitted to the attribute classifier's \
{dim}-d penultimate features of two {count}-image sets (real A: held-out images the classifier \
never trained on{mirror}; real B: another disjoint held-out set; generated: seeds 0..{last}, \
constant noise). real-vs-real is the floor that sampling noise alone gives. FD values compare \
only under one classifier file ({classifier}): a retrained classifier has another feature scale. Per attribute: \
*accuracy* = top-1 accuracy of the classifier on the {both} held-out real images (A and B) against \
their labels; *majority* = share of the most frequent class (accuracy of always guessing it); \
*conf.* = mean max-softmax probability; *H* = mean prediction entropy in bits; *TV* = total \
variation distance between the histogram of the classifier's argmax predictions on a set and the \
true label histogram of real A. The real columns use real B, so their TV is the floor from \
classifier errors and sampling noise; the generated columns use the generated images.
"""


def markdown_report(report: dict[str, Any]) -> str:
    """The report as markdown: the FD table, then one row per attribute."""
    psis = list(report["fd"]["generated_vs_real"])
    title = f"# Quality of `{Path(report.get('model', 'generator')).name}`"
    lines = [title, ""]
    if report.get("model_training"):
        t = report["model_training"]
        lines += [f"Generator trained {t.get('kimg', '?')} kimg ({t.get('minutes', '?')} min).", ""]
    lines += ["| comparison | FD |", "| --- | ---: |", f"| real A vs real B (floor) | {report['fd']['real_vs_real']:.3f} |"]
    lines += [f"| generated (psi={p}) vs real A | {report['fd']['generated_vs_real'][p]:.3f} |" for p in psis]
    header = "| attribute | classes | majority | accuracy | conf. real | H real | TV real |"
    rule = "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"
    for p in psis:
        header += f" conf. gen psi={p} | H gen psi={p} | TV gen psi={p} |"
        rule += " ---: | ---: | ---: |"
    lines += ["", header, rule]
    for name, a in report["attributes"].items():
        row = (f"| {name} | {a['classes']} | {a['majority_share']:.3f} | {a['accuracy_real']:.3f} | "
               f"{a['real']['confidence']:.3f} | {a['real']['entropy_bits']:.3f} | {a['real']['tv']:.3f} |")
        for p in psis:
            g = a["generated"][p]
            row += f" {g['confidence']:.3f} | {g['entropy_bits']:.3f} | {g['tv']:.3f} |"
        lines.append(row)
    count = report["count"]
    mirror = ", each flipped with probability 1/2 as in the generator's training" if report["mirror"] else ""
    classifier = report.get("classifier", {}).get("path") or "trained in memory"
    lines += ["", DEFINITIONS.format(dim=report["feature_dim"], count=count, mirror=mirror, last=count - 1,
                                     both=2 * count, classifier=classifier)]
    return "\n".join(lines)


# ----------------------------------------------------------------------------
# Command line

# Tiny settings for tests: parametric faces at the generator's resolution, a narrow net, one epoch.
SMOKE_CLASSIFIER = dict(width=8, features=32, epochs=1, batch=16, holdout=32, train_count=None, shift=1)
SMOKE_FACES = 96
SMOKE_COUNT = 16
# Parametric labels binned into classes: name -> (low, high, number of bins).
PARAMETRIC_BINS = {"glasses": (0.0, 1.0, 2), "smile": (-1.0, 1.0, 3), "skin_tone": (0.0, 1.0, 3),
                   "hair_colour": (0.0, 1.0, 3), "hair_length": (0.0, 1.0, 2), "background_hue": (0.0, 1.0, 4)}


def parametric_data(count: int, resolution: int, seed: int = 0) -> LabelledImages:
    """Parametric faces (:mod:`engine.training.faces`) with their labels binned by :data:`PARAMETRIC_BINS`."""
    from engine.training.faces import render_faces

    images, values = render_faces(count, resolution, seed)
    labels, vocab = {}, {}
    for name, (low, high, bins) in PARAMETRIC_BINS.items():
        edges = np.linspace(low, high, bins + 1)[1:-1]
        labels[name] = np.digitize(values[name], edges).astype(np.int16)
        vocab[name] = [f"bin{i}" for i in range(bins)]
    return LabelledImages(images, labels, vocab, {"kind": "parametric", "count": count, "seed": seed})


def _tiny_generator(resolution: int = 16) -> nn.Module:
    from engine.models.stylegan2 import Generator

    torch.manual_seed(0)
    G = Generator(z_dim=16, c_dim=0, w_dim=16, img_resolution=resolution, img_channels=3,
                  mapping_kwargs={"num_layers": 1},
                  synthesis_kwargs={"channel_base": 128, "channel_max": 16, "num_fp16_res": 0, "conv_clamp": None})
    return G.eval().requires_grad_(False)


class _ProgressPrinter:
    """Writes a progress line to stderr at most every few seconds, and at each phase's end."""

    def __init__(self, every: float = 10.0) -> None:
        self.every, self.last = every, 0.0

    def __call__(self, step: int, total: int, message: str, preview: Any | None = None) -> None:
        now = time.perf_counter()
        if step == total or now - self.last >= self.every:
            self.last = now
            sys.stderr.write(f"{time.strftime('%H:%M:%S')} {message} ({100.0 * step / total:5.1f} %)\n")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Measure a house generator's quality with an attribute classifier.")
    parser.add_argument("--data", type=Path, default=Path("data/house.npz"))
    parser.add_argument("--model", default=None, help="catalogue id or weights file (default house-gan)")
    parser.add_argument("--classifier", type=Path, default=None, help=f"default {DEFAULT_CLASSIFIER}")
    parser.add_argument("--train-classifier", action="store_true", help="train it even if the file exists")
    parser.add_argument("--count", type=int, default=None, help="images per set (default 5000)")
    parser.add_argument("--psi", type=float, nargs="+", default=[1.0], help="truncation values to evaluate")
    parser.add_argument("--out", type=Path, default=None, help="report JSON; the markdown goes beside it")
    parser.add_argument("--sheets", type=Path, default=None, help="folder for the psi=1 and psi=0.7 contact sheets")
    parser.add_argument("--sheet-prefix", default="house-gan")
    parser.add_argument("--no-mirror", action="store_true", help="do not flip the real sets")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--width", type=int, default=None)
    parser.add_argument("--train-count", type=int, default=None)
    parser.add_argument("--classifier-seed", type=int, default=None,
                        help="seed of a newly trained classifier: its initialisation, order and held-out split "
                             "(default 0; directions are fitted with other seeds than the one that judges them)")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--smoke", action="store_true", help="parametric faces and a tiny classifier, seconds")
    return parser.parse_args(argv)


def _classifier_config(args: argparse.Namespace) -> ClassifierConfig:
    cfg = ClassifierConfig(**SMOKE_CLASSIFIER) if args.smoke else ClassifierConfig()
    overrides = {"epochs": args.epochs, "width": args.width, "train_count": args.train_count,
                 "seed": args.classifier_seed}
    cfg = dataclasses.replace(cfg, **{k: v for k, v in overrides.items() if v is not None})
    return dataclasses.replace(cfg, holdout=max(cfg.holdout, 2 * _count(args)))


def _count(args: argparse.Namespace) -> int:
    return args.count or (SMOKE_COUNT if args.smoke else 5000)


def run(args: argparse.Namespace, progress: Progress | None = None) -> dict[str, Any]:
    """Everything :func:`main` does, given parsed arguments; returns the report."""
    from engine.models.catalog import resolve
    from engine.models.checkpoint import load_generator
    from engine.training.dataset import load_dataset

    seconds: dict[str, float] = {}
    clock = time.perf_counter()
    if args.smoke and args.model is None:
        G, model_path = _tiny_generator(), "tiny-random-generator"
    else:
        model_path = str(resolve(args.model or "house-gan"))
        G = load_generator(model_path)
    if args.smoke:
        data = parametric_data(SMOKE_FACES, G.img_resolution)
    else:
        data = load_dataset(args.data, mmap=True)
    seconds["load"] = time.perf_counter() - clock
    classifier_path = args.classifier or (None if args.smoke else DEFAULT_CLASSIFIER)
    if args.train_classifier or classifier_path is None or not Path(classifier_path).is_file():
        trained = train_classifier(data, _classifier_config(args), progress)
        seconds["train_classifier"] = trained.seconds
        log.info("classifier trained in %.0f s; held-out accuracy %s", trained.seconds,
                 {k: round(v, 3) for k, v in trained.accuracy.items()})
        if classifier_path is not None:
            save_classifier(trained, classifier_path)
    else:
        trained = load_classifier(classifier_path)
        check_classifier_fits(trained, data, str(classifier_path))
    report = evaluate(G, trained, data, _count(args), args.psi, mirror=not args.no_mirror, progress=progress)
    seconds.update(report.pop("seconds"))
    if args.sheets is not None:
        clock = time.perf_counter()
        save_contact_sheets(G, args.sheets, args.sheet_prefix)
        seconds["contact_sheets"] = time.perf_counter() - clock
    extra = getattr(G, "extra_metadata", None) or {}
    header = {"model": model_path, "model_training": extra.get("training", {}),
              "data": "parametric (smoke)" if args.smoke else str(args.data),
              "classifier": {"path": str(classifier_path) if classifier_path else None,
                             "config": dataclasses.asdict(trained.config),
                             "heldout_accuracy": trained.accuracy, "train_seconds": round(trained.seconds, 1)}}
    return header | report | {"seconds": {k: round(v, 1) for k, v in seconds.items()}}


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S",
                        stream=sys.stderr, force=True)
    if args.threads is not None:  # a process-wide torch setting, so only the command line sets it
        torch.set_num_threads(args.threads)
    out = args.out or (Path(tempfile.gettempdir()) / "ganvas-evaluate-smoke" / "quality.json" if args.smoke
                       else Path("runs/house-gan/quality.json"))
    start = time.perf_counter()
    try:
        report = run(args, _ProgressPrinter())
    except GanvasError as exc:
        log.error("%s", exc)
        return 1
    report["seconds"]["total"] = round(time.perf_counter() - start, 1)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    markdown = markdown_report(report)
    out.with_suffix(".md").write_text(markdown + "\n")
    sys.stdout.write(markdown + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
