"""What the Sketch panel sends to the worker and gets back; no widgets.

A drawing (the colour strokes, the edge map and the keep mask, as the canvas holds them at the
image's size) becomes a :class:`Drawing`: the centre square of each map (the models are
square), only the layers the chosen kind uses. :func:`sketch_job` runs
``engine.ops.sketch.sketch`` on it on the worker: K candidates from K starts, or, in live
mode, one short search warm-started from the last result. :func:`canny_job` proposes edges
from the document's image (``engine.ops.edges.canny_edges``, kornia's Canny) at most
:data:`EDGE_SIDE` pixels across. The feed-forward route (a pix2pix edges-to-image network)
appears when the catalogue lists a model of kind ``edges-to-image``.

The sketch is part of the document: its maps ride in the latent document's named layers
(``engine.document.Document.layers``: ``sketch.colour`` RGBA, ``sketch.edges`` and
``sketch.keep``, 0/255), so a saved ``.ganvas`` reopens with them. Torch is imported inside the
job functions, so the window opens without waiting for it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from engine.errors import check

if TYPE_CHECKING:
    from torch import Tensor, nn

    from engine.document import Document as Latent
    from engine.models.catalog import ModelEntry
    from engine.ops.sketch import SketchCandidate, SketchResult
    from gui.model_state import ModelInfo

KINDS = {"both": "Strokes and edges", "strokes": "Strokes only", "edges": "Edges only"}
LAYER_KEYS = {"colour": "sketch.colour", "edges": "sketch.edges", "keep": "sketch.keep"}
EDGE_SIDE = 512  # px: kornia's Canny takes 0.06 s at 256 px, 0.3 s at 512, 0.6-2.7 s at 1024 on one core
EDGES_KIND = "edges-to-image"  # model-card kind of a feed-forward edges model
LIVE_STEPS = 10  # a live search from the last result: about 0.6 s of search for house-gan on one CPU core
LIVE_SCREEN = 16  # latents scored for a live search's first (cold) start


# ----------------------------------------------------------------------------- the drawing


def centre_square(pixels: np.ndarray) -> np.ndarray:
    """The centred ``side x side`` square of an ``(H, W, ...)`` array, ``side = min(H, W)``."""
    height, width = pixels.shape[:2]
    side = min(height, width)
    y0, x0 = (height - side) // 2, (width - side) // 2
    return np.ascontiguousarray(pixels[y0:y0 + side, x0:x0 + side])


@dataclass(frozen=True)
class Drawing:
    """A sketch as the engine's :class:`~engine.ops.sketch.Sketch` takes it, all ``S x S``.

    ``colour`` ``(S, S, 3)`` uint8 and ``alpha`` ``(S, S)`` float32 ``[0, 1]``; ``edges`` ``(S, S)``
    bool; ``keep`` ``(S, S)`` float32 0/1 with ``source`` ``(S, S, 3)`` uint8 (the image it keeps).
    """

    colour: np.ndarray | None = None
    alpha: np.ndarray | None = None
    edges: np.ndarray | None = None
    keep: np.ndarray | None = None
    source: np.ndarray | None = None
    notes: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return self.colour is None and self.edges is None and self.keep is None

    def layers(self) -> str:
        """``"strokes + edges"``: what the drawing holds, for the status line."""
        parts = [name for name, value in (("strokes", self.colour), ("edges", self.edges), ("keep", self.keep))
                 if value is not None]
        return " + ".join(parts) or "nothing"


def build_drawing(colour: np.ndarray, edges: np.ndarray, keep: np.ndarray, image: np.ndarray | None,
                  kind: str) -> Drawing:
    """The drawing that ``kind`` (a key of :data:`KINDS`) asks for, from full-size maps.

    ``colour`` ``(H, W, 4)`` uint8 RGBA; ``edges`` and ``keep`` ``(H, W)`` non-zero where drawn;
    ``image`` ``(H, W, 3)`` uint8, the pixels the keep mask keeps. Empty layers are left out.
    """
    check(kind in KINDS, f"kind must be one of {sorted(KINDS)}. Got: {kind!r}")
    height, width = colour.shape[:2]
    notes = (f"the centre {min(height, width)} px square of the {width} × {height} sketch",) \
        if height != width else ()
    out: dict[str, Any] = {}
    if kind in ("both", "strokes") and colour[..., 3].any():
        square = centre_square(colour)
        out["colour"], out["alpha"] = square[..., :3].copy(), square[..., 3].astype(np.float32) / 255.0
    if kind in ("both", "edges") and edges.any():
        out["edges"] = centre_square(edges) > 0
    if keep.any() and image is not None and image.shape[:2] == keep.shape:
        out["keep"] = (centre_square(keep) > 0).astype(np.float32)
        out["source"] = centre_square(image).copy()
    return Drawing(**out, notes=notes)


# ----------------------------------------------------------------------------- the GAN route


@dataclass(frozen=True)
class SketchRequest:
    """One search: K candidates of ``steps`` steps, or (``live``) one short warm-started search."""

    drawing: Drawing
    candidates: int = 4
    steps: int = 100
    live: bool = False
    previews: bool = True  # hand previews to the canvas (a live search must not flicker there)
    requested: float = field(default_factory=time.monotonic)  # when the user asked: the latency's start

    @property
    def title(self) -> str:
        return "Live sketch" if self.live else f"Sketch to image ({self.drawing.layers()})"


@dataclass
class SketchDone:
    request: SketchRequest
    result: SketchResult
    prior: Any  # engine.ops.invert.WPrior of G, kept for the next search
    warm: bool

    @property
    def latency(self) -> float:
        """Seconds from the request to now (call it when the result lands)."""
        return time.monotonic() - self.request.requested


def sketch_job(G: nn.Module, request: SketchRequest, warm: Tensor | Latent | None, prior: Any,
               progress: Any = None, cancel: Any = None) -> SketchDone:
    """Search ``G``'s latent space for the drawing (a worker job).

    ``warm``: the last result's ``ws`` ``(1, num_ws, w_dim)`` or a latent document to continue
    from (live mode only; None: a cold start). ``prior``: ``w_prior(G)`` from an earlier search, or None.
    """
    from torch import Tensor

    from engine.ops.invert import w_prior
    from engine.ops.sketch import Sketch, SketchConfig, sketch

    d = request.drawing
    check(not d.empty, "draw strokes or edges (or paint a keep mask) first. Got: an empty sketch")
    drawing = Sketch(colour=d.colour, alpha=d.alpha, edges=d.edges, keep=d.keep, source=d.source)
    warm_ws = None
    if request.live and warm is not None:
        warm_ws = warm if isinstance(warm, Tensor) else warm.current_ws()
    if request.live:
        config = SketchConfig(steps=request.steps, warm_steps=request.steps, candidates=1, screen=LIVE_SCREEN,
                              preview_every=request.steps)
    else:
        config = SketchConfig(steps=request.steps, candidates=request.candidates,
                              preview_every=max(request.steps // 10, 1))
    if prior is None:
        prior = w_prior(G, config.w_samples, config.seed)
    result = sketch(G, drawing, config, warm_start=warm_ws, prior=prior, cancel=cancel,
                    progress=progress if request.previews or progress is None else _without_previews(progress))
    return SketchDone(request, result, prior, warm_ws is not None)


def _without_previews(progress: Any) -> Any:
    """``progress`` minus the preview: the window shows every job's preview on the canvas."""
    def report(step: int, total: int, message: str = "", preview: Any = None) -> None:
        progress(step, total, message)
    return report


def candidate_latent(candidate: SketchCandidate, info: ModelInfo, layers: dict[str, np.ndarray],
                     meta: dict[str, Any]) -> Latent:
    """The latent document a picked candidate becomes: its ``ws``, the model, the sketch's layers."""
    from engine.document import Document as Latent
    from engine.document import ModelRef

    return Latent(candidate.ws.detach().cpu().clone(), ModelRef(info.model_id, str(info.path), info.sha256),
                  layers=dict(layers), meta={"sketch": meta})


def candidate_label(rank: int, candidate: SketchCandidate) -> tuple[str, str]:
    """``("2 · 0.048", "Candidate 2: loss 0.048 (colour 0.031, edges 0.017)")``."""
    terms = ", ".join(f"{k} {v:.3f}" for k, v in candidate.terms.items())
    return f"{rank} · {candidate.loss:.3f}", f"Candidate {rank}: loss {candidate.loss:.3f} ({terms})"


# ----------------------------------------------------------------------------- edges from a photo


@dataclass(frozen=True)
class EdgesFound:
    edges: np.ndarray  # (h, w) bool, at most EDGE_SIDE px across
    low: float
    high: float
    seconds: float


def canny_job(image: np.ndarray, low: float, high: float, progress: Any = None, cancel: Any = None) -> EdgesFound:
    """Canny edges of an ``(H, W, 3)`` uint8 image, shrunk to at most :data:`EDGE_SIDE` px first."""
    from engine.jobs import Job
    from engine.ops.edges import canny_edges

    Job(1, progress, cancel).check()
    start = time.perf_counter()
    height, width = image.shape[:2]
    scale = EDGE_SIDE / max(height, width)
    if scale < 1:  # area averaging: no aliasing, which Canny would find as edges
        size = (max(round(width * scale), 1), max(round(height * scale), 1))
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    edges = canny_edges(image, low, high)
    return EdgesFound(edges, low, high, time.perf_counter() - start)


def edges_at(edges: np.ndarray, width: int, height: int) -> np.ndarray:
    """An ``(h, w)`` bool edge map as the ``(height, width)`` uint8 edge layer (255 on a line)."""
    pixels = edges.astype(np.uint8) * 255
    if pixels.shape != (height, width):
        pixels = cv2.resize(pixels, (width, height), interpolation=cv2.INTER_NEAREST)
    return pixels


# ----------------------------------------------------------------------------- the document's layers


def document_layers(colour: np.ndarray, edges: np.ndarray, keep: np.ndarray) -> dict[str, np.ndarray]:
    """The sketch as named uint8 layers for ``engine.document.Document.layers`` (empty ones left out)."""
    layers = {}
    if colour[..., 3].any():
        layers[LAYER_KEYS["colour"]] = colour.copy()
    if edges.any():
        layers[LAYER_KEYS["edges"]] = ((edges > 0) * 255).astype(np.uint8)
    if keep.any():
        layers[LAYER_KEYS["keep"]] = ((keep > 0) * 255).astype(np.uint8)
    return layers


def read_layers(layers: dict[str, np.ndarray], width: int, height: int) -> dict[str, np.ndarray]:
    """The sketch's maps from a document's layers, at ``width x height``: ``colour`` ``(H, W, 4)``,
    ``edges`` ``(H, W)`` 0/255, ``keep`` ``(H, W)`` 0/1. Missing layers are left out; others resized."""
    out = {}
    for name, key in LAYER_KEYS.items():
        pixels = layers.get(key)
        if pixels is None:
            continue
        pixels = np.asarray(pixels, np.uint8)
        if name == "colour" and (pixels.ndim != 3 or pixels.shape[2] != 4):
            continue  # not a layer this version wrote
        if name != "colour":
            pixels = pixels.reshape(pixels.shape[:2])
        if pixels.shape[:2] != (height, width):
            pixels = cv2.resize(pixels, (width, height), interpolation=cv2.INTER_NEAREST)
        out[name] = pixels if name == "colour" else ((pixels > 0) * (255 if name == "edges" else 1)).astype(np.uint8)
    return out


# ----------------------------------------------------------------------------- the feed-forward route


def edges_models() -> list[ModelEntry]:
    """Catalogue models whose card says ``kind: edges-to-image``."""
    from engine.models.catalog import available

    return [entry for entry in available() if entry.kind == EDGES_KIND]


@dataclass(frozen=True)
class Translated:
    image: np.ndarray  # (R, R, 3) uint8
    model: Any  # the loaded network, for the next call
    seconds: float
    requested: float  # when the user asked: the latency's start


def translate_job(model: Any, edges: np.ndarray, requested: float, device: Any = None, progress: Any = None,
                  cancel: Any = None) -> Translated:
    """Run a pix2pix edges-to-image network (``engine.models.unet``; or the path of its weights, read
    here the first time, onto ``device``) on an ``(S, S)`` bool edge map (a worker job)."""
    from engine.jobs import Job
    from engine.models.unet import load_unet, translate_edges

    Job(1, progress, cancel).check()
    start = time.perf_counter()
    if isinstance(model, str):
        model = load_unet(model, device)
    image = translate_edges(model, edges)
    return Translated(image, model, time.perf_counter() - start, requested)


__all__ = ["KINDS", "LAYER_KEYS", "EDGE_SIDE", "LIVE_STEPS", "Drawing", "build_drawing", "centre_square",
           "SketchRequest", "SketchDone", "sketch_job", "candidate_latent", "candidate_label", "EdgesFound",
           "canny_job", "edges_at", "document_layers", "read_layers", "edges_models", "Translated",
           "translate_job"]
