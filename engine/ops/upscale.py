"""Tiled super-resolution over spandrel models: seamless, bounded in memory, never out of memory.

The image is cut into a grid of cores; each model pass sees a core plus ``overlap`` pixels of
context a side. Neighbouring tiles are cross-faded with separable linear ramps ``feather`` px
either side of each core boundary whose weights sum to one (a partition of unity), so no seam
is left and, where the context covers the network's receptive field, the result equals the
untiled one. Pixels are written once, when finished; the overlap strips still waiting for a
neighbour are carried, so the working set is one tile plus two strips, whatever the image
size, and outputs above ``disk_above`` bytes live in a memory-mapped file whose finished pages
are dropped from the resident set. Out-of-memory is answered by a smaller tile, then half
precision, then the CPU. ``tta`` averages the x8 flips and rotations (geometric self-ensemble,
Timofte et al. CVPR 2016; Lim et al. 2017, arXiv:1707.02921). Scales other than the model's
resample each tile's output with MATLAB bicubic at exact global coordinates. Alpha is
resized bicubically (default) or run through the model as grey (``alpha="model"``).
"""

from __future__ import annotations

import logging
import math
import mmap
import os
import secrets
import struct
import tempfile
import time
import zlib
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import Tensor

from engine.device import pick_device
from engine.errors import GanvasError, ImageError, check
from engine.images import Image, load_image, save_image
from engine.jobs import CancelToken, Job, Progress
from engine.models.superres import SRModel
from engine.ops.sr_metrics import cubic_resize_matrix

log = logging.getLogger(__name__)

PRECISIONS = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
ALPHA_MODES = ("bicubic", "model")
_MAX_VALUE = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0, np.dtype(np.float32): 1.0}


@dataclass
class UpscaleOptions:
    """How to upscale. Sizes are input pixels.

    ``tile`` is the side of one model pass including its context (what memory depends on):
    an int, ``"auto"`` (planned from free memory) or 0 (the whole image in one pass).
    ``overlap`` is the context each side of a core; the ramps span ``overlap // 2`` either side
    of a boundary, so blended pixels keep ``overlap // 2`` px of context (16: exact for a
    Real-ESRGAN Compact net, whose receptive field reaches 18 px, within 1/255 in practice).
    """

    scale: float | None = None  # output / input size; None: the model's own scale
    tile: int | str = "auto"
    overlap: int = 16
    tta: bool = False
    precision: str = "auto"  # auto (fp16/bf16 on CUDA when the model allows, else fp32) | fp32 | fp16 | bf16
    alpha: str = "bicubic"  # bicubic | model
    device: str | torch.device | None = None  # None: engine.device.pick_device()
    memory_budget: int | None = None  # bytes for one tile's working set; None: a share of free memory
    disk_above: int = 128 * 2**20  # output bytes above which upscale_file maps the output to disk


@dataclass
class UpscaleResult:
    image: Image | None  # same dtype as the input; memory-mapped when ``on_disk``
    model_scale: int
    tile: int  # model-pass side in input px; 0: the whole image in one pass
    tiles: int
    device: str
    precision: str
    fallbacks: list[str] = field(default_factory=list)  # what out-of-memory forced, in order
    on_disk: bool = False
    seconds: float = 0.0


@dataclass(frozen=True)
class Span:
    """One tile's extent along one axis: input px ``[in0, in1)``, weighted output px ``[out0, out1)``.

    Output ``[out0, lead)`` is shared with the previous tile, ``[trail, out1)`` with the next.
    """

    in0: int
    in1: int
    out0: int
    out1: int
    lead: int
    trail: int
    weight: np.ndarray  # (out1 - out0,) float32, the feather ramp


@dataclass(frozen=True)
class Setting:
    """One attempt: where and how the model runs."""

    device: torch.device
    dtype: torch.dtype
    tile: int  # 0: whole image


# ----------------------------------------------------------------------------- planning


def axis_spans(length: int, out_length: int, tile: int, overlap: int, align: int = 1) -> list[Span]:
    """Split one axis into tiles no longer than ``tile`` (0: one tile) with feathered boundaries.

    Output pixel ``X`` sits at input position ``xi = (X + 0.5) * length / out_length``; tile k
    weighs it by ramps ``clamp((xi - c_k + f) / 2f)`` and ``clamp((c_{k+1} + f - xi) / 2f)``
    around its core ``[c_k, c_{k+1})``, which sum to one over the tiles. Tile starts are rounded
    down to multiples of ``align``: a window-attention model (SwinIR, HAT) then sees the same
    window grid, and the same edge padding, as on the whole image.
    """
    feather = overlap // 2
    count = 1
    while tile and _longest_tile(length, count, overlap) + align - 1 > tile:
        count += 1
        check(length / count > 2 * feather + 2, f"tile {tile} leaves no core within overlap {overlap}. "
              f"Got: a {length} px side")
    cuts = [round(k * length / count) for k in range(count + 1)]
    xi = (np.arange(out_length, dtype=np.float64) + 0.5) * length / out_length
    spans: list[tuple[int, int, int, int, np.ndarray]] = []
    for k in range(count):
        w = np.ones(out_length)
        if k > 0:
            w *= np.clip((xi - cuts[k] + feather) / (2 * feather), 0, 1) if feather else xi >= cuts[k]
        if k < count - 1:
            w *= np.clip((cuts[k + 1] + feather - xi) / (2 * feather), 0, 1) if feather else xi < cuts[k + 1]
        nonzero = np.flatnonzero(w)
        out0, out1 = int(nonzero[0]), int(nonzero[-1]) + 1
        start = max(0, cuts[k] - overlap)
        spans.append((start - start % align, min(length, cuts[k + 1] + overlap), out0, out1,
                      w[out0:out1].astype(np.float32)))
    return [
        Span(in0, in1, out0, out1,
             lead=spans[k - 1][3] if k > 0 else out0,
             trail=spans[k + 1][2] if k < count - 1 else out1, weight=w)
        for k, (in0, in1, out0, out1, w) in enumerate(spans)
    ]


def _longest_tile(length: int, count: int, overlap: int) -> int:
    if count == 1:
        return length
    core = math.ceil(length / count) + 1
    return core + (2 * overlap if count > 2 else overlap)


def available_memory(device: torch.device) -> int:
    """Free bytes on ``device``: ``cuda.mem_get_info`` on CUDA; ``MemAvailable`` (``/proc/meminfo``) else."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 4 * 2**30  # no way to ask (Windows): assume a modest desktop


@torch.inference_mode()
def bytes_per_pixel(model: SRModel, dtype: torch.dtype = torch.float32) -> float:
    """Working memory of one model pass per input pixel, measured on a small probe tile.

    Forward hooks record every module's output; the estimate is the input, three times the
    largest intermediate (live at once: a layer's input, output and a residual) and two float32
    copies of the output (the model's and the weighted one being blended). Cached on the model.
    """
    cache = model.memory_per_pixel
    if dtype in cache:
        return cache[dtype]
    side = max(64, model.size_minimum, model.size_multiple)
    side += -side % model.size_multiple
    largest = [0]

    def record(_module, _inputs, output) -> None:
        if isinstance(output, Tensor):
            largest[0] = max(largest[0], output.numel())

    handles = [m.register_forward_hook(record) for m in model.module.modules()]
    try:
        probe = torch.rand(1, model.channels, side, side, device=model.device, dtype=model.dtype)
        model.descriptor(probe)
    finally:
        for handle in handles:
            handle.remove()
    element = torch.finfo(dtype).bits // 8
    pixels = side * side
    cache[dtype] = element * (3 + 3 * largest[0] / pixels) + 4 * 2 * 3 * model.scale**2
    return cache[dtype]


def auto_tile(model: SRModel, setting: Setting, height: int, width: int, budget: int | None = None) -> int:
    """The largest tile whose working set fits ``budget``; 0 when the whole image does.

    Default budget: on CUDA 60 % of free memory, tiles up to 2048 px; on the CPU a quarter of
    available RAM, at most 1 GiB, and tiles up to 512 px, because convolutions run faster per
    pixel on tiles that stay in cache (1.5x from 512 to 128 px on one core) than the overlap costs.
    """
    cuda = setting.device.type == "cuda"
    if budget is None:
        free = available_memory(setting.device)
        budget = int(0.6 * free) if cuda else min(free // 4, 2**30)
    per_pixel = bytes_per_pixel(model, setting.dtype)
    side = min(int(math.sqrt(budget / per_pixel)), 2048 if cuda else 512)
    if model.tiling == "internal" or (max(height, width) <= side and height * width * per_pixel <= budget):
        return 0
    return max(side - side % 16, min_tile(model))


def tile_alignment(model: SRModel) -> int:
    """Tile starts' multiple: 16 (a multiple of the usual 8 and 16 px attention windows) where
    spandrel discourages tiling, else the model's own size multiple."""
    return max(model.size_multiple, 1 if model.tiling == "supported" else 16)


def min_tile(model: SRModel, overlap: int = 16) -> int:
    """The smallest useful tile: context both sides plus a core wider than the two ramps."""
    side = max(32, 3 * overlap + 4 + tile_alignment(model), model.size_minimum)
    return side + -side % 16


# ----------------------------------------------------------------------------- running the model


def choose_setting(model: SRModel, options: UpscaleOptions) -> Setting:
    """Device (checked by ``pick_device``) and dtype for the first attempt."""
    device = pick_device(None if options.device is None else str(options.device)).device
    if options.precision == "auto":
        dtype = torch.float32
        if device.type == "cuda" and model.supports_half:
            dtype = torch.float16
        elif device.type == "cuda" and model.supports_bfloat16 and torch.cuda.is_bf16_supported():
            dtype = torch.bfloat16
    else:
        check(options.precision in PRECISIONS,
              f"precision must be auto, {', '.join(PRECISIONS)}. Got: {options.precision}")
        dtype = PRECISIONS[options.precision]
        check(dtype != torch.float16 or model.supports_half,
              f"{model.architecture_name} does not support fp16. Got: precision {options.precision}")
        check(dtype != torch.bfloat16 or model.supports_bfloat16,
              f"{model.architecture_name} does not support bf16. Got: precision {options.precision}")
    return Setting(device, dtype, 0)


def next_setting(setting: Setting, model: SRModel, smallest: int, full_tile: int) -> tuple[Setting, str] | None:
    """The next thing to try after running out of memory, and its name; None when nothing is left.

    Order: halve the tile (down to ``smallest``), then half precision on a GPU, then the CPU.
    ``full_tile`` is the side a whole-image pass amounts to (to halve from when ``tile`` is 0).
    """
    current = setting.tile or full_tile
    if current > smallest:
        tile = max(smallest, (current // 2) - (current // 2) % 16)
        return replace(setting, tile=tile), f"tile {setting.tile or 'whole image'} -> {tile}"
    if setting.device.type != "cpu" and setting.dtype == torch.float32:
        if model.supports_half:
            return replace(setting, dtype=torch.float16), "fp32 -> fp16"
        if model.supports_bfloat16:
            return replace(setting, dtype=torch.bfloat16), "fp32 -> bf16"
    if setting.device.type != "cpu":
        return Setting(torch.device("cpu"), torch.float32, 0), f"{setting.device.type} -> cpu"
    return None


def is_out_of_memory(exc: BaseException) -> bool:
    if isinstance(exc, (torch.OutOfMemoryError, MemoryError)):
        return True
    text = str(exc).lower()
    return isinstance(exc, RuntimeError) and ("out of memory" in text or "not enough memory" in text)


_DIHEDRAL = [(k, flip) for flip in (False, True) for k in range(4)]


def predict(model: SRModel, x: Tensor, tta: bool, job: Job) -> Tensor:
    """``(1, C, h, w)`` on the model's device and dtype -> ``(C, h*s, w*s)`` float32 on the CPU, ``[0, 1]``."""
    if model.channels == 1:
        x = x.transpose(0, 1)  # (C, 1, h, w): each colour channel through a grey model
    total = None
    for k, flip in _DIHEDRAL if tta else _DIHEDRAL[:1]:
        job.check()
        view = torch.rot90(x.flip(-1) if flip else x, k, (-2, -1))
        y = torch.rot90(model.descriptor(view), -k, (-2, -1))
        y = (y.flip(-1) if flip else y).float()
        total = y if total is None else total + y
    out = (total / (8 if tta else 1)).cpu()
    return out[:, 0] if model.channels == 1 else out[0]


# ----------------------------------------------------------------------------- blending


class Blender:
    """Sums feathered tiles in raster order and writes each output pixel once, when finished.

    ``carry`` holds the rows a tile row shares with the next (full width); ``col_carry`` the
    columns a tile shares with its right neighbour. A carried sum is consumed (zeroed) when
    added, so no contribution is counted twice where four tiles meet.
    """

    def __init__(self, rows: list[Span], cols: list[Span], channels: int, out_width: int,
                 write: Callable[[int, int, np.ndarray], None]):
        self.rows, self.cols, self.write = rows, cols, write
        height = max(r.out1 - r.trail for r in rows)
        self.carry = np.zeros((channels, height, out_width), np.float32)
        self.next_carry = np.zeros_like(self.carry)
        self.col_carry = np.zeros((channels, 0, 0), np.float32)

    def add(self, r: int, c: int, tile: np.ndarray) -> None:
        """Add tile (r, c): ``(C, rows' out1 - out0, cols' out1 - out0)`` float32, already weighted."""
        R, K = self.rows[r], self.cols[c]
        top, left = R.lead - R.out0, K.lead - K.out0
        bottom, right = R.trail - R.out0, K.trail - K.out0
        if top:
            tile[:, :top] += self.carry[:, :top, K.out0:K.out1]
            self.carry[:, :top, K.out0:K.out1] = 0
        if left:
            tile[:, :bottom, :left] += self.col_carry
        if bottom < tile.shape[1]:
            self.next_carry[:, : tile.shape[1] - bottom, K.out0:K.out1] += tile[:, bottom:]
        self.col_carry = tile[:, :bottom, right:].copy()
        self.write(R.out0, K.out0, tile[:, :bottom, :right])
        if c == len(self.cols) - 1:
            self.carry, self.next_carry = self.next_carry, self.carry
            self.next_carry[:] = 0


# ----------------------------------------------------------------------------- output storage


def map_file(path: Path, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """A zero-filled array backed by a new file mapped into memory (freed when the array is)."""
    nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
    with open(path, "w+b") as handle:
        handle.truncate(nbytes)
        mapping = mmap.mmap(handle.fileno(), nbytes)
    return np.ndarray(shape, dtype, buffer=mapping)


def release_rows(array: np.ndarray | None, start: int, stop: int) -> None:
    """Drop rows ``[start, stop)`` of a :func:`map_file` array from the resident set; the kernel
    keeps their data in the file, so RSS stays flat however large the output (no-op in RAM)."""
    mapping = getattr(array, "base", None)
    if not isinstance(mapping, mmap.mmap) or not hasattr(mmap, "MADV_DONTNEED"):
        return
    row_bytes = array.nbytes // array.shape[0]
    first = -(-start * row_bytes // mmap.PAGESIZE) * mmap.PAGESIZE  # whole pages inside the rows only
    last = stop * row_bytes // mmap.PAGESIZE * mmap.PAGESIZE
    if last > first:
        mapping.madvise(mmap.MADV_DONTNEED, first, last - first)


class Outputs:
    """The preallocated output (RGB and optional alpha), in memory or memory-mapped in ``workdir``."""

    def __init__(self, shape: tuple[int, int], dtype: np.dtype, alpha: bool, workdir: Path | None):
        def allocate(name: str, dims: tuple[int, ...]) -> np.ndarray:
            return np.zeros(dims, dtype) if workdir is None else map_file(workdir / f"{name}.raw", dims, dtype)

        self.rgb = allocate("rgb", (*shape, 3))
        self.alpha = allocate("alpha", shape) if alpha else None
        self.released = 0

    def write(self, y: int, x: int, values: np.ndarray) -> None:
        """Store finished ``(C, h, w)`` float values in ``[0, 1]`` at ``(y, x)``."""
        h, w = values.shape[1:]
        self.rgb[y : y + h, x : x + w] = _quantize(values[:3], self.rgb.dtype)
        if self.alpha is not None:
            self.alpha[y : y + h, x : x + w] = _quantize(values[3:], self.alpha.dtype)[..., 0]

    def release(self, stop_row: int) -> None:
        """Rows above ``stop_row`` are finished: drop them from memory if mapped."""
        release_rows(self.rgb, self.released, stop_row)
        release_rows(self.alpha, self.released, stop_row)
        self.released = stop_row


def _quantize(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """``(C, h, w)`` float in ``[0, 1]`` -> ``(h, w, C)`` of ``dtype``, rounded and clipped (in place)."""
    np.clip(values, 0.0, 1.0, out=values)
    if dtype != np.float32:
        values *= _MAX_VALUE[np.dtype(dtype)]
        values += 0.5
    return values.transpose(1, 2, 0).astype(dtype)


# ----------------------------------------------------------------------------- the upscale


def upscale_image(
    model: SRModel,
    image: Image,
    options: UpscaleOptions | None = None,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
    workdir: Path | None = None,
) -> UpscaleResult:
    """Upscale ``image`` (RGB ``uint8``/``uint16``/``float32`` + optional alpha) with ``model``.

    The output is ``round(H * scale) x round(W * scale)`` in the input's dtype (16-bit stays
    16-bit; every sum runs in float32). When it needs more than ``options.disk_above`` bytes and
    ``workdir`` is given, its arrays are memory-mapped files there (the caller removes them).
    Out-of-memory never escapes: the run restarts with a smaller tile, then half precision (GPU),
    then the CPU, and ``fallbacks`` names each step. The model is left on the device used.

    Raises:
        GanvasError: bad options or image; out of memory with nothing left to try.
        Cancelled: ``cancel`` was set (checked before every tile and TTA pass).
    """
    options = options or UpscaleOptions()
    height, width = image.rgb.shape[:2]
    out_h, out_w = _check_request(model, image, options)
    started = time.perf_counter()
    setting = _first_setting(model, options, height, width)
    channels = 3 + (image.alpha is not None)
    on_disk = workdir is not None and out_h * out_w * channels * image.rgb.itemsize > options.disk_above
    fallbacks: list[str] = []
    while True:
        try:
            outputs = Outputs((out_h, out_w), image.rgb.dtype, channels == 4, workdir if on_disk else None)
            count = _run(model, image, options, setting, outputs, progress, cancel)
            break
        except Exception as exc:
            if not is_out_of_memory(exc):
                raise
            outputs = None  # drop the partial output before trying again
            setting, name = _fall_back(model, options, setting, height, width, exc)
            fallbacks.append(f"out of memory: {name}")
    return UpscaleResult(
        image=Image(outputs.rgb, outputs.alpha, image.source),
        model_scale=model.scale, tile=setting.tile, tiles=count, device=str(setting.device),
        precision=next(k for k, v in PRECISIONS.items() if v == setting.dtype), fallbacks=fallbacks,
        on_disk=on_disk, seconds=time.perf_counter() - started,
    )


def _check_request(model: SRModel, image: Image, options: UpscaleOptions) -> tuple[int, int]:
    """Validate the image and options; returns the output ``(height, width)``."""
    rgb = image.rgb
    check(rgb.ndim == 3 and rgb.shape[2] == 3, f"expected (H, W, 3) pixels. Got: {rgb.shape}")
    check(rgb.dtype in _MAX_VALUE, f"pixels must be uint8, uint16 or float32. Got: {rgb.dtype}")
    check(image.alpha is None or image.alpha.shape == rgb.shape[:2],
          f"alpha must be (H, W) like the image. Got: {None if image.alpha is None else image.alpha.shape}")
    scale = float(options.scale or model.scale)
    check(1 <= scale <= 16, f"scale must be in 1 .. 16. Got: {options.scale}")
    check(options.alpha in ALPHA_MODES, f"alpha must be one of {', '.join(ALPHA_MODES)}. Got: {options.alpha}")
    check(options.tile == "auto" or (isinstance(options.tile, int) and options.tile >= 0),
          f"tile must be a size in px, 0 or 'auto'. Got: {options.tile}")
    height, width = rgb.shape[:2]
    out_h, out_w = max(1, round(height * scale)), max(1, round(width * scale))
    need = 0 if (out_h, out_w) == (height * model.scale, width * model.scale) else 6
    check(options.overlap >= need, f"overlap must be >= {need} px (resampling to x{scale:g} needs 3 px "
          f"of context beyond the ramps). Got: {options.overlap}")
    return out_h, out_w


def _first_setting(model: SRModel, options: UpscaleOptions, height: int, width: int) -> Setting:
    setting = choose_setting(model, options)
    if options.tile == "auto":
        model.descriptor.to(setting.device, setting.dtype)
        tile = auto_tile(model, setting, height, width, options.memory_budget)
    else:
        tile, smallest = int(options.tile), min_tile(model, options.overlap)
        check(tile == 0 or tile >= smallest, f"tile must be 0 or at least {smallest} px. Got: {tile}")
    return replace(setting, tile=0 if tile >= max(height, width) else tile)


def _fall_back(model: SRModel, options: UpscaleOptions, setting: Setting, height: int, width: int,
               exc: Exception) -> tuple[Setting, str]:
    """The setting to retry with after ``exc`` (out of memory), and its name; raise if none is left."""
    if setting.device.type == "cuda":
        torch.cuda.empty_cache()
    step = next_setting(setting, model, min_tile(model, options.overlap), max(height, width))
    if step is None:
        raise GanvasError(f"out of memory even with a {setting.tile or 'whole-image'} px tile on "
                          f"{setting.device.type}; free some memory or shrink the image. "
                          f"Got: {width} x {height} px") from exc
    setting, name = step
    if setting.device.type == "cpu" and setting.tile == 0:  # just left the GPU: plan for the CPU
        model.descriptor.to(setting.device, setting.dtype)
        setting = replace(setting, tile=auto_tile(model, setting, height, width, options.memory_budget))
    log.warning("upscale: out of memory; retrying with %s", name)
    return setting, name


def _run(model: SRModel, image: Image, options: UpscaleOptions, setting: Setting, outputs: Outputs,
         progress: Progress | None, cancel: CancelToken | None) -> int:
    """One attempt over every tile; returns the tile count."""
    model.descriptor.to(setting.device, setting.dtype)
    (height, width), (out_h, out_w) = image.rgb.shape[:2], outputs.rgb.shape[:2]
    align, s = tile_alignment(model), model.scale
    rows = axis_spans(height, out_h, setting.tile, options.overlap, align)
    cols = axis_spans(width, out_w, setting.tile, options.overlap, align)
    resample = (out_h, out_w) != (height * s, width * s)
    bicubic_alpha = image.alpha is not None and options.alpha == "bicubic"
    blender = Blender(rows, cols, 3 + (image.alpha is not None), out_w, outputs.write)
    job = Job(len(rows) * len(cols), progress, cancel)
    for r, row in enumerate(rows):
        # Resampling matrices are built per span when needed: a 1k tile's are ~50 MB each.
        row_map = _span_map(row, height, out_h, s, 0, resample)
        row_alpha = _span_map(row, height, out_h, 1, 3, True) if bicubic_alpha else None
        for c, col in enumerate(cols):
            job.check()
            maps = (row_map, _span_map(col, width, out_w, s, 0, resample),
                    row_alpha, _span_map(col, width, out_w, 1, 3, True) if bicubic_alpha else None)
            values = _tile(model, image, options, setting, row, col, maps, job)
            values *= row.weight[None, :, None] * col.weight[None, None, :]
            blender.add(r, c, values)
            done = r * len(cols) + c + 1
            job.step(done, f"tile {done}/{job.total}")
        outputs.release(row.trail)
    return job.total


@dataclass(frozen=True)
class SpanMap:
    """How a span's output pixels come from a source window ``[src0, src1)``: a crop
    ``[crop0, crop1)`` of it when the scale is the model's, else a resampling ``matrix``."""

    src0: int
    src1: int
    crop0: int = 0
    crop1: int = 0
    matrix: Tensor | None = None  # (out1 - out0, src1 - src0) float32


def _span_map(span: Span, length: int, out_length: int, factor: int, margin: int, resample: bool) -> SpanMap:
    """Source window (in ``factor`` x input px, ``margin`` wider) and how ``span``'s output comes from it."""
    src0 = max(0, span.in0 * factor - margin)
    src1 = min(length * factor, span.in1 * factor + margin)
    if not resample:
        return SpanMap(src0, src1, span.out0 - src0, span.out1 - src0)
    matrix = cubic_resize_matrix(length * factor, out_length, span.out0, span.out1, src0, src1)
    return SpanMap(src0, src1, matrix=torch.from_numpy(matrix.astype(np.float32)))


def _apply(source: Tensor, rows: SpanMap, cols: SpanMap) -> np.ndarray:
    """``(C, h, w)`` source window -> ``(C, span_h, span_w)`` float32 output values (may share memory)."""
    if rows.matrix is None:
        return source[:, rows.crop0 : rows.crop1, cols.crop0 : cols.crop1].numpy()
    return (rows.matrix @ source @ cols.matrix.T).numpy()


def _tile(model: SRModel, image: Image, options: UpscaleOptions, setting: Setting, row: Span, col: Span,
          maps: tuple[SpanMap, SpanMap, SpanMap | None, SpanMap | None], job: Job) -> np.ndarray:
    """A tile's unweighted output values ``(C, span_h, span_w)``: RGB, then alpha if any."""
    unit, (rows, cols, alpha_rows, alpha_cols) = _MAX_VALUE[image.rgb.dtype], maps
    region = image.rgb[row.in0 : row.in1, col.in0 : col.in1]
    x = torch.from_numpy(region.astype(np.float32) / unit).permute(2, 0, 1)[None]  # (1, 3, h, w)
    values = [_apply(predict(model, x.to(setting.device, setting.dtype), options.tta, job), rows, cols)]
    if image.alpha is not None and alpha_rows is None:  # through the model, as grey
        a = torch.from_numpy(image.alpha[row.in0 : row.in1, col.in0 : col.in1].astype(np.float32) / unit)
        grey = a[None, None].expand(1, model.channels, *a.shape)  # (1, C, h, w)
        ya = predict(model, grey.to(setting.device, setting.dtype), options.tta, job).mean(0, keepdim=True)
        values.append(_apply(ya, rows, cols))
    elif image.alpha is not None:
        a = image.alpha[alpha_rows.src0 : alpha_rows.src1, alpha_cols.src0 : alpha_cols.src1]
        a = torch.from_numpy(a.astype(np.float32) / unit)[None]  # (1, h', w')
        values.append((alpha_rows.matrix @ a @ alpha_cols.matrix.T).numpy())
    return np.concatenate(values, axis=0) if len(values) > 1 else values[0]


# ----------------------------------------------------------------------------- files


def write_png_streaming(path: Path, rgb: np.ndarray, alpha: np.ndarray | None = None,
                        release: Callable[[int, int], None] | None = None, cancel: CancelToken | None = None,
                        band: int = 64, level: int = 1) -> Path:
    """Write an 8- or 16-bit RGB(A) PNG band by band, atomically, never holding the whole image.

    PNG (ISO/IEC 15948): signature, IHDR, IDAT holding one zlib stream of scanlines (each with
    the "Up" filter: bytes minus the row above, mod 256), IEND. OpenCV and PIL encode only a
    whole in-memory image, which for a 16k x 16k output would double its footprint. At zlib
    level 1 it is about as fast as OpenCV's encoder, with files ~15 % larger.
    """
    check(rgb.dtype in (np.uint8, np.uint16), f"{path}: PNG pixels are uint8 or uint16. Got: {rgb.dtype}", ImageError)
    height, width = rgb.shape[:2]
    depth, colour = (16 if rgb.dtype == np.uint16 else 8), (6 if alpha is not None else 2)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.part")
    try:
        with open(tmp, "xb") as handle:  # not mkstemp: that makes 0600 files
            handle.write(b"\x89PNG\r\n\x1a\n")
            _png_chunk(handle, b"IHDR", struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0))
            stream, pending = zlib.compressobj(level), bytearray()
            above = None
            for y0 in range(0, height, band):
                rows = rgb[y0 : y0 + band]
                if alpha is not None:
                    rows = np.concatenate([rows, alpha[y0 : y0 + band, :, None]], axis=2)
                raw = np.ascontiguousarray(rows.astype(">u2") if depth == 16 else rows).reshape(len(rows), -1)
                raw = raw.view(np.uint8)  # (n, W * C * bytes)
                previous = np.vstack([above if above is not None else np.zeros_like(raw[:1]), raw[:-1]])
                lines = np.hstack([np.full((len(raw), 1), 2, np.uint8), raw - previous])  # 2: Up filter
                above = raw[-1:].copy()
                pending += stream.compress(lines.tobytes())
                if len(pending) > 2**20:
                    _png_chunk(handle, b"IDAT", bytes(pending))
                    pending.clear()
                if release is not None:
                    release(y0, y0 + len(rows))  # these rows are encoded: let them leave memory
                if cancel is not None:
                    cancel.raise_if_cancelled()
            pending += stream.flush()
            _png_chunk(handle, b"IDAT", bytes(pending))
            _png_chunk(handle, b"IEND", b"")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise ImageError(f"{path}: the file could not be written. Got: {exc.strerror or exc}") from exc
    except BaseException:  # Cancelled, KeyboardInterrupt: leave no temporary file behind
        tmp.unlink(missing_ok=True)
        raise
    return path


def _png_chunk(handle, kind: bytes, data: bytes) -> None:
    handle.write(struct.pack(">I", len(data)) + kind + data)
    handle.write(struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))


def upscale_file(
    model: SRModel,
    source: str | os.PathLike,
    target: str | os.PathLike,
    options: UpscaleOptions | None = None,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
) -> UpscaleResult:
    """Upscale an image file into ``target`` (``.png`` keeps alpha and 16 bits; ``.jpg`` is 8-bit RGB).

    A large output is assembled in a memory-mapped file in a hidden folder beside ``target`` and
    streamed into the PNG (a JPEG is encoded from memory); the folder is removed afterwards and
    ``result.image`` is then None. Nothing appears at ``target`` unless the whole job succeeds.

    Raises:
        ImageError: unreadable source; bad target suffix or folder; the write failed.
        Plus those of :func:`upscale_image`.
    """
    source, target = Path(source), Path(target)
    suffix, folder = target.suffix.lower(), target.parent if str(target.parent) else Path(".")
    if suffix not in (".png", ".jpg", ".jpeg"):
        raise ImageError(f"{target}: can only write .png, .jpg or .jpeg. Got: {suffix or 'no suffix'}")
    if not folder.is_dir():
        raise ImageError(f"{target}: the folder does not exist. Got: {folder}")
    image = load_image(source)
    with tempfile.TemporaryDirectory(prefix=".ganvas-upscale-", dir=folder, ignore_cleanup_errors=True) as work:
        result = upscale_image(model, image, options, progress, cancel, workdir=Path(work))
        rgb, alpha = result.image.rgb, result.image.alpha
        if result.on_disk and suffix == ".png":
            write_png_streaming(target, rgb, alpha, release=partial(_release_both, rgb, alpha), cancel=cancel)
        else:
            save_image(target, rgb, alpha)
        if result.on_disk:
            result.image = rgb = alpha = None  # unmap the output before its folder is removed
    return result


def _release_both(rgb: np.ndarray, alpha: np.ndarray | None, start: int, stop: int) -> None:
    release_rows(rgb, start, stop)
    release_rows(alpha, start, stop)
