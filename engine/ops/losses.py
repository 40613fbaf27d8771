"""Image distances for latent search, and the quality figures reported after it.

Perceptual: LPIPS (Zhang et al., "The Unreasonable Effectiveness of Deep Features as a
Perceptual Metric", arXiv:1801.03924): channel-normalised VGG16 or AlexNet activations
at five depths, squared differences, weighted per channel (learned ``lin`` layers when
their file is present, uniform weights otherwise), averaged over space, summed over
depths. Its ImageNet weights are only read from disk (torchvision's files in the torch
hub cache, or NVIDIA's ``vgg16.pt`` in a model folder); nothing is downloaded.
Fallback without ImageNet weights: MS-SSIM over a Gaussian pyramid (Wang et al. 2003)
and an L1 pixel pyramid (kornia), plus discriminator-feature matching (the feature
loss of Salimans et al., arXiv:1606.03498, used as a distance) when a D is at hand.
Every term takes a per-pixel weight, so masked pixels count for nothing.
"""

from __future__ import annotations

import logging
import math
import os
import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kornia
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from engine.errors import CheckpointError, check

log = logging.getLogger(__name__)

# torchvision's file names (the hash prefix is part of the name) and the layers LPIPS taps.
TORCHVISION_FILES = {"vgg16": "vgg16-397923af.pth", "alexnet": "alexnet-owt-7be5be79.pth"}
LPIPS_TAPS = {"vgg16": (3, 8, 15, 22, 29), "alexnet": (1, 4, 7, 9, 11)}  # ReLU outputs in .features
LPIPS_LIN_FILES = {"vgg16": "lpips_vgg.pth", "alexnet": "lpips_alex.pth"}  # lpips package's lin weights
NVIDIA_VGG16 = "vgg16.pt"
# LPIPS's input scaling layer: maps [-1, 1] images to ImageNet statistics.
_SHIFT = torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1)
_SCALE = torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1)
_VGG16_CONVS = [(64, 3), (64, 64), (128, 64), (128, 128), (256, 128), (256, 256), (256, 256),
                (512, 256), (512, 512), (512, 512), (512, 512), (512, 512), (512, 512)]


# ----------------------------------------------------------------------------- figures


def _weighted_mean(t: Tensor, weight: Tensor | None) -> Tensor:
    """Mean of ``t`` ``(N, C, H, W)`` with a ``(1|N, 1, H', W')`` weight (area-resized to H, W)."""
    if weight is None:
        return t.mean()
    if weight.shape[-2:] != t.shape[-2:]:
        weight = F.adaptive_avg_pool2d(weight, t.shape[-2:])
    weight = weight.to(t)
    return (t * weight).sum() / (weight.sum() * t.shape[1] * t.shape[0] / weight.shape[0]).clamp_min(1e-12)


def mse(x: Tensor, y: Tensor, weight: Tensor | None = None) -> Tensor:
    """Weighted mean squared error of two ``(N, C, H, W)`` tensors (same shape)."""
    return _weighted_mean((x - y).square(), weight)


def psnr(x: Tensor, y: Tensor, weight: Tensor | None = None) -> float:
    """PSNR in dB of images in ``[-1, 1]``, measured on the ``[0, 1]`` scale (peak 1)."""
    err = float(mse(x.clamp(-1, 1), y.clamp(-1, 1), weight)) / 4.0  # [-1, 1] -> [0, 1] squares scale by 1/4
    return 10.0 * math.log10(1.0 / max(err, 1e-10))


def ssim_map(x: Tensor, y: Tensor, window: int = 11) -> Tensor:
    """SSIM map ``(N, C, H, W)`` of two images in ``[-1, 1]`` (kornia, Gaussian window); a batch of one broadcasts."""
    x, y = torch.broadcast_tensors(x, y)
    window = min(window, x.shape[-1] - 1 + x.shape[-1] % 2, x.shape[-2] - 1 + x.shape[-2] % 2)
    return kornia.metrics.ssim((x + 1) / 2, (y + 1) / 2, window_size=max(window, 3))


def ssim(x: Tensor, y: Tensor, weight: Tensor | None = None) -> float:
    """Mean SSIM (11 px window) of images in ``[-1, 1]``."""
    return float(_weighted_mean(ssim_map(x.clamp(-1, 1), y.clamp(-1, 1)), weight))


# ----------------------------------------------------------------------------- LPIPS


class LPIPS(nn.Module):
    """LPIPS distance over a VGG16 or AlexNet ``features`` stack; see the module docstring.

    ``lin``: five ``(C_k,)`` non-negative channel weights, or None for uniform weights
    (then the distance is the LPIPS "baseline" variant of the paper).
    """

    def __init__(self, net: str, features: nn.Sequential, lin: list[Tensor] | None, source: str):
        super().__init__()
        self.net, self.source, self.taps = net, source, LPIPS_TAPS[net]
        self.features = features[: self.taps[-1] + 1].eval().requires_grad_(False)
        self.lin = None if lin is None else [w.reshape(1, -1, 1, 1).float() for w in lin]
        self.register_buffer("shift", _SHIFT.clone(), persistent=False)
        self.register_buffer("scale", _SCALE.clone(), persistent=False)

    @property
    def name(self) -> str:
        return f"lpips-{self.net}" + ("" if self.lin is not None else "-uniform")

    def forward(self, x: Tensor, y: Tensor, weight: Tensor | None = None) -> Tensor:
        """``x``, ``y`` ``(N, 3, H, W)`` in ``[-1, 1]`` -> scalar distance (mean over the batch)."""
        fx, fy = self.activations(x), self.activations(y)
        total = x.new_zeros(())
        for k, (a, b) in enumerate(zip(fx, fy)):
            diff = (a - b).square()  # (N, C_k, h, w)
            diff = diff * self.lin[k].to(diff) if self.lin is not None else diff
            total = total + _weighted_mean(diff.sum(dim=1, keepdim=True), weight)
        return total

    def activations(self, x: Tensor) -> list[Tensor]:
        """Unit-normalised (over channels) activations at the five LPIPS taps."""
        h = (x - self.shift) / self.scale
        out = []
        for i, layer in enumerate(self.features):
            h = layer(h)
            if i in self.taps:
                out.append(h / (h.square().sum(dim=1, keepdim=True).sqrt() + 1e-10))
        return out


def _empty_features(net: str) -> nn.Sequential:
    """torchvision's ``features`` stack of ``net``, built on the meta device (no initialisation cost)."""
    import torchvision

    with torch.device("meta"):
        model = torchvision.models.vgg16(weights=None) if net == "vgg16" else torchvision.models.alexnet(weights=None)
    return model.features


def _torchvision_features(net: str, state: dict[str, Tensor], source: str) -> nn.Sequential:
    features = _empty_features(net)
    weights = {k[len("features."):]: v.float() for k, v in state.items() if k.startswith("features.")}
    try:
        features.load_state_dict(weights, strict=True, assign=True)
    except RuntimeError as e:
        raise CheckpointError(f"{source}: not torchvision {net} weights. Got: {str(e).splitlines()[0]}") from None
    return features


def _lin_weights(folder_files: list[Path], net: str) -> list[Tensor] | None:
    """The lpips package's learned ``lin`` weights (keys ``lin{k}.model.1.weight``), if a file is present."""
    for path in folder_files:
        if path.name == LPIPS_LIN_FILES[net] and path.is_file():
            state = torch.load(path, map_location="cpu", weights_only=True)
            try:
                return [state[f"lin{k}.model.1.weight"].flatten() for k in range(5)]
            except KeyError as e:
                raise CheckpointError(f"{path}: not lpips lin weights. Got: missing {e}") from None
    return None


def default_model_dirs() -> list[Path]:
    """The folders a user places model files in (house resources, the user model folder)."""
    from engine.models.catalog import search_dirs

    return search_dirs()


def find_lpips(hub_dir: str | os.PathLike | None = None, model_dirs: list[Path] | None = None,
               nets: tuple[str, ...] = ("vgg16", "alexnet")) -> LPIPS | None:
    """Build LPIPS from weights found on disk, or None. Never downloads.

    Looks for NVIDIA's ``vgg16.pt`` in ``model_dirs`` (default: :func:`default_model_dirs`),
    then torchvision's ``vgg16-397923af.pth`` / ``alexnet-owt-7be5be79.pth`` in
    ``<hub_dir>/checkpoints`` (default: ``torch.hub.get_dir()``). A file that exists
    but cannot be read is logged and skipped.
    """
    model_dirs = default_model_dirs() if model_dirs is None else [Path(d) for d in model_dirs]
    model_files = [f for d in model_dirs if Path(d).is_dir() for f in sorted(Path(d).iterdir())]
    hub = Path(hub_dir) if hub_dir is not None else Path(torch.hub.get_dir())
    candidates: list[tuple[str, Path]] = [("nvidia", f) for f in model_files if f.name == NVIDIA_VGG16]
    candidates += [(net, hub / "checkpoints" / TORCHVISION_FILES[net]) for net in nets]
    for kind, path in candidates:
        if not path.is_file():
            continue
        try:
            if kind == "nvidia":
                features, lin = read_nvidia_vgg16(path)
                return LPIPS("vgg16", features, lin, str(path))
            state = torch.load(path, map_location="cpu", weights_only=True)
            return LPIPS(kind, _torchvision_features(kind, state, str(path)), _lin_weights(model_files, kind),
                         str(path))
        except (CheckpointError, OSError, RuntimeError, pickle.UnpicklingError) as e:
            log.warning("skipping perceptual weights %s: %s", path, e)
    return None


# ----------------------------------------------------------------------------- NVIDIA vgg16.pt


class _ScriptObject:
    """Plain-data stand-in for a TorchScript module record (its attributes land in __dict__)."""

    def __setstate__(self, state: Any) -> None:
        self.__dict__["_state"] = state


class _TorchScriptUnpickler(pickle.Unpickler):
    """Reads the ``data.pkl`` of a TorchScript archive without running any of its code."""

    _DTYPES = {"FloatStorage": torch.float32, "HalfStorage": torch.float16, "DoubleStorage": torch.float64,
               "LongStorage": torch.int64, "IntStorage": torch.int32, "BoolStorage": torch.bool}

    def __init__(self, file: Any, archive: zipfile.ZipFile, root: str):
        super().__init__(file)
        self.archive, self.root = archive, root

    def find_class(self, module: str, name: str) -> Any:
        if module.startswith("__torch__"):
            return _ScriptObject
        if module == "torch" and name in self._DTYPES:
            return self._DTYPES[name]
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return lambda storage, offset, size, stride, *_: storage.as_strided(tuple(size), tuple(stride), offset)
        if module == "torch.jit._pickle" and name.startswith("build_"):  # typed lists: plain data
            return list
        if (module, name) == ("torch.jit._pickle", "restore_type_tag"):
            return lambda value, _type: value
        if (module, name) == ("collections", "OrderedDict"):
            import collections

            return collections.OrderedDict
        raise pickle.UnpicklingError(f"refused {module}.{name}")

    def persistent_load(self, pid: Any) -> Tensor:
        check(isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage", f"unknown record {pid!r}",
              CheckpointError)
        _, dtype, key, _location, numel = pid
        data = self.archive.read(f"{self.root}/data/{key}")
        return torch.frombuffer(bytearray(data), dtype=dtype)[:numel]


def _tensors_in_order(obj: Any, out: list[Tensor]) -> list[Tensor]:
    if isinstance(obj, Tensor):
        out.append(obj)
    elif isinstance(obj, _ScriptObject):
        _tensors_in_order(obj.__dict__.get("_state", obj.__dict__), out)
    elif isinstance(obj, dict):
        for v in obj.values():
            _tensors_in_order(v, out)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            _tensors_in_order(v, out)
    return out


def read_nvidia_vgg16(path: str | os.PathLike) -> tuple[nn.Sequential, list[Tensor] | None]:
    """VGG16 features and LPIPS lin weights from NVIDIA's TorchScript ``vgg16.pt``.

    The archive is read as data: its ``data.pkl`` goes through an unpickler that only
    builds tensors and attribute records, and the TorchScript code is never compiled or
    run. Tensors are matched by shape, in file order: 13 convolution weights with their
    biases (VGG16's sequence), then five ``(1, C, 1, 1)`` lin weights if present.
    """
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as archive:
            pkl = [n for n in archive.namelist() if n.endswith("/data.pkl") and n.count("/") == 1]
            check(len(pkl) == 1, f"{path}: not a TorchScript archive. Got: {len(pkl)} data.pkl", CheckpointError)
            root = pkl[0].split("/")[0]
            with archive.open(pkl[0]) as f:
                tree = _TorchScriptUnpickler(f, archive, root).load()
    except (zipfile.BadZipFile, pickle.UnpicklingError, KeyError, EOFError) as e:
        raise CheckpointError(f"{path}: cannot read as a TorchScript archive. Got: {e}") from None
    tensors = _tensors_in_order(tree, [])
    convs = [i for i, t in enumerate(tensors) if t.ndim == 4 and t.shape[2:] == (3, 3)]
    shapes = [tuple(tensors[i].shape[:2]) for i in convs]
    check(shapes == _VGG16_CONVS, f"{path}: the 3x3 convolutions are not VGG16's. Got: {shapes[:4]}...",
          CheckpointError)
    features = _empty_features("vgg16")
    conv_names = [f"{i}" for i, m in enumerate(features) if isinstance(m, nn.Conv2d)]
    state = {}
    for name, i, (out_c, _) in zip(conv_names, convs, _VGG16_CONVS):
        bias = next((t for t in tensors[i + 1:] if t.ndim == 1 and t.shape[0] == out_c), None)
        check(bias is not None, f"{path}: no bias for a {out_c}-channel conv. Got: none", CheckpointError)
        state[f"{name}.weight"], state[f"{name}.bias"] = tensors[i].float(), bias.float()
    features.load_state_dict(state, strict=True, assign=True)
    lin = [t.flatten().float() for t in tensors if t.ndim == 4 and t.shape[0] == 1 and t.shape[2:] == (1, 1)]
    return features, lin if [t.numel() for t in lin] == [64, 128, 256, 512, 512] else None


# ----------------------------------------------------------------------------- the search distance


@dataclass
class DistanceWeights:
    """Weights of the distance's terms (inputs in ``[-1, 1]``).

    MSE dominates because PSNR is the headline figure; the structural terms keep edges
    sharp where MSE alone settles for blur, and matter most where pixels are unseen.
    """

    mse: float = 1.0
    pyramid: float = 0.1  # L1 over a 4-level Gaussian pyramid
    ms_ssim: float = 0.1  # (1 - SSIM) summed over a 3-level pyramid
    lpips: float = 0.5  # only when LPIPS weights were found
    d_features: float = 0.0  # only when a discriminator is given; off by default (2-3x slower steps)
    pyramid_levels: int = 4
    ssim_levels: int = 3
    ssim_window: int = 7


class Distance:
    """``d(x, y)`` between a candidate and the target, both as 3-channel model-size images.

    Call :meth:`set_target` once; then ``distance(x)`` returns ``(total, mse)`` scalars.
    ``name`` says which terms are active, e.g. ``"mse+pyramid+ms-ssim+lpips-vgg16"``.
    """

    def __init__(self, weights: DistanceWeights | None = None, lpips: LPIPS | None = None,
                 D: nn.Module | None = None):
        self.w = weights or DistanceWeights()
        self.lpips = lpips if self.w.lpips > 0 else None
        self.D = D if self.w.d_features > 0 else None
        self.y: Tensor | None = None
        self.weight: Tensor | None = None
        self._y_pyr: list[Tensor] = []
        self._y_feats: dict[str, Tensor] = {}

    @property
    def name(self) -> str:
        parts = [n for n, v in (("mse", self.w.mse), ("pyramid", self.w.pyramid), ("ms-ssim", self.w.ms_ssim))
                 if v > 0]
        if self.lpips is not None:
            parts.append(self.lpips.name)
        if self.D is not None:
            parts.append("d-features")
        return "+".join(parts)

    @property
    def perceptual(self) -> bool:
        return self.lpips is not None

    def set_target(self, y: Tensor, weight: Tensor | None = None) -> None:
        """``y`` ``(1, 3, R, R)`` in ``[-1, 1]``; ``weight`` ``(1, 1, R, R)`` or None."""
        self.y, self.weight = y.detach(), None if weight is None else weight.detach()
        # A pixel stored at 0 or 255 says only "at least this far": beyond it, a candidate is not wrong.
        self._clip_hi, self._clip_lo = self.y >= 1 - 1 / 255, self.y <= -1 + 1 / 255
        with torch.no_grad():
            self._y_pyr = kornia.geometry.transform.build_pyramid(self.y, self.w.pyramid_levels)
            if self.D is not None:
                self._y_feats = self._d_features(self.y)

    def _d_features(self, x: Tensor) -> dict[str, Tensor]:
        _, feats = self.D(x, return_features=True)
        return feats

    def __call__(self, x: Tensor) -> tuple[Tensor, Tensor]:
        check(self.y is not None, "Distance.set_target must be called first. Got: no target")
        x = torch.where((self._clip_hi & (x > self.y)) | (self._clip_lo & (x < self.y)), self.y, x)
        err = mse(x, self.y, self.weight)
        total = self.w.mse * err
        if self.w.pyramid > 0 or self.w.ms_ssim > 0:
            pyr = kornia.geometry.transform.build_pyramid(x, self.w.pyramid_levels)
            for level, (a, b) in enumerate(zip(pyr, self._y_pyr)):
                if self.w.pyramid > 0:
                    total = total + self.w.pyramid * _weighted_mean((a - b).abs(), self.weight)
                if self.w.ms_ssim > 0 and level < self.w.ssim_levels:
                    ssim_term = 1 - _weighted_mean(ssim_map(a, b, self.w.ssim_window), self.weight)
                    total = total + self.w.ms_ssim * ssim_term
        if self.lpips is not None:
            total = total + self.w.lpips * self.lpips(x, self.y, self.weight)
        if self.D is not None:
            total = total + self.w.d_features * self._d_term(x)
        return total, err

    def _d_term(self, x: Tensor) -> Tensor:
        """Feature matching over D's blocks, each normalised by the target's feature energy."""
        feats = self._d_features(x)
        term = x.new_zeros(())
        for key, fy in self._y_feats.items():
            scale = fy.square().mean().clamp_min(1e-8)  # makes blocks of different magnitude comparable
            term = term + _weighted_mean((feats[key] - fy).square(), self.weight) / scale
        return term / len(self._y_feats)
