"""The Upscale panel's work on the worker thread: load an SR model, upscale the image, upscale a folder.

Each function has the runner's job shape ``fn(..., progress=, cancel=)`` and imports torch
inside, so the window opens without waiting for it. What comes back to the GUI thread is
plain values (:class:`SRInfo`, :class:`Upscaled`, :class:`BatchReport`); only the worker
runs the network. The tiling, memory planning and out-of-memory fallbacks are
``engine.ops.upscale``'s; this module adds the compare image and the folder loop.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.errors import Cancelled, GanvasError, ImageError, check
from engine.images import READ_SUFFIXES, Image
from engine.jobs import Job
from engine.models.catalog import ModelEntry, available

if TYPE_CHECKING:
    from engine.models.superres import SRModel
    from engine.ops.upscale import UpscaleOptions, UpscaleResult

# Model cards name an SR model's kind with one of these; a card-less house file is known by
# its safetensors header (engine.models.superres.HOUSE_SR_FORMAT, repeated to keep torch unloaded).
SR_KINDS = ("super-resolution", "upscaler", "sr")
HOUSE_SR_FORMAT = "ganvas.sr"
SR_SUFFIXES = (".pth", ".safetensors", ".pt", ".ckpt")
SR_FILTER = "Super-resolution models ({});;All files (*)".format(" ".join(f"*{s}" for s in SR_SUFFIXES))
BATCH_STEPS = 1000  # progress units per image of a batch, so tiles of any count map onto one bar


def sr_catalogue() -> list[ModelEntry]:
    """The catalogue's super-resolution models (house models first): by card kind, or the house header."""
    return [e for e in available() if e.kind.lower() in SR_KINDS or (e.kind == "unknown" and _house_sr(e.path))]


def _house_sr(path: Path) -> bool:
    if path.suffix.lower() != ".safetensors":
        return False
    from safetensors import safe_open  # reads the JSON header only

    try:
        with safe_open(str(path), framework="np") as handle:
            return (handle.metadata() or {}).get("format") == HOUSE_SR_FORMAT
    except Exception:  # any unreadable file is simply not listed; loading it would say why
        return False


@dataclass(frozen=True)
class SRInfo:
    """What the panel shows about a loaded SR model; plain values, safe on any thread."""

    spec: str  # what was loaded: a catalogue id or an absolute file path
    path: Path
    architecture: str  # spandrel's name, e.g. "RealESRGAN Compact"
    scale: int
    tags: tuple[str, ...]
    fp16: bool
    bf16: bool
    tiling: str  # "supported", "discouraged" or "internal"
    min_tile: int  # the smallest tile side the engine accepts for it, px
    parameters: int

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def precisions(self) -> str:
        return " · ".join(["fp32"] + ["fp16"] * self.fp16 + ["bf16"] * self.bf16)


@dataclass(frozen=True)
class LoadedSR:
    model: SRModel
    info: SRInfo


@dataclass(frozen=True)
class UpscaleRequest:
    """The panel's settings for one run. ``scale`` None: the model's own; ``tile`` 0: auto."""

    scale: float | None = None
    tile: int = 0
    tta: bool = False
    device: str | None = None  # None: engine.device.pick_device's choice

    def options(self) -> UpscaleOptions:
        from engine.ops.upscale import UpscaleOptions

        return UpscaleOptions(scale=self.scale, tile=self.tile or "auto", tta=self.tta, device=self.device)


@dataclass(frozen=True)
class Upscaled:
    image: Image  # the model's output
    before: Image  # the input resized plainly (Lanczos) to the output's size: the compare's left side
    figures: UpscaleResult  # tiles, device, precision, fallbacks, seconds (its image dropped)
    input_size: tuple[int, int]  # (width, height)


@dataclass(frozen=True)
class BatchReport:
    source: Path
    target: Path
    written: tuple[Path, ...]
    skipped: tuple[tuple[Path, str], ...]  # (file, why)
    fallbacks: tuple[str, ...]
    seconds: float
    tiles: int = 0  # model passes over all images
    device: str = ""  # where the last image ran, and in which precision

    @property
    def total(self) -> int:
        return len(self.written) + len(self.skipped)


def load_sr_job(spec: str, progress: Any = None, cancel: Any = None) -> LoadedSR:
    """Load ``spec`` (catalogue id or path) and read its facts."""
    from engine.models.superres import load_sr_model
    from engine.ops.upscale import min_tile

    Job(1, progress, cancel).check()
    model = load_sr_model(spec)
    info = SRInfo(spec=spec, path=model.path, architecture=model.architecture_name, scale=model.scale,
                  tags=tuple(model.tags), fp16=model.supports_half, bf16=model.supports_bfloat16,
                  tiling=model.tiling, min_tile=min_tile(model),
                  parameters=sum(p.numel() for p in model.module.parameters()))
    return LoadedSR(model, info)


def upscale_job(model: SRModel, image: Image, request: UpscaleRequest, progress: Any = None,
                cancel: Any = None) -> Upscaled:
    """Upscale ``image`` in tiles (progress per tile) and make its plainly resized twin for the compare."""
    from engine.ops.transform import resize
    from engine.ops.upscale import upscale_image

    result = upscale_image(model, image, request.options(), progress, cancel)
    out = result.image
    Job(1, None, cancel).check()  # the resize below takes a moment on a large output
    before = resize(Image(image.rgb, image.alpha, image.source), out.width, out.height)
    return Upscaled(out, before, dataclasses.replace(result, image=None), (image.width, image.height))


def output_name(path: Path) -> str:
    """PNG and JPEG keep their names; other formats become PNG."""
    return path.name if path.suffix.lower() in (".png", ".jpg", ".jpeg") else f"{path.stem}.png"


def batch_upscale_job(model: SRModel, source: Path, target: Path, request: UpscaleRequest,
                      progress: Any = None, cancel: Any = None) -> BatchReport:
    """Upscale every image in ``source`` into ``target``; an unreadable image is skipped with its reason.

    Each output is written whole or not at all (``upscale_file``), so a cancelled batch leaves
    the images finished so far and no partial file.

    Raises:
        ImageError: ``source`` holds no images; ``target`` is ``source`` or cannot be made.
        Cancelled: ``cancel`` was set.
    """
    from engine.ops.upscale import upscale_file

    started = time.perf_counter()
    check(source.is_dir(), f"{source}: no such folder", ImageError)
    files = [p for p in sorted(source.iterdir()) if p.is_file() and p.suffix.lower() in READ_SUFFIXES]
    check(bool(files), f"{source}: no images ({', '.join(READ_SUFFIXES)}) in this folder. Got: none", ImageError)
    check(target.resolve() != source.resolve(), f"{target}: the output folder must differ from the input folder, "
          f"or the upscaled images would replace the originals. Got: the same folder", ImageError)
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ImageError(f"{target}: the output folder cannot be made. Got: {exc.strerror or exc}") from exc
    job, options = Job(len(files) * BATCH_STEPS, progress, cancel), request.options()
    written: list[Path] = []
    skipped: list[tuple[Path, str]] = []
    fallbacks: list[str] = []
    passes, device = 0, ""
    for index, path in enumerate(files):
        label = f"{path.name} ({index + 1}/{len(files)})"

        def per_tile(step: int, total: int, message: str, preview: Any = None, base: int = index * BATCH_STEPS,
                  label: str = label) -> None:
            job.step(base + BATCH_STEPS * step // max(total, 1), f"{label}: {message}")

        job.step(index * BATCH_STEPS, label)
        try:
            result = upscale_file(model, path, target / output_name(path), options, per_tile, cancel)
        except Cancelled:
            raise
        except GanvasError as exc:  # this file only: the batch goes on
            skipped.append((path, str(exc).removeprefix(f"{path}: ")))
            continue
        written.append(target / output_name(path))
        fallbacks += [f"{path.name}: {f}" for f in result.fallbacks]
        passes, device = passes + result.tiles, f"{result.device} · {result.precision}"
    return BatchReport(source, target, tuple(written), tuple(skipped), tuple(fallbacks),
                       time.perf_counter() - started, passes, device)
