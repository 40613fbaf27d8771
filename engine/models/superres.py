"""Super-resolution models: any architecture spandrel detects, read without running code.

spandrel (chaiNNer-org/spandrel) recognises some forty SR families from state-dict keys
(Real-ESRGAN/ESRGAN RRDBNet, Real-ESRGAN Compact SRVGGNet, SwinIR, HAT, DAT, SPAN, RealCUGAN,
...) and infers every hyper-parameter from tensor shapes. GANvas reads the file itself
(``torch.load(weights_only=True)`` or safetensors: spandrel's own ``.pt`` path would hand
TorchScript archives to ``torch.jit.load``), then hands the tensors to spandrel's registry
and keeps its ``ImageModelDescriptor``. The house model ``house-sr-x4`` is a plain Compact
state dict in ``.safetensors`` (written by :func:`save_sr_model`), so it loads the same way.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from spandrel import MAIN_REGISTRY, ImageModelDescriptor, UnsupportedModelError, canonicalize_state_dict
from torch import Tensor, nn

from engine.errors import CheckpointError
from engine.models.catalog import resolve

HOUSE_SR_FORMAT = "ganvas.sr"
TORCH_SUFFIXES = (".pth", ".pt", ".ckpt", ".bin")
SR_SUFFIXES = (".safetensors", *TORCH_SUFFIXES)


@dataclass
class SRModel:
    """A loaded super-resolution network and what spandrel knows about it.

    ``descriptor(x)`` maps ``(1, C, h, w)`` in ``[0, 1]`` to ``(1, C, h*scale, w*scale)`` in
    ``[0, 1]``, padding the input to the model's size requirements and cropping back.
    """

    descriptor: ImageModelDescriptor
    path: Path
    # Working bytes per input pixel by dtype, measured once by engine.ops.upscale.bytes_per_pixel.
    memory_per_pixel: dict[torch.dtype, float] = field(default_factory=dict, repr=False)

    @property
    def module(self) -> nn.Module:
        return self.descriptor.model

    @property
    def scale(self) -> int:
        return self.descriptor.scale

    @property
    def architecture(self) -> str:
        """spandrel's architecture id, e.g. ``"ESRGAN"``, ``"Compact"``, ``"SwinIR"``."""
        return str(self.descriptor.architecture.id)

    @property
    def architecture_name(self) -> str:
        return self.descriptor.architecture.name

    @property
    def purpose(self) -> str:
        return self.descriptor.purpose

    @property
    def tags(self) -> list[str]:
        return list(self.descriptor.tags)

    @property
    def channels(self) -> int:
        return self.descriptor.input_channels

    @property
    def supports_half(self) -> bool:
        return self.descriptor.supports_half

    @property
    def supports_bfloat16(self) -> bool:
        return self.descriptor.supports_bfloat16

    @property
    def tiling(self) -> str:
        """``"supported"``, ``"discouraged"`` (relies on global context) or ``"internal"``."""
        return self.descriptor.tiling.name.lower()

    @property
    def size_multiple(self) -> int:
        return self.descriptor.size_requirements.multiple_of

    @property
    def size_minimum(self) -> int:
        return self.descriptor.size_requirements.minimum

    @property
    def device(self) -> torch.device:
        return self.descriptor.device

    @property
    def dtype(self) -> torch.dtype:
        return self.descriptor.dtype

    def summary(self) -> str:
        """One line for a status bar or the command line."""
        req = self.descriptor.size_requirements
        size = "" if req.none else f", input min {req.minimum} px, multiple of {req.multiple_of}"
        return (
            f"{self.architecture_name} x{self.scale} ({', '.join(self.tags) or 'no tags'}); "
            f"fp16 {'yes' if self.supports_half else 'no'}, bf16 {'yes' if self.supports_bfloat16 else 'no'}, "
            f"tiling {self.tiling}{size}"
        )


def read_sr_state_dict(path: str | os.PathLike) -> dict[str, Tensor]:
    """Read the tensors of an SR model file without executing anything stored in it.

    ``.safetensors`` through safetensors; ``.pth``/``.pt``/``.ckpt``/``.bin`` through
    ``torch.load(weights_only=True)`` (torch's allow-list unpickler). Wrappers such as
    ``params_ema`` and prefixes such as ``module.`` are removed (spandrel's canonical form).

    Raises:
        CheckpointError: the file is missing, empty, of another kind (a StyleGAN ``.pkl``,
            a TorchScript archive, text) or corrupt; the message names the file.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if not path.is_file():
        raise CheckpointError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{path}: the file is empty (0 bytes)")
    if suffix == ".pkl":
        raise CheckpointError(
            f"{path}: a .pkl network pickle (e.g. a StyleGAN generator) is not a super-resolution model; "
            f"SR models are .pth or .safetensors files. Got: {suffix}"
        )
    if suffix not in SR_SUFFIXES:
        raise CheckpointError(f"{path}: SR models are {', '.join(SR_SUFFIXES)} files. Got: {suffix or 'no suffix'}")
    raw = _read_safetensors(path) if suffix == ".safetensors" else _read_torch(path)
    if not isinstance(raw, dict):
        raise CheckpointError(f"{path}: expected a state dict (name -> tensor). Got: {type(raw).__name__}")
    state = canonicalize_state_dict(raw)
    groups = [str(k) for k, v in state.items() if isinstance(v, dict)]
    if groups:
        raise CheckpointError(f"{path}: holds nested groups of weights in no known SR layout (a StyleGAN or "
                              f"training checkpoint?). Got groups: {', '.join(groups[:5])}")
    tensors = {k: v for k, v in state.items() if isinstance(k, str) and isinstance(v, Tensor)}
    if not tensors:
        keys = ", ".join(list(map(str, state))[:5])
        raise CheckpointError(f"{path}: holds no weight tensors at the top level. Got keys: {keys or 'none'}")
    return tensors


def _read_safetensors(path: Path) -> dict[str, Tensor]:
    try:
        with safe_open(str(path), framework="pt", device="cpu") as handle:
            metadata = handle.metadata() or {}
            if metadata.get("format", "").startswith("ganvas.") and metadata["format"] != HOUSE_SR_FORMAT:
                raise CheckpointError(
                    f"{path}: a GANvas {metadata['format']} file (architecture "
                    f"{metadata.get('architecture', '?')}), not a super-resolution model. Got: {metadata['format']}"
                )
            return {name: handle.get_tensor(name) for name in handle.keys()}
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(f"{path}: not a readable safetensors file ({exc})") from exc


def _read_torch(path: Path) -> Any:
    with open(path, "rb") as handle:
        head = handle.read(4)
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as archive:
            if any("/code/" in name for name in archive.namelist()):
                raise CheckpointError(f"{path}: a TorchScript archive holds code, which GANvas never runs; "
                                      f"export the state dict (.pth or .safetensors) instead")
    elif not head.startswith(b"\x80"):  # pickle protocol 2+ (torch's legacy format)
        raise CheckpointError(f"{path}: not a PyTorch file (neither a zip archive nor a pickle). "
                              f"Got first bytes: {head!r}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch reports refusals and corruption with many types
        lines = [re.sub(r"\x1b\[[0-9;]*m", "", line).strip() for line in str(exc).splitlines()]
        refused = [line for line in lines if "Unsupported global" in line or "Unsupported operand" in line]
        reason = (refused or [line for line in lines if line] or [type(exc).__name__])[0].split(". Please")[0]
        raise CheckpointError(f"{path}: could not be read as weights only, nothing in it was run ({reason})") from exc


def sr_model_from_state_dict(state: dict[str, Tensor], path: Path, allow_restoration: bool = False) -> SRModel:
    """Detect the architecture of ``state`` with spandrel's registry and build the network.

    Raises:
        CheckpointError: no known SR architecture matches, the tensors do not fit the one
            that matched, or the model is not an image-to-image SR model.
    """
    try:
        descriptor = MAIN_REGISTRY.load(dict(state))
    except UnsupportedModelError as exc:
        sample = ", ".join(list(state)[:4])
        raise CheckpointError(
            f"{path}: not a super-resolution architecture spandrel knows (Real-ESRGAN, Compact, SwinIR, HAT, "
            f"DAT, SPAN, ...). Got {len(state)} tensors, e.g. {sample}"
        ) from exc
    except Exception as exc:  # a detector matched but the shapes do not build a network
        raise CheckpointError(f"{path}: looks like an SR model but its tensors do not fit ({exc})") from exc
    if not isinstance(descriptor, ImageModelDescriptor):
        raise CheckpointError(f"{path}: a {descriptor.purpose} model, not super-resolution. "
                              f"Got: {descriptor.architecture.name}")
    allowed = ("SR", "Restoration") if allow_restoration else ("SR",)
    if descriptor.purpose not in allowed:
        raise CheckpointError(f"{path}: a {descriptor.purpose} model ({descriptor.architecture.name}, "
                              f"x{descriptor.scale}), not super-resolution. Got purpose: {descriptor.purpose}")
    channels = (descriptor.input_channels, descriptor.output_channels)
    if channels not in ((3, 3), (1, 1)):
        raise CheckpointError(f"{path}: GANvas runs RGB (3 -> 3) or grey (1 -> 1) models. "
                              f"Got: {channels[0]} -> {channels[1]} channels")
    return SRModel(descriptor.eval(), path)


def load_sr_model(model: str | os.PathLike, allow_restoration: bool = False) -> SRModel:
    """Load an SR model by catalogue id (``"house-sr-x4"``) or path, on the CPU in float32.

    Args:
        model: a catalogue id or a ``.pth``/``.pt``/``.ckpt``/``.safetensors`` path.
        allow_restoration: also accept x1 restoration models (denoisers, de-JPEG).

    Raises:
        ModelNotFound: neither a file nor a known id.
        CheckpointError: the file is not a loadable SR model (see :func:`read_sr_state_dict`).
    """
    path = resolve(model)
    state = read_sr_state_dict(path)
    return sr_model_from_state_dict(state, path, allow_restoration)


def save_sr_model(module: nn.Module, path: str | os.PathLike, metadata: dict[str, str] | None = None) -> Path:
    """Write an SR network as ``.safetensors`` that :func:`load_sr_model` (and spandrel) reads back.

    Before the file replaces ``path`` (atomically), the network spandrel rebuilds from the tensors
    must give the same output as ``module`` on a probe image, so no house model ships that loads
    as something else (a hyper-parameter spandrel infers differently).

    Raises:
        CheckpointError: ``path`` is not ``.safetensors``; spandrel does not recognise the tensors
            or rebuilds a different network.
    """
    path = Path(path)
    if path.suffix.lower() != ".safetensors":
        raise CheckpointError(f"{path}: house SR models are saved as .safetensors. Got: {path.suffix}")
    state = {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in module.state_dict().items()}
    loaded = sr_model_from_state_dict(dict(state), path, allow_restoration=True)
    _check_same_network(module, loaded, path)
    info = {"format": HOUSE_SR_FORMAT, "architecture": loaded.architecture, "scale": str(loaded.scale),
            "extra": json.dumps(metadata or {})}
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.part")  # made by save_file: usual permissions
    try:
        save_file(state, str(tmp), metadata=info)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


@torch.no_grad()
def _check_same_network(module: nn.Module, loaded: SRModel, path: Path) -> None:
    side = max(32, loaded.size_minimum)
    side += -side % loaded.size_multiple
    probe = torch.rand(1, loaded.channels, side, side, generator=torch.Generator().manual_seed(0))
    training = module.training
    try:
        reference = module.eval()(probe.to(next(module.parameters()).device)).float().cpu().clamp(0, 1)
    finally:
        module.train(training)
    error = float((loaded.descriptor(probe) - reference).abs().max())
    if error > 1e-4:
        raise CheckpointError(f"{path}: spandrel rebuilds these tensors as a different {loaded.architecture} "
                              f"network ({', '.join(loaded.tags)}). Got: max output difference {error:.3g}")

