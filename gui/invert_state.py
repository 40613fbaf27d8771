"""What the Invert panel sends to the worker and gets back; no widgets.

One run: the document's image is cut to the model's square (the centre square, or the
FFHQ-aligned square when four face landmarks are given, ``engine/ops/align.py``), the task
picks the forward operator (``engine/ops/degrade.py``), and :func:`invert_job` runs
``engine.ops.invert.invert`` on the worker. Its previews are pasted back where the square
came from, so the canvas shows the reconstruction growing inside the photo, at the photo's
place and size. The result comes back as an :class:`InvertDone`: the engine's result, the
latent document it becomes (``engine.document.Document``, PTI's tuned weights included) and
the input as the search saw it, which the compare view pits against the result.

Landmarks come from dlib when it and a shape predictor file are installed (optional);
otherwise the user places them by hand (``gui/landmark_layer.py``). Torch is imported inside
the job functions, so the window opens without waiting for it.
"""

from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from engine.errors import GanvasError, check
from engine.images import to_uint8
from engine.ops.align import Alignment, Landmarks, align_face, quad_matrix, unalign

if TYPE_CHECKING:
    from torch import nn

    from engine.document import Document as Latent
    from engine.ops.degrade import Operator
    from engine.ops.invert import InversionResult, InvertConfig
    from gui.model_state import ModelInfo


@dataclass(frozen=True)
class TaskChoice:
    label: str
    task: str  # the engine's task names: "invert", "inpaint", "colorize", "superres"
    factor: int = 1  # super-resolution factor


TASKS = (TaskChoice("Invert", "invert"), TaskChoice("Inpaint", "inpaint"), TaskChoice("Colourise", "colorize"),
         TaskChoice("Super-resolve ×2", "superres", 2), TaskChoice("Super-resolve ×4", "superres", 4),
         TaskChoice("Super-resolve ×8", "superres", 8))
MODE_LABELS = {"w": "W", "w+": "W+", "pti": "PTI"}
PREVIEW_MAX_SIDE = 1024  # previews pasted into a larger photo are drawn at most this big: the canvas scales them


@dataclass(frozen=True)
class InvertRequest:
    """One run. ``photo``: the document's ``(H, W, 3)`` uint8/uint16 pixels; ``hole``: ``(H, W)``,
    non-zero = the region to fill (inpainting); ``landmarks``: align the face first."""

    photo: np.ndarray
    mode: str = "w+"
    task: str = "invert"
    factor: int = 4
    steps: int | None = None  # None (and samples None): the engine's choice for the task
    pti_steps: int = 400
    landmarks: Landmarks | None = None
    hole: np.ndarray | None = None
    preview_every: int = 5
    seed: int = 0
    samples: int | None = None

    def plan(self, resolution: int) -> InvertConfig:
        """The search this request runs on a ``resolution`` px generator: its settings with the engine's
        defaults filled in."""
        from engine.ops.invert import InvertConfig, with_defaults

        return with_defaults(InvertConfig(mode=self.mode, steps=self.steps, pti_steps=self.pti_steps,
                                          preview_every=self.preview_every, seed=self.seed, samples=self.samples),
                             self.task, resolution)

    @property
    def title(self) -> str:
        choice = next(c for c in TASKS if c.task == self.task and (c.task != "superres" or c.factor == self.factor))
        return f"{choice.label} {MODE_LABELS[self.mode]}"


@dataclass
class Prepared:
    """The search's input at the model's resolution ``R``.

    ``target``: what ``invert`` fits (``(R, R, 3)``, or ``(R/f, R/f, 3)`` for a photo smaller than
    the model in super-resolution); ``truth``: the full image the figures are measured against (the
    cut photo, as the command line does; None for a small photo in super-resolution); ``known``:
    ``(R, R)`` float32, 1 = a kept pixel (inpainting); ``alignment``: where the square lies in the photo.
    """

    target: np.ndarray
    truth: np.ndarray | None
    known: np.ndarray | None
    alignment: Alignment
    aligned: bool
    notes: list[str] = field(default_factory=list)


def centre_alignment(height: int, width: int, size: int) -> Alignment:
    """The centred square of a ``height x width`` photo, as an :class:`Alignment` onto ``size`` px."""
    side = min(height, width)
    x0, y0 = (width - side) // 2 - 0.5, (height - side) // 2 - 0.5  # outer pixel edges
    quad = np.array([[x0, y0], [x0, y0 + side], [x0 + side, y0 + side], [x0 + side, y0]], np.float64)
    return Alignment(quad, quad_matrix(quad, size), size, (height, width))


def cut(pixels: np.ndarray, landmarks: Landmarks | None, size: int) -> tuple[np.ndarray, Alignment]:
    """The ``size`` px square of ``pixels`` ``(H, W, C)``: FFHQ-aligned on ``landmarks``, else the centre square."""
    if landmarks is not None:
        return align_face(pixels, landmarks, size)
    height, width = pixels.shape[:2]
    side = min(height, width)
    y0, x0 = (height - side) // 2, (width - side) // 2
    square = pixels[y0:y0 + side, x0:x0 + side]
    if side != size:  # area averaging to shrink (no aliasing), bicubic to enlarge
        square = cv2.resize(square, (size, size), interpolation=cv2.INTER_AREA if side > size else cv2.INTER_CUBIC)
    return np.ascontiguousarray(square), centre_alignment(height, width, size)


def prepare_input(request: InvertRequest, resolution: int) -> Prepared:
    """Cut the request's photo (and hole) to the model's square; see :class:`Prepared`."""
    photo = to_uint8(request.photo)
    R, notes = resolution, []
    truth, alignment = cut(photo, request.landmarks, R)
    side = float(np.hypot(*(alignment.quad[3] - alignment.quad[0])))
    height, width = photo.shape[:2]
    if request.landmarks is None and height != width:
        notes.append(f"the centre {min(height, width)} px square of the {width} × {height} image")
    if request.task == "superres":
        check(request.factor >= 2 and R % request.factor == 0,
              f"the factor must divide the model's {R} px. Got: ×{request.factor}")
        if side < R:  # a small photo is the low-resolution observation itself
            low, _ = cut(photo, request.landmarks, R // request.factor)
            notes.append(f"taken as the {R // request.factor} px low-resolution input")
            return Prepared(low, None, None, alignment, request.landmarks is not None, notes)
        notes.append(f"shrunk ×{request.factor} to {R // request.factor} px to simulate the low-resolution input")
        return Prepared(truth, truth, None, alignment, request.landmarks is not None, notes)
    if round(side) != R:
        notes.append(f"resized {side:.0f} px to the model's {R} px")
    known = None
    if request.task == "inpaint":
        check(request.hole is not None and request.hole.shape == photo.shape[:2] and bool(request.hole.any()),
              f"paint the region to fill on the image first. Got: "
              f"{'no mask' if request.hole is None else 'an empty mask'}")
        hole = np.repeat(request.hole.astype(np.float32)[..., None], 3, axis=2)
        fraction = cut(hole, request.landmarks, R)[0][..., 0]  # the share of each model pixel painted
        known = (fraction < 0.5).astype(np.float32)
        check(not known.all(), "the painted region lies outside the square the model sees. Got: no pixel to fill")
        check(known.any(), "the painted region covers the whole square; nothing is left to fit. Got: 100 % painted")
    return Prepared(truth, truth, known, alignment, request.landmarks is not None, notes)


def build_operator(task: str, factor: int, resolution: int, known: np.ndarray | None = None) -> Operator:
    """The forward operator of ``task`` (``engine.ops.degrade``); ``known`` ``(R, R)``, 1 = kept, for inpainting."""
    import torch

    from engine.ops import degrade

    if task == "inpaint":
        check(known is not None, "inpainting needs a mask. Got: none")
        return degrade.masked(torch.from_numpy(np.ascontiguousarray(known, np.float32)))
    if task == "colorize":
        return degrade.greyscale(resolution)
    if task == "superres":
        return degrade.downsampling(resolution, factor)
    check(task == "invert", f"unknown task. Got: {task!r}")
    return degrade.identity(resolution)


class PreviewFrame:
    """Pastes a ``(R, R, 3)`` reconstruction back into (a scaled copy of) the photo it was cut from."""

    def __init__(self, photo: np.ndarray, alignment: Alignment, resolution: int):
        height, width = photo.shape[:2]
        side = float(np.hypot(*(alignment.quad[3] - alignment.quad[0])))
        self.passthrough = (height, width) == (resolution, resolution) and abs(side - resolution) < 1e-6 \
            and np.allclose(alignment.quad[0], -0.5)
        # At least the model's pixels inside the square, at most a canvas-sized picture.
        scale = min(max(resolution / side, min(1.0, PREVIEW_MAX_SIDE / max(height, width))),
                    4 * PREVIEW_MAX_SIDE / max(height, width))
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        if size == (width, height):
            self.frame = photo
        else:
            self.frame = cv2.resize(photo, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)
        ratio = np.array([size[0] / width, size[1] / height])
        quad = (alignment.quad + 0.5) * ratio - 0.5
        self.alignment = Alignment(quad, quad_matrix(quad, resolution), resolution, (size[1], size[0]))

    def compose(self, reconstruction: np.ndarray) -> np.ndarray:
        if self.passthrough:
            return reconstruction
        return unalign(self.frame, reconstruction, self.alignment, feather=0.0)


# ----------------------------------------------------------------------------- progress


@dataclass(frozen=True)
class StepPoint:
    """One search step as the engine reports it: the distance (``loss``) and the fit in dB."""

    phase: str
    step: int
    total: int
    loss: float
    psnr: float


_STEP = re.compile(r"^(?P<phase>[^:]+): step (?P<step>\d+)/(?P<total>\d+), loss (?P<loss>\S+), fit (?P<fit>\S+) dB$")


def parse_step(message: str) -> StepPoint | None:
    """The figures in an ``invert`` progress message (``"searching W+: step 3/500, loss 0.41, fit 14.2 dB"``)."""
    found = _STEP.match(message)
    if found is None:
        return None
    return StepPoint(found["phase"], int(found["step"]), int(found["total"]), float(found["loss"]), float(found["fit"]))


# ----------------------------------------------------------------------------- the job


@dataclass(frozen=True)
class InvertDone:
    """A finished run: the engine's ``result``, its ``latent`` document and the ``image`` that lands
    (the latent's render for plain inversion, the observation-consistent answer otherwise);
    ``observed``: the input as the search saw it, ``(R, R, 3)``; ``D``: the discriminator used, if any."""

    request: InvertRequest
    prepared: Prepared
    result: InversionResult
    latent: Latent
    image: np.ndarray
    observed: np.ndarray
    D: Any


def tuned_values(G: nn.Module, delta: dict[str, Any]) -> dict[str, Any]:
    """PTI's weight differences as the tuned values a document stores (CPU tensors)."""
    params = dict(G.named_parameters())
    return {name: (params[name].detach().cpu() + d.cpu()).contiguous() for name, d in delta.items()}


def _discriminator(source: Any, device: Any) -> Any:
    """``source``: a loaded D, None (the file has none), or the checkpoint path to read it from."""
    if not isinstance(source, Path):
        return source
    from engine.models.checkpoint import load_discriminator

    try:
        return load_discriminator(source, device=device)
    except GanvasError:
        return None  # a generator-only file: the distance does without D's features


def invert_job(G: nn.Module, D: Any, info: ModelInfo, request: InvertRequest,
               progress: Any = None, cancel: Any = None) -> InvertDone:
    """Run ``engine.ops.invert.invert`` for ``request`` on the worker (previews pasted into the photo)."""
    from engine.convert import image_to_tensor, tensor_to_image
    from engine.document import Document as Latent
    from engine.document import ModelRef
    from engine.jobs import Job
    from engine.ops import degrade
    from engine.ops.invert import invert

    Job(1, None, cancel).check()
    R = int(G.img_resolution)
    device = next(G.parameters()).device
    prepared = prepare_input(request, R)
    op = build_operator(request.task, request.factor, R, prepared.known)
    D = _discriminator(D, device)
    frame = PreviewFrame(to_uint8(request.photo), prepared.alignment, R)

    def relay(step: int, total: int, message: str, preview: Any = None) -> None:
        if progress is not None:
            progress(step, total, message, None if preview is None else frame.compose(preview))

    config = request.plan(R)
    result = invert(G, prepared.target, op, config, truth=prepared.truth, D=D, progress=relay, cancel=cancel)
    figures = {"mode": request.mode, "task": request.task, "factor": request.factor, "psnr": result.psnr,
               "ssim": result.ssim, "lpips": result.lpips, "distance": result.distance, "steps": result.steps,
               "seconds": round(result.seconds, 2), "aligned": prepared.aligned,
               "samples": 1 if result.candidates is None else len(result.candidates),
               "quad": prepared.alignment.quad.tolist(), "photo_shape": list(prepared.alignment.photo_shape)}
    tuned = tuned_values(G, result.weights_delta) if result.weights_delta else {}
    latent = Latent(result.ws.detach().cpu().clone(), ModelRef(info.model_id, str(info.path), info.sha256),
                    source=np.asarray(request.photo), tuned_weights=tuned, meta={"invert": figures})
    # Plain inversion lands the latent's own render, bit for bit what the Edit panel's Reset draws.
    image = latent.render(G) if op.kind == "identity" else result.image
    observation = degrade.observe(op, image_to_tensor(prepared.target, device), R)
    observed = tensor_to_image(degrade.to_image_space(observation, op, R))
    return InvertDone(request, prepared, result, latent, image, observed, D)


def can_paste_back(latent: Latent | None, image: np.ndarray | None) -> bool:
    """Whether ``image`` (the document's) is an inversion's square that came from a larger or aligned photo."""
    if latent is None or image is None or latent.source is None:
        return False
    found = latent.meta.get("invert") or {}
    if "quad" not in found or found.get("task") == "superres" or image.shape[0] != image.shape[1]:
        return False
    return bool(found.get("aligned")) or tuple(latent.source.shape[:2]) != tuple(image.shape[:2])


def paste_back_job(photo: np.ndarray, square: np.ndarray, quad: list, feather: float = 0.1,
                   progress: Any = None, cancel: Any = None) -> np.ndarray:
    """``square`` ``(n, n, 3)`` uint8 warped back into a copy of ``photo`` (un-aligned), seam feathered."""
    from engine.jobs import Job

    Job(1, progress, cancel).check()
    quad_array = np.asarray(quad, np.float64)
    n = square.shape[0]
    alignment = Alignment(quad_array, quad_matrix(quad_array, n), n, tuple(photo.shape[:2]))
    if photo.dtype == np.uint16:
        square = square.astype(np.uint16) * 257  # 255 -> 65535
    return unalign(photo, square, alignment, feather)


# ----------------------------------------------------------------------------- landmarks


PREDICTOR_FILES = ("shape_predictor_68_face_landmarks.dat", "shape_predictor_5_face_landmarks.dat")


def predictor_dirs() -> list[Path]:
    """Where a dlib shape predictor may be: the model folders, Debian's libdlib-data, face-recognition-models."""
    from engine.models.catalog import search_dirs

    dirs = [*search_dirs(), Path("/usr/share/dlib")]
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is not None and spec.origin:
        dirs.append(Path(spec.origin).parent / "models")
    return dirs


def find_predictor() -> Path | None:
    for name in PREDICTOR_FILES:
        for folder in predictor_dirs():
            if (folder / name).is_file():
                return folder / name
    return None


def detector_available() -> bool:
    return importlib.util.find_spec("dlib") is not None and find_predictor() is not None


def landmarks_from_points(points: np.ndarray) -> Landmarks:
    """Eye centres and mouth corners from dlib's 68 (iBUG) or 5 points ``(N, 2)``, ordered left to right on screen.

    The 5-point model has eye corners and the nose base but no mouth: its corners are placed where
    the iBUG mean face has them, 1.5 eye-to-nose lengths below the eyes and 0.7 eye distances apart.
    """
    pts = np.asarray(points, np.float64)
    if pts.shape == (68, 2):
        eyes = [pts[36:42].mean(0), pts[42:48].mean(0)]
        mouth = [pts[48], pts[54]]
    else:
        check(pts.shape == (5, 2), f"expected 68 or 5 landmark points. Got: {pts.shape}")
        eyes = [pts[0:2].mean(0), pts[2:4].mean(0)]
        eyes.sort(key=lambda p: p[0])
        eye_avg, across = (eyes[0] + eyes[1]) / 2, eyes[1] - eyes[0]
        centre = eye_avg + 1.5 * (pts[4] - eye_avg)
        mouth = [centre - 0.35 * across, centre + 0.35 * across]
    eyes.sort(key=lambda p: p[0])
    mouth.sort(key=lambda p: p[0])
    return Landmarks(tuple(eyes[0]), tuple(eyes[1]), tuple(mouth[0]), tuple(mouth[1]))


def detect_landmarks(photo: np.ndarray, progress: Any = None, cancel: Any = None) -> Landmarks | None:
    """The largest face's landmarks with dlib (a worker job); None when no face is found."""
    import dlib

    from engine.jobs import Job

    path = find_predictor()
    check(path is not None, f"no dlib shape predictor in {[str(d) for d in predictor_dirs()]}. Got: none")
    Job(1, progress, cancel).check()
    pixels = np.ascontiguousarray(to_uint8(photo))
    faces = dlib.get_frontal_face_detector()(pixels, 1)
    if len(faces) == 0:
        return None
    face = max(faces, key=lambda r: r.width() * r.height())
    shape = dlib.shape_predictor(str(path))(pixels, face)
    return landmarks_from_points(np.array([[p.x, p.y] for p in shape.parts()], np.float64))


# ----------------------------------------------------------------------------- figures


def figures_lines(done: InvertDone) -> list[tuple[str, str]]:
    """``(label, value)`` rows of a run's quality figures, as the panel shows them.

    With the full image known (every task but super-resolving a photo smaller than the model)
    the figures compare the answer with it; otherwise only the fit to the low-resolution input
    (the render's, before back-projection makes it exact) says anything.
    """
    r = done.result
    if done.prepared.truth is None:
        rows = [("Fit", f"{r.psnr_observed:.2f} dB to the low-res input")]
    else:
        rows = [("PSNR", f"{r.psnr:.2f} dB"), ("SSIM", f"{r.ssim:.3f}"),
                ("LPIPS", f"{r.lpips:.3f}" if r.lpips is not None else "— (no weights on disk)")]
    if r.pivot_psnr is not None:
        rows.append(("Pivot", f"{r.pivot_psnr:.2f} dB before tuning"))
    if r.psnr_unseen is not None:
        rows.append(("In the hole", f"{r.psnr_unseen:.2f} dB"))  # against what was painted over
    if r.candidates is not None:
        rows.append(("Samples", f"mean of {len(r.candidates)} answers"))
    rows += [("Distance", r.distance), ("Time", f"{r.seconds:.1f} s · {r.steps} steps")]
    return rows


__all__ = ["TASKS", "MODE_LABELS", "TaskChoice", "InvertRequest", "Prepared", "InvertDone", "StepPoint",
           "prepare_input", "build_operator", "cut", "centre_alignment", "PreviewFrame", "parse_step",
           "invert_job", "tuned_values", "can_paste_back", "paste_back_job", "landmarks_from_points",
           "detect_landmarks", "detector_available", "find_predictor", "figures_lines"]
