"""The pix2pix U-Net generator, compatible with junyanz/pytorch-CycleGAN-and-pix2pix checkpoints.

Isola et al., "Image-to-Image Translation with Conditional Adversarial Networks" (arXiv:1611.07004,
Sec. 3.2.1 and App. 6.1.1): an encoder-decoder of 4x4 stride-2 convolutions whose level ``i``
concatenates its input with its decoder output (the skip), built innermost-first as nested
blocks. The module tree and parameter names follow the reference ``UnetGenerator`` exactly
(``model.model.0.weight``, ``model.model.1.model.3...``), so its ``latest_net_G.pth`` loads
with ``strict=True``. ``unet_256`` has 8 levels, ``unet_128`` 7; every hyper-parameter is read
from the state dict: ``ngf`` and the channel counts from shapes, the depth from the nesting,
batch against instance norm from the keys (BatchNorm has an affine weight; pix2pix's
InstanceNorm has none). Dropout sits in the middle ``8 ngf`` blocks as in the reference and is
off in eval mode (the reference's test script leaves it on unless ``--eval``).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import Tensor, nn

from engine.errors import CheckpointError, GanvasError, ModelNotFound, check

HOUSE_FORMAT = "ganvas.unet"
NORMS = ("batch", "instance")
_NORM_STATS = ("running_mean", "running_var", "num_batches_tracked")


@dataclass(frozen=True)
class UnetConfig:
    """``UnetGenerator`` hyper-parameters (the reference's constructor arguments)."""

    input_nc: int = 3
    output_nc: int = 3
    num_downs: int = 8  # 8: unet_256, 7: unet_128; the bottleneck is 1 x 1 at 2**num_downs px
    ngf: int = 64
    norm: str = "batch"  # "batch" or "instance" (affine-free, as pix2pix's --norm instance)
    dropout: bool = True  # pix2pix trains with dropout 0.5 in the middle blocks

    @property
    def resolution(self) -> int:
        """The side the network was designed for: the one that ends at a 1 x 1 bottleneck."""
        return 2 ** self.num_downs


def _norm(norm: str, channels: int) -> nn.Module:
    if norm == "batch":
        return nn.BatchNorm2d(channels)
    return nn.InstanceNorm2d(channels, affine=False, track_running_stats=False)


class SkipBlock(nn.Module):
    """One U-Net level: ``[act, down, norm] -> inner levels -> [act, up, norm]``, then the skip concat.

    ``outer_nc``: channels this level returns to the one above (before the concat); ``inner_nc``:
    channels of its down-sampled features. ``self.model`` is a Sequential whose indices match the
    reference's, so parameter names do too.
    """

    def __init__(self, outer_nc: int, inner_nc: int, input_nc: int | None = None, inner: SkipBlock | None = None,
                 outermost: bool = False, norm: str = "batch", dropout: bool = False):
        super().__init__()
        self.outermost = outermost
        bias = norm == "instance"  # a BatchNorm after the conv absorbs its bias
        down = nn.Conv2d(input_nc or outer_nc, inner_nc, kernel_size=4, stride=2, padding=1, bias=bias)
        if outermost:
            up = nn.ConvTranspose2d(inner_nc * 2, outer_nc, kernel_size=4, stride=2, padding=1)
            layers = [down, inner, nn.ReLU(True), up, nn.Tanh()]
        elif inner is None:  # innermost: no norm at the 1 x 1 bottleneck, no concat below
            up = nn.ConvTranspose2d(inner_nc, outer_nc, kernel_size=4, stride=2, padding=1, bias=bias)
            layers = [nn.LeakyReLU(0.2, True), down, nn.ReLU(True), up, _norm(norm, outer_nc)]
        else:
            up = nn.ConvTranspose2d(inner_nc * 2, outer_nc, kernel_size=4, stride=2, padding=1, bias=bias)
            layers = [nn.LeakyReLU(0.2, True), down, _norm(norm, inner_nc), inner, nn.ReLU(True), up,
                      _norm(norm, outer_nc)]
            layers += [nn.Dropout(0.5)] if dropout else []
        self.model = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        if self.outermost:
            return self.model(x)
        return torch.cat([x, self.model(x)], dim=1)  # (N, outer_nc * 2, H, W)


class UnetGenerator(nn.Module):
    """pix2pix U-Net: ``(N, input_nc, H, W)`` in ``[-1, 1]`` -> ``(N, output_nc, H, W)`` in ``[-1, 1]`` (Tanh).

    ``H`` and ``W`` must be multiples of ``2 ** num_downs``. ``extra_metadata`` holds what the house
    file says about the model (input convention, training); empty for a reference checkpoint.
    """

    def __init__(self, config: UnetConfig = UnetConfig()):
        super().__init__()
        check(config.num_downs >= 5, f"a pix2pix U-Net has at least 5 levels. Got: {config.num_downs}")
        check(config.norm in NORMS, f"norm must be one of {NORMS}. Got: {config.norm!r}")
        self.config = config
        ngf, norm = config.ngf, config.norm
        block = SkipBlock(ngf * 8, ngf * 8, norm=norm)  # innermost
        for _ in range(config.num_downs - 5):
            block = SkipBlock(ngf * 8, ngf * 8, inner=block, norm=norm, dropout=config.dropout)
        for mult in (4, 2, 1):  # 8 ngf -> 4 -> 2 -> 1 on the way out
            block = SkipBlock(ngf * mult, ngf * mult * 2, inner=block, norm=norm)
        self.model = SkipBlock(config.output_nc, ngf, input_nc=config.input_nc, inner=block, outermost=True,
                               norm=norm)
        self.extra_metadata: dict = {}

    def forward(self, x: Tensor) -> Tensor:
        return self.model(x)


# ----------------------------------------------------------------------------- reading state dicts


def infer_config(sd: dict[str, Tensor], source: str = "state dict") -> UnetConfig:
    """:class:`UnetConfig` from the keys and shapes of a reference ``UnetGenerator`` state dict.

    Raises:
        CheckpointError: not a pix2pix U-Net (naming the first thing that does not fit).
    """
    first = sd.get("model.model.0.weight")
    check(first is not None and first.ndim == 4 and tuple(first.shape[2:]) == (4, 4),
          f"{source}: not a pix2pix U-Net generator (no 4x4 'model.model.0.weight'). Got: keys like "
          f"{sorted(sd)[:3]}", CheckpointError)
    up = sd.get("model.model.3.weight")
    check(up is not None and up.ndim == 4, f"{source}: the outermost block has no transposed conv "
          f"'model.model.3.weight'. Got: keys like {sorted(sd)[:3]}", CheckpointError)
    depth, prefix = 2, "model.model.1.model."
    while f"{prefix}3.model.1.weight" in sd:  # a middle block holds its inner block at index 3
        prefix, depth = f"{prefix}3.model.", depth + 1
    check(f"{prefix}1.weight" in sd and f"{prefix}3.weight" in sd,
          f"{source}: the U-Net nesting ends without an innermost block at {prefix!r}. Got: depth {depth}",
          CheckpointError)
    batch = "model.model.1.model.2.weight" in sd  # BatchNorm is affine; pix2pix's InstanceNorm is not
    check(batch != ("model.model.0.bias" in sd), f"{source}: the norm layers and the conv biases disagree "
          f"(BatchNorm convs have no bias). Got: norm weight {batch}, bias {'model.model.0.bias' in sd}",
          CheckpointError)
    return UnetConfig(input_nc=int(first.shape[1]), output_nc=int(up.shape[1]), num_downs=depth,
                      ngf=int(first.shape[0]), norm="batch" if batch else "instance")


def _tidy(sd: dict[str, Tensor], config: UnetConfig) -> dict[str, Tensor]:
    """Drop what the reference drops, the stale running stats of InstanceNorm layers from old PyTorch;
    a missing ``num_batches_tracked`` (files saved before PyTorch 0.4.1) counts as 0."""
    if config.norm == "instance":
        return {k: v for k, v in sd.items() if not k.endswith(_NORM_STATS)}
    for key in [k for k in sd if k.endswith(".running_mean")]:
        sd.setdefault(key.replace("running_mean", "num_batches_tracked"), torch.tensor(0))
    return sd


def from_state_dict(sd: dict[str, Tensor], source: str = "state dict", dropout: bool = True) -> UnetGenerator:
    """Build a :class:`UnetGenerator` for ``sd`` and load it strictly (eval mode, no grad)."""
    check(isinstance(sd, dict) and all(isinstance(v, Tensor) for v in sd.values()),
          f"{source}: not a state dict of tensors. Got: {type(sd).__name__}", CheckpointError)
    sd = {k[len("module."):] if k.startswith("module.") else k: v for k, v in sd.items()}  # DataParallel
    config = infer_config(sd, source)
    net = UnetGenerator(UnetConfig(**{**asdict(config), "dropout": dropout}))
    try:
        net.load_state_dict(_tidy(sd, config), strict=True)
    except RuntimeError as e:
        lines = [line.strip() for line in str(e).splitlines() if line.strip()]
        raise CheckpointError(f"{source}: the weights do not fit a {config.num_downs}-level U-Net with ngf "
                              f"{config.ngf}. Got: {' '.join(lines[1:3])[:400]}") from None
    return net.eval().requires_grad_(False)


# ----------------------------------------------------------------------------- files


def _read_tensors(path: Path) -> tuple[dict[str, Tensor], dict[str, str]]:
    """(tensors, safetensors metadata) of a ``.safetensors`` or torch file, chosen by content."""
    with open(path, "rb") as f:
        head = f.read(16)
    header_len = int.from_bytes(head[:8], "little") if len(head) >= 9 else -1
    if 2 <= header_len <= path.stat().st_size - 8 and head[8:9] == b"{":
        try:
            with safe_open(path, framework="pt") as f:
                return {k: f.get_tensor(k) for k in f.keys()}, f.metadata() or {}
        except Exception as e:
            raise CheckpointError(f"{path}: truncated or corrupt safetensors file. Got: {e}") from None
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # pickles of arbitrary objects, truncated zips, text files: all fail here
        raise CheckpointError(f"{path}: not a readable torch weights file (only tensors are loaded). "
                              f"Got: {type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''}") from None
    check(isinstance(data, dict), f"{path}: not a state dict. Got: {type(data).__name__}", CheckpointError)
    for key in ("state_dict", "netG", "G"):  # training snapshots that wrap the generator
        if isinstance(data.get(key), dict):
            data = data[key]
    return data, {}


def load_unet(path: str | os.PathLike, device: str | torch.device | None = None) -> UnetGenerator:
    """Load a pix2pix U-Net: a reference ``latest_net_G.pth`` or a house ``.safetensors``.

    Raises:
        ModelNotFound: no such file. CheckpointError: not a U-Net, or weights that do not fit.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelNotFound(f"no such model file. Got: {path}")
    check(path.stat().st_size > 0, f"{path}: the file is empty. Got: 0 bytes", CheckpointError)
    tensors, meta = _read_tensors(path)
    net = from_state_dict(tensors, str(path))
    if meta.get("format") == HOUSE_FORMAT:
        try:
            net.extra_metadata = json.loads(meta.get("extra", "{}"))
        except ValueError as e:
            raise CheckpointError(f"{path}: damaged metadata. Got: {e}") from None
    return net.to(device or "cpu")


def is_unet_file(path: str | os.PathLike) -> bool:
    """Whether ``path`` holds a pix2pix U-Net (loads it; False for anything else)."""
    try:
        load_unet(path)
    except GanvasError:
        return False
    return True


def save_unet(net: UnetGenerator, path: str | os.PathLike, extra_metadata: dict | None = None) -> Path:
    """Write ``net`` as a house ``.safetensors`` (reference parameter names; config and extra as JSON)."""
    path = Path(path)
    meta = {"format": HOUSE_FORMAT, "format_version": "1", "config": json.dumps(asdict(net.config)),
            "extra": json.dumps(extra_metadata or {})}
    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in net.state_dict().items()}
    tmp = path.with_name(path.name + ".partial")
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        save_file(tensors, str(tmp), metadata=meta)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


# ----------------------------------------------------------------------------- running


def edges_to_input(edges: np.ndarray, channels: int, side: int) -> Tensor:
    """A drawn edge map ``(H, W)`` bool as the network's input ``(1, channels, side, side)`` in ``[-1, 1]``.

    One channel (the house model): +1 on an edge, -1 elsewhere. Three channels: black lines on
    white, the convention of the reference's edges2shoes / edges2handbags data.
    """
    from engine.ops.edges import resize_edges

    e = torch.from_numpy(resize_edges(np.asarray(edges, bool), side).astype(np.float32))[None, None]
    return e * 2 - 1 if channels == 1 else (1 - 2 * e).expand(1, channels, -1, -1).contiguous()


@torch.no_grad()
def translate_edges(net: UnetGenerator, edges: np.ndarray) -> np.ndarray:
    """Run an edge-to-image U-Net on a drawn edge map ``(H, W)``: ``(R, R, 3)`` uint8, R its resolution."""
    from engine.convert import tensor_to_image

    check(np.ndim(edges) == 2, f"an edge map must be (H, W). Got: {np.shape(edges)}")
    side = int(net.extra_metadata.get("resolution", net.config.resolution))
    device = next(net.parameters()).device
    x = edges_to_input(edges, net.config.input_nc, side).to(device)
    return tensor_to_image(net(x)[:, :3])


__all__ = ["UnetConfig", "UnetGenerator", "SkipBlock", "infer_config", "from_state_dict", "load_unet", "save_unet",
           "is_unet_file", "edges_to_input", "translate_edges", "HOUSE_FORMAT", "NORMS"]
