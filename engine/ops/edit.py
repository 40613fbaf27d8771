"""Latent editing: directions, the non-destructive edit stack, style mixing, interpolation, animation.

Directions in W: GANSpace (Härkönen et al., arXiv:2004.02546): principal axes of sampled w, applied
to a layer range; SeFa (Shen & Zhou, arXiv:2007.06600, Eq. 5): top eigenvectors of A^T A, A the
row-normalised style-affine weights of the chosen layers; InterFaceGAN (Shen et al., arXiv:2005.09635):
the unit normal of a linear boundary between labelled codes (here L2 logistic regression, not an SVM),
with conditional editing (Sec. 2.2) by projecting one normal off others. Style mixing copies layer
slots from a second latent (Karras et al., arXiv:1812.04948, Sec. 3.1); slerp follows White
(arXiv:1609.04468), taken about a centre (w_avg) with the radius interpolated linearly.

A drag (:mod:`engine.ops.drag`) enters the edit stack as the latent delta it found (:class:`DragEdit`).

Layer ranges are half-open w-slot ranges ``(start, stop)``; ``None`` means every slot. Strengths of
a :class:`Direction` are in standard deviations of sampled w along it, so 1 is a typical change.
Named directions fitted from an attribute classifier come from :mod:`engine.ops.attributes`.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from engine.convert import tensor_to_image
from engine.errors import Cancelled, GanvasError, check
from engine.jobs import CancelToken, Job, Progress

log = logging.getLogger(__name__)

LayerRange = tuple[int, int]
DIRECTIONS_FORMAT = "ganvas.directions"
DIRECTIONS_VERSION = "1"
ANIMATION_SUFFIXES = (".gif", ".mp4")


# ----------------------------------------------------------------------------- layers


def layer_slice(layers: LayerRange | None, num_ws: int) -> slice:
    """The slot slice of a half-open range ``(start, stop)`` (``None``: all ``num_ws`` slots)."""
    if layers is None:
        return slice(0, num_ws)
    start, stop = int(layers[0]), int(layers[1])
    check(0 <= start < stop <= num_ws, f"layer range must satisfy 0 <= start < stop <= {num_ws}. Got: {layers}")
    return slice(start, stop)


def layer_groups(num_ws: int) -> dict[str, LayerRange]:
    """Coarse / middle / fine slot ranges (StyleGAN, Sec. 3.1: 4-8 px, 16-32 px, 64 px and up).

    Two slots per resolution gives slots 0-3, 4-7, 8- once there are 10 or more slots (StyleGAN2 at
    64 px and up; StyleGAN3's 16 slots are not tied to resolutions but split the same way); fewer
    slots split in the 4:4:10 proportion of an 18-slot network.
    """
    a, b = (4, 8) if num_ws >= 10 else (max(1, round(num_ws * 4 / 18)), max(2, round(num_ws * 8 / 18)))
    return {"coarse": (0, a), "middle": (a, b), "fine": (b, num_ws), "all": (0, num_ws)}


def parse_layers(text: str, num_ws: int) -> LayerRange:
    """``"A-B"`` (inclusive slots, as a user counts), ``"A"``, or a group name -> ``(start, stop)``."""
    groups = layer_groups(num_ws)
    if text in groups:
        return groups[text]
    try:
        first, _, last = text.partition("-")
        start, stop = int(first), int(last or first) + 1
    except ValueError:
        raise GanvasError(f"layers must be A-B, A or one of {sorted(groups)}. Got: {text!r}") from None
    layer_slice((start, stop), num_ws)
    return start, stop


def style_affines(G: nn.Module) -> list[tuple[int, Tensor]]:
    """``(w slot, affine weight (C, w_dim))`` for every modulated layer of ``G``, in slot order.

    StyleGAN2: a block's ToRGB reads the same slot as the next block's conv0. StyleGAN3: slot 0
    feeds the Fourier input's transform (not a style, so left out), slot i+1 feeds layer i.
    """
    syn = G.synthesis
    out: list[tuple[int, Tensor]] = []
    if hasattr(syn, "block_resolutions"):
        slot = 0
        for res in syn.block_resolutions:
            block = getattr(syn, f"b{res}")
            convs = [getattr(block, n) for n in ("conv0", "conv1") if hasattr(block, n)]
            out += [(slot + i, conv.affine.weight) for i, conv in enumerate(convs)]
            if hasattr(block, "torgb"):
                out.append((slot + len(convs), block.torgb.affine.weight))
            slot += block.num_conv
    elif hasattr(syn, "layer_names"):
        out = [(i + 1, getattr(syn, name).affine.weight) for i, name in enumerate(syn.layer_names)]
    else:
        raise GanvasError(f"SeFa needs a StyleGAN2/3 synthesis network. Got: {type(syn).__name__}")
    return out


# ----------------------------------------------------------------------------- directions


@dataclass(eq=False)  # holds tensors: compare by identity
class Direction:
    """A named editing direction; ``vector`` is unit-norm, ``(w_dim,)`` or ``(num_ws, w_dim)``."""

    name: str
    vector: Tensor
    layers: LayerRange | None = None  # default slots to edit
    scale: float = 1.0  # strength 1 moves w by this much: the std of sampled w along ``vector`` (a kept
    # attribute direction's fitted move per unit of strength instead, see engine.ops.attributes)
    method: str = ""
    info: dict = field(default_factory=dict)

    def edit(self, strength: float = 0.0, layers: LayerRange | None = None) -> DirectionEdit:
        """An edit moving ``strength`` standard deviations along this direction."""
        return DirectionEdit(self.vector * self.scale, strength, layers if layers is not None else self.layers,
                             self.name)


def _fixed_sign(vectors: Tensor) -> Tensor:
    """Flip each row so its largest-magnitude entry is positive: stable names across runs."""
    idx = vectors.abs().argmax(dim=1, keepdim=True)
    return vectors * vectors.gather(1, idx).sign()


def pca(samples: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Principal axes of ``samples`` ``(N, D)``: components ``(D, D)`` (rows, orthonormal,
    by decreasing variance), their standard deviations ``(D,)`` and the mean ``(D,)``."""
    check(samples.ndim == 2 and samples.shape[0] > 1, f"samples must be (N > 1, D). Got: {tuple(samples.shape)}")
    x = samples.to(torch.float64)
    mean = x.mean(dim=0)
    cov = (x - mean).T @ (x - mean) / (x.shape[0] - 1)  # (D, D)
    var, vecs = torch.linalg.eigh(cov)  # ascending
    comps = _fixed_sign(vecs.flip(1).T.contiguous())  # (D, D), largest variance first
    return comps.float(), var.flip(0).clamp_min(0).sqrt().float(), mean.float()


def sefa(G: nn.Module, layers: LayerRange | None = None) -> tuple[Tensor, Tensor]:
    """SeFa directions of the style affines reading ``layers``: ``(w_dim, w_dim)`` unit rows by
    decreasing eigenvalue, and the eigenvalues ``(w_dim,)``."""
    span = layer_slice(layers, G.num_ws)
    weights = [w for slot, w in style_affines(G) if span.start <= slot < span.stop]
    check(bool(weights), f"no modulated layer reads slots {span.start}..{span.stop - 1}. Got: {layers}")
    a = torch.cat(weights).detach().to(torch.float64)  # (sum C, w_dim)
    a = a / a.norm(dim=1, keepdim=True).clamp_min(1e-12)  # SeFa normalises each style channel's weights
    eigval, eigvec = torch.linalg.eigh(a.T @ a)
    return _fixed_sign(eigvec.flip(1).T.contiguous()).float(), eigval.flip(0).float()


def load_boundary(path: str | os.PathLike, num_ws: int, w_dim: int) -> Tensor:
    """An InterFaceGAN boundary ``.npy`` of shape ``(1, w_dim)``, ``(w_dim,)`` or ``(num_ws, w_dim)``,
    as a unit tensor ``(w_dim,)`` or ``(num_ws, w_dim)``."""
    path = Path(path)
    check(path.is_file(), f"no such boundary file. Got: {path}")
    try:
        arr = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise GanvasError(f"{path}: not a .npy array. Got: {exc}") from None
    check(isinstance(arr, np.ndarray) and np.issubdtype(arr.dtype, np.floating),
          f"{path}: a boundary must be a float array. Got: {getattr(arr, 'dtype', type(arr).__name__)}")
    good = arr.shape in ((1, w_dim), (w_dim,), (num_ws, w_dim))
    check(good, f"{path}: boundary shape must be (1, {w_dim}) or ({num_ws}, {w_dim}). Got: {arr.shape}")
    vec = torch.from_numpy(arr.astype(np.float32)).reshape(-1, w_dim)
    vec = vec[0] if vec.shape[0] == 1 else vec
    norm = float(vec.norm())
    check(math.isfinite(norm) and norm > 0, f"{path}: boundary must be finite and non-zero. Got: norm {norm}")
    return vec / norm


@dataclass
class LinearBoundary:
    """A fitted hyperplane ``normal . w + offset = 0``; ``normal`` unit, pointing to label 1."""

    normal: Tensor
    offset: float
    accuracy: float  # on the held-out fifth of the samples


def fit_direction(ws: Tensor, labels: Tensor | np.ndarray, l2: float = 1e-3, seed: int = 0) -> LinearBoundary:
    """InterFaceGAN's direction: fit a linear classifier of binary ``labels`` ``(N,)`` on codes ``ws``
    ``(N, w_dim)`` (or ``(N, num_ws, w_dim)``, giving a W+ normal) and return its unit normal.

    Class-balanced L2 logistic regression (LBFGS, float64) on codes centred and scaled by one
    scalar, which keeps the normal's direction; 80 % fit, 20 % held out for the accuracy.
    """
    y = torch.as_tensor(np.asarray(labels)).reshape(-1).to(torch.float64)
    check(ws.ndim in (2, 3) and ws.shape[0] == y.shape[0],
          f"ws must be (N, w_dim) or (N, num_ws, w_dim) with one label each. Got: {tuple(ws.shape)}, {len(y)} labels")
    check(bool(((y == 0) | (y == 1)).all()), "labels must be 0/1. Got: other values")
    n_pos = int(y.sum())
    check(min(n_pos, len(y) - n_pos) >= 2, f"need at least 2 samples of each label. Got: {n_pos} of {len(y)}")
    x = ws.reshape(len(y), -1).to(torch.float64)
    mean, s = x.mean(dim=0), x.std().clamp_min(1e-12)
    x = (x - mean) / s
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    n_fit = max(len(y) - len(y) // 5, 2) if len(y) >= 50 else len(y)
    fit, val = perm[:n_fit], perm[n_fit:] if n_fit < len(y) else perm
    pos_frac = float(y[fit].mean().clamp(1e-3, 1 - 1e-3))
    weight = torch.where(y[fit] > 0, 0.5 / pos_frac, 0.5 / (1 - pos_frac))  # balanced classes
    w = torch.zeros(x.shape[1], dtype=torch.float64, requires_grad=True)
    b = torch.zeros((), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=200, line_search_fn="strong_wolfe")

    def closure() -> Tensor:
        opt.zero_grad()
        logits = x[fit] @ w + b
        loss = (weight * nn.functional.binary_cross_entropy_with_logits(logits, y[fit], reduction="none")).mean()
        loss = loss + l2 * w.square().sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    w, b = w.detach(), b.detach()
    norm = float(w.norm())
    check(norm > 0, "the labels are not linearly related to the codes. Got: a zero normal")
    accuracy = float(((x[val] @ w + b > 0).to(torch.float64) == y[val]).to(torch.float64).mean())
    normal = w / norm / s  # back to raw coordinates: w.(x - mean)/s + b
    offset = float(b / norm - (normal * mean).sum())
    unit = normal / normal.norm()
    return LinearBoundary(unit.float().reshape(ws.shape[1:]), offset / float(normal.norm()), accuracy)


def project_off(direction: Tensor, others: Sequence[Tensor]) -> Tensor:
    """Conditional direction (InterFaceGAN Sec. 2.2): ``direction`` minus its projection on the
    span of ``others`` (all the same shape), renormalised to unit length."""
    d = direction.reshape(-1).to(torch.float64)
    if not others:
        return direction / direction.norm()
    for o in others:
        check(o.shape == direction.shape, f"directions must share one shape. Got: {tuple(o.shape)} vs "
                                          f"{tuple(direction.shape)}")
    q, _ = torch.linalg.qr(torch.stack([o.reshape(-1).to(torch.float64) for o in others], dim=1))  # (D, K)
    residual = d - q @ (q.T @ d)
    check(float(residual.norm()) > 1e-6 * float(d.norm()),
          "the direction lies in the span of the ones to keep fixed. Got: nothing left after projection")
    return (residual / residual.norm()).to(direction.dtype).reshape(direction.shape)


def direction_scale(samples: Tensor, vector: Tensor) -> float:
    """Std of sampled w ``(N, w_dim)`` along ``vector`` (a W+ vector acts as the sum of its rows)."""
    v = vector if vector.ndim == 1 else vector.sum(dim=0)
    return float((samples.to(torch.float64) @ v.to(torch.float64)).std())


@torch.no_grad()
def sample_w(G: nn.Module, n: int = 10_000, seed: int = 0, batch: int = 2048) -> Tensor:
    """``n`` w of standard-normal z (random classes if conditional): ``(n, w_dim)`` on the CPU."""
    gen = torch.Generator().manual_seed(seed)
    device = next(G.parameters()).device
    out = []
    for start in range(0, n, batch):
        m = min(batch, n - start)
        z = torch.randn([m, G.z_dim], generator=gen).to(device)
        c = None
        if G.c_dim > 0:
            c = nn.functional.one_hot(torch.randint(G.c_dim, [m], generator=gen), G.c_dim).float().to(device)
        out.append(G.mapping(z, c)[:, 0].float().cpu())
    return torch.cat(out)


# ----------------------------------------------------------------------------- direction files


def directions_path(weights: str | os.PathLike) -> Path:
    """Where a model's named directions live: ``<model>.directions.safetensors`` beside its weights."""
    weights = Path(weights)
    return weights.with_name(weights.stem + ".directions.safetensors")


def save_directions(path: str | os.PathLike, directions: Sequence[Direction], model_sha256: str = "") -> Path:
    """Write named directions (vectors + names, layers, scales in metadata), atomically."""
    from safetensors.torch import save

    from engine.images import write_atomically

    names = [d.name for d in directions]
    check(len(set(names)) == len(names) and all(names), f"direction names must be unique and non-empty. Got: {names}")
    entries = [{"name": d.name, "layers": list(d.layers) if d.layers else None, "scale": d.scale,
                "method": d.method, "info": d.info} for d in directions]
    meta = {"format": DIRECTIONS_FORMAT, "format_version": DIRECTIONS_VERSION, "model_sha256": model_sha256,
            "directions": json.dumps(entries)}
    tensors = {d.name: d.vector.detach().float().cpu().contiguous() for d in directions}
    return write_atomically(path, save(tensors, metadata=meta))


def load_directions(path: str | os.PathLike) -> dict[str, Direction]:
    """Read a file written by :func:`save_directions`: name -> :class:`Direction`."""
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            check(meta.get("format") == DIRECTIONS_FORMAT, f"{path}: not a GANvas directions file. "
                                                           f"Got: format {meta.get('format')!r}")
            entries = json.loads(meta["directions"])
            return {e["name"]: Direction(e["name"], f.get_tensor(e["name"]),
                                         tuple(e["layers"]) if e.get("layers") else None, float(e["scale"]),
                                         e.get("method", ""), e.get("info", {})) for e in entries}
    except GanvasError:
        raise
    except Exception as exc:  # safetensors, json and key errors for a damaged file
        raise GanvasError(f"{path}: unreadable directions file. Got: {type(exc).__name__}: {exc}") from None


class DirectionLibrary:
    """The directions of one generator, each computed once and kept.

    ``get(spec)`` takes a shipped name, ``"ganspace:K"``, ``"sefa:K"`` (over ``layers``) or a
    boundary ``.npy`` path. Scales come from ``samples`` w drawn once. Build a new library after
    changing the generator's weights (pivotal tuning changes the SeFa affines).
    """

    def __init__(self, G: nn.Module, named: dict[str, Direction] | None = None, samples: int = 10_000,
                 seed: int = 0):
        self.G, self.named = G, dict(named or {})
        self._n, self._seed = samples, seed
        self._w: Tensor | None = None
        self._pca: tuple[Tensor, Tensor, Tensor] | None = None
        self._sefa: dict[LayerRange | None, tuple[Tensor, Tensor]] = {}
        self._cache: dict[tuple[str, LayerRange | None], Direction] = {}

    @classmethod
    def for_weights(cls, G: nn.Module, weights: str | os.PathLike, **kwargs) -> DirectionLibrary:
        """A library holding the named directions shipped beside ``weights``, if any."""
        path = directions_path(weights)
        return cls(G, load_directions(path) if path.is_file() else None, **kwargs)

    @property
    def samples(self) -> Tensor:
        if self._w is None:
            self._w = sample_w(self.G, self._n, self._seed)
        return self._w

    def get(self, spec: str, layers: LayerRange | None = None) -> Direction:
        key = (spec, layers)
        if key not in self._cache:
            self._cache[key] = self._compute(spec, layers)
        return self._cache[key]

    def conditioned(self, spec: str, keep: Sequence[str], layers: LayerRange | None = None) -> Direction:
        """``spec`` projected off the directions in ``keep``, so editing it leaves those attributes be;
        a strength moves w as far as it moves the direction it comes from."""
        key = (spec + "|" + ",".join(keep), layers)
        if key not in self._cache:
            d = self.get(spec, layers)
            vec = project_off(d.vector, [self.get(k).vector for k in keep])
            self._cache[key] = Direction(f"{d.name} (keeping {', '.join(keep)})", vec, d.layers, d.scale, d.method,
                                         dict(d.info, keep=list(keep)))
        return self._cache[key]

    def _compute(self, spec: str, layers: LayerRange | None) -> Direction:
        if spec in self.named:
            return self.named[spec]
        method, _, index = spec.partition(":")
        if method in ("ganspace", "sefa") and index.isdigit():
            k = int(index)
            check(k < self.G.w_dim, f"{method} has {self.G.w_dim} components. Got: {k}")
            if method == "ganspace":
                comps, stds, _ = self._pca_basis()
                return Direction(spec, comps[k], layers, float(stds[k]), "ganspace")
            vectors, eigval = self._sefa_basis(layers)
            return Direction(spec, vectors[k], layers, direction_scale(self.samples, vectors[k]), "sefa",
                             {"eigenvalue": float(eigval[k])})
        if spec.endswith(".npy"):
            vec = load_boundary(spec, self.G.num_ws, self.G.w_dim)
            return Direction(Path(spec).stem, vec, layers, direction_scale(self.samples, vec), "boundary")
        known = ", ".join(sorted(self.named)) or "none shipped"
        raise GanvasError(f"direction must be a name ({known}), ganspace:K, sefa:K or a .npy file. Got: {spec!r}")

    def _pca_basis(self) -> tuple[Tensor, Tensor, Tensor]:
        if self._pca is None:
            self._pca = pca(self.samples)
        return self._pca

    def _sefa_basis(self, layers: LayerRange | None) -> tuple[Tensor, Tensor]:
        if layers not in self._sefa:
            self._sefa[layers] = sefa(self.G, layers)
        return self._sefa[layers]


# ----------------------------------------------------------------------------- the edit stack


@dataclass(eq=False)  # holds tensors: compare by identity
class DirectionEdit:
    """Add ``strength * direction`` to the slots in ``layers``; ``direction`` in W units."""

    direction: Tensor  # (w_dim,) or (num_ws, w_dim)
    strength: float = 0.0
    layers: LayerRange | None = None
    name: str = ""
    enabled: bool = True


@dataclass(eq=False)  # holds tensors: compare by identity
class MixEdit:
    """Style mixing: take the slots in ``layers`` from ``other_ws`` ``(1, num_ws, w_dim)``."""

    other_ws: Tensor
    layers: LayerRange
    name: str = ""
    enabled: bool = True


@dataclass(eq=False)  # holds tensors: compare by identity
class InterpolateEdit:
    """Move the slots in ``layers`` a fraction ``t`` towards ``other_ws`` (``(1, num_ws, w_dim)`` or
    ``(w_dim,)``; with ``w_avg`` and ``t = 1 - psi`` this is truncation)."""

    other_ws: Tensor
    t: float = 0.0
    layers: LayerRange | None = None
    slerp: bool = False
    name: str = ""
    enabled: bool = True


@dataclass(eq=False)  # holds tensors: compare by identity
class DragEdit:
    """A drag result (:mod:`engine.ops.drag`): add ``delta`` ``(num_ws, w_dim)`` to the latent.

    ``handles`` and ``targets`` are the dragged ``(x, y)`` image points, kept to show and describe the edit.
    """

    delta: Tensor
    handles: tuple[tuple[float, float], ...] = ()
    targets: tuple[tuple[float, float], ...] = ()
    name: str = ""
    enabled: bool = True

    def __post_init__(self) -> None:  # a reopened file gives lists
        self.handles = tuple((float(x), float(y)) for x, y in self.handles)
        self.targets = tuple((float(x), float(y)) for x, y in self.targets)


Edit = DirectionEdit | MixEdit | InterpolateEdit | DragEdit


def interpolate(a: Tensor, b: Tensor, t: float, slerp: bool = False, center: Tensor | None = None) -> Tensor:
    """Blend latents ``a`` -> ``b`` (broadcastable, last dim w_dim) by ``t`` in [0, 1].

    Linear in W, or ``slerp``: each w vector's direction from ``center`` (default 0) turns along
    the great circle while its distance from ``center`` changes linearly. ``t`` = 0 / 1 give
    ``a`` / ``b`` exactly.
    """
    if t == 0:
        return torch.broadcast_to(a, torch.broadcast_shapes(a.shape, b.shape)).clone()
    if t == 1:
        return torch.broadcast_to(b, torch.broadcast_shapes(a.shape, b.shape)).clone()
    if not slerp:
        return torch.lerp(a, b.to(a.dtype), t)
    c = torch.zeros_like(a[..., :1]) if center is None else center.to(a)
    u, v = a - c, b.to(a) - c
    ru, rv = u.norm(dim=-1, keepdim=True), v.norm(dim=-1, keepdim=True)
    uh, vh = u / ru.clamp_min(1e-12), v / rv.clamp_min(1e-12)
    omega = (uh * vh).sum(dim=-1, keepdim=True).clamp(-1, 1).acos()
    so = omega.sin()
    near = so < 1e-6  # (anti)parallel: the great circle is undefined; fall back to a straight line
    wa = torch.where(near, 1 - t, ((1 - t) * omega).sin() / so.clamp_min(1e-12))
    wb = torch.where(near, torch.full_like(so, t), (t * omega).sin() / so.clamp_min(1e-12))
    dirs = wa * uh + wb * vh
    dirs = torch.where(near, dirs / dirs.norm(dim=-1, keepdim=True).clamp_min(1e-12), dirs)
    return c + (ru + (rv - ru) * t) * dirs


def mix_styles(ws: Tensor, other_ws: Tensor, layers: LayerRange) -> Tensor:
    """``ws`` ``(N, num_ws, w_dim)`` with the slots in ``layers`` copied from ``other_ws``."""
    out = ws.clone()
    span = layer_slice(layers, ws.shape[1])
    out[:, span] = other_ws.to(ws)[:, span] if other_ws.ndim == 3 else other_ws.to(ws)
    return out


def apply_edits(ws: Tensor, edits: Iterable[Edit]) -> Tensor:
    """Apply the edit stack to the base latent ``ws`` ``(N, num_ws, w_dim)``, in order; pure.

    Disabled edits are skipped; the input is never modified. Cheap (one copy and a few adds),
    so it can run on every slider move.
    """
    check(ws.ndim == 3, f"ws must be (N, num_ws, w_dim). Got: {tuple(ws.shape)}")
    out = ws.clone()
    num_ws, w_dim = ws.shape[1:]
    for edit in edits:
        if not edit.enabled:
            continue
        if isinstance(edit, DirectionEdit):
            span = layer_slice(edit.layers, num_ws)
            d = edit.direction.to(out)
            check(d.shape in ((w_dim,), (num_ws, w_dim)),
                  f"direction must be ({w_dim},) or ({num_ws}, {w_dim}). Got: {tuple(d.shape)}")
            out[:, span] += edit.strength * (d if d.ndim == 1 else d[span])
        elif isinstance(edit, MixEdit):
            span = layer_slice(edit.layers, num_ws)
            check(edit.other_ws.shape[-2:] == (num_ws, w_dim),
                  f"the mixed latent must be (1, {num_ws}, {w_dim}). Got: {tuple(edit.other_ws.shape)}")
            out[:, span] = edit.other_ws.to(out)[:, span]
        elif isinstance(edit, InterpolateEdit):
            span = layer_slice(edit.layers, num_ws)
            other = edit.other_ws.to(out)
            other = other[:, span] if other.ndim == 3 else other
            out[:, span] = interpolate(out[:, span], other, edit.t, edit.slerp)
        elif isinstance(edit, DragEdit):
            check(tuple(edit.delta.shape) == (num_ws, w_dim),
                  f"a drag delta must be ({num_ws}, {w_dim}). Got: {tuple(edit.delta.shape)}")
            out = out + edit.delta.to(out)  # the same sum engine.ops.drag renders: bit for bit
        else:
            raise GanvasError(f"unknown edit type. Got: {type(edit).__name__}")
    return out


# ----------------------------------------------------------------------------- animation


def interpolation_latents(a: Tensor, b: Tensor, frames: int, slerp: bool = False,
                          center: Tensor | None = None) -> Tensor:
    """``frames`` latents from ``a`` to ``b`` (each ``(1, num_ws, w_dim)``): ``(frames, num_ws, w_dim)``."""
    check(frames >= 2, f"an interpolation needs at least 2 frames. Got: {frames}")
    return torch.cat([interpolate(a, b, i / (frames - 1), slerp, center) for i in range(frames)])


def sweep_latents(ws: Tensor, edits: Sequence[Edit], index: int, strengths: Sequence[float]) -> Tensor:
    """The stack applied with ``edits[index]``'s strength set to each of ``strengths``: ``(S, num_ws, w_dim)``."""
    check(0 <= index < len(edits) and isinstance(edits[index], DirectionEdit),
          f"index must point at a direction edit. Got: {index}")
    stack = list(edits)
    out = []
    for s in strengths:
        stack[index] = dataclasses.replace(edits[index], strength=float(s))
        out.append(apply_edits(ws, stack))
    return torch.cat(out)


@torch.no_grad()
def render_latents(G: nn.Module, latents: Tensor, noise_mode: str = "const") -> Iterator[np.ndarray]:
    """Synthesise ``latents`` ``(F, num_ws, w_dim)`` one by one: ``(H, W, 3)`` ``uint8`` frames."""
    device = next(G.parameters()).device
    for ws in latents:
        yield tensor_to_image(G.synthesis(ws[None].to(device), noise_mode=noise_mode))


def write_animation(path: str | os.PathLike, frames: Iterable[np.ndarray], total: int, fps: float = 24.0,
                    progress: Progress | None = None, cancel: CancelToken | None = None) -> Path:
    """Encode ``(H, W, 3)`` ``uint8`` frames to a looping GIF or an H.264 MP4 (by suffix).

    Frames stream into a temporary file beside ``path`` that is renamed at the end; a cancel
    or an error removes it, leaving ``path`` as it was.
    """
    import imageio.v2 as iio

    path = Path(path)
    suffix = path.suffix.lower()
    check(suffix in ANIMATION_SUFFIXES, f"{path}: animations are {', '.join(ANIMATION_SUFFIXES)}. Got: {suffix!r}")
    check(fps > 0, f"fps must be positive. Got: {fps}")
    folder = path.parent if str(path.parent) else Path(".")
    try:  # the temporary name keeps the suffix: ffmpeg picks the container from it
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=f".part{suffix}", dir=folder)
    except OSError as exc:
        raise GanvasError(f"{path}: cannot write in {folder}. Got: {exc.strerror or exc}") from None
    os.close(fd)
    mask = os.umask(0o022)  # mkstemp makes 0600 files; give the usual permissions
    os.umask(mask)
    job = Job(total, progress, cancel)
    try:
        os.chmod(tmp, 0o666 & ~mask)
        if suffix == ".gif":
            writer = iio.get_writer(tmp, format="GIF", mode="I", duration=1000 / fps, loop=0)
        else:
            writer = iio.get_writer(tmp, format="FFMPEG", fps=fps, codec="libx264", pixelformat="yuv420p",
                                    quality=8, macro_block_size=16)
        try:
            count = 0
            for frame in frames:
                job.check()
                writer.append_data(np.ascontiguousarray(frame))
                count += 1
                job.step(count, f"frame {count} of {total}", frame)
        finally:
            writer.close()
        check(count > 0, f"{path}: no frames to write. Got: 0")
        os.replace(tmp, path)
    except (Cancelled, GanvasError):
        Path(tmp).unlink(missing_ok=True)
        raise
    except Exception as exc:  # encoder failures (ffmpeg, Pillow, disk) surface as one clear error
        Path(tmp).unlink(missing_ok=True)
        raise GanvasError(f"{path}: the animation could not be written. Got: {type(exc).__name__}: {exc}") from exc
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def export_animation(path: str | os.PathLike, G: nn.Module, latents: Tensor, fps: float = 24.0,
                     progress: Progress | None = None, cancel: CancelToken | None = None) -> Path:
    """Render ``latents`` ``(F, num_ws, w_dim)`` and write them as a GIF/MP4 (see :func:`write_animation`)."""
    return write_animation(path, render_latents(G, latents), len(latents), fps, progress, cancel)
