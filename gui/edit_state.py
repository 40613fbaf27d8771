"""What the Edit panel holds and the jobs it runs; no widgets.

The panel's controls are described by one value, :class:`EditSettings` (direction strengths
and layer ranges, the conditional toggle, style mixing, interpolation). :func:`build_latent`
turns settings into the edit stack of a latent document (``engine.document.Document``):
style mixing first, then interpolation, then the direction edits, so the directions act on
the mixed latent. The settings ride along in the document's ``meta["edit"]``, so undo and a
reopened file put the sliders back; the stack itself is what renders, so a reopened file
renders bit for bit what was saved.

Directions (the model's shipped ones, GANSpace, SeFa; ``engine.ops.edit``) are computed once
per model by :func:`compute_directions`. The functions named ``*_job`` and
:func:`compute_directions` run on the worker thread; torch is imported inside them, so the
window opens without waiting for it.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.errors import GanvasError, check
from engine.jobs import Job

if TYPE_CHECKING:
    import torch
    from torch import nn

    from engine.document import Document as Latent
    from engine.ops.edit import Direction
    from gui.model_state import ModelInfo

log = logging.getLogger(__name__)

LayerRange = tuple[int, int]
COMPONENTS = 10  # GANSpace and SeFa directions listed per model
MIX_GROUPS = ("coarse", "middle", "fine", "custom")
DEFAULT_PSI = 0.7  # for a second latent when the base latent was not drawn from a seed


@dataclass(frozen=True)
class EditSettings:
    """The Edit panel's controls. Strengths are in standard deviations of sampled w."""

    strengths: dict[str, float] = field(default_factory=dict)  # spec -> strength; zeros left out
    layers: dict[str, LayerRange] = field(default_factory=dict)  # spec -> slots; the direction's default left out
    keep_others: bool = False  # named directions projected off the other named ones
    mix_seed: int | None = None  # None: no style mixing
    mix_group: str = "coarse"
    mix_layers: LayerRange = (0, 1)  # the slots of the "custom" group
    interp_seed: int | None = None  # None: no interpolation
    interp_t: float = 0.5
    slerp: bool = False

    def with_strength(self, spec: str, strength: float) -> EditSettings:
        strengths = {k: v for k, v in self.strengths.items() if k != spec}
        if strength != 0:
            strengths[spec] = float(strength)
        return dataclasses.replace(self, strengths=strengths)

    def with_layers(self, spec: str, layers: LayerRange | None) -> EditSettings:
        """``None`` restores the direction's default slots."""
        ranges = {k: v for k, v in self.layers.items() if k != spec}
        if layers is not None:
            ranges[spec] = (int(layers[0]), int(layers[1]))
        return dataclasses.replace(self, layers=ranges)

    def mix_range(self, num_ws: int) -> LayerRange:
        from engine.ops.edit import layer_groups

        return self.mix_layers if self.mix_group == "custom" else layer_groups(num_ws)[self.mix_group]

    def to_json(self) -> dict[str, Any]:
        return {"strengths": self.strengths, "layers": {k: list(v) for k, v in self.layers.items()},
                "keep_others": self.keep_others,
                "mix": None if self.mix_seed is None else {"seed": self.mix_seed, "group": self.mix_group,
                                                           "layers": list(self.mix_layers)},
                "interpolate": None if self.interp_seed is None else {"seed": self.interp_seed, "t": self.interp_t,
                                                                      "slerp": self.slerp}}

    @classmethod
    def from_json(cls, data: Any) -> EditSettings:
        """Settings from :meth:`to_json`; anything unreadable gives the defaults (the stack still renders)."""
        if not data:
            return cls()
        try:
            mix, interp = data.get("mix") or {}, data.get("interpolate") or {}
            group = str(mix.get("group", "coarse"))
            return cls({str(k): float(v) for k, v in data.get("strengths", {}).items()},
                       {str(k): (int(v[0]), int(v[1])) for k, v in data.get("layers", {}).items()},
                       bool(data.get("keep_others", False)),
                       int(mix["seed"]) if mix else None, group if group in MIX_GROUPS else "coarse",
                       tuple(int(v) for v in mix.get("layers", (0, 1)))[:2],
                       int(interp["seed"]) if interp else None, float(interp.get("t", 0.5)),
                       bool(interp.get("slerp", False)))
        except (AttributeError, KeyError, TypeError, ValueError, IndexError) as exc:
            log.warning("unreadable edit settings, using the defaults: %s", exc)
            return cls()

    @classmethod
    def of(cls, latent: Latent | None) -> EditSettings:
        return cls.from_json(latent.meta.get("edit")) if latent is not None else cls()


def latent_fits(latent: Latent, info: ModelInfo | None) -> bool:
    """Whether the loaded model (``info``) is the one ``latent`` was made with (same shape, and
    the same weights file where both hashes are known)."""
    if info is None or tuple(latent.base_ws.shape[1:]) != (info.num_ws, info.w_dim):
        return False
    ref = latent.model
    return ref is None or not ref.sha256 or not info.sha256 or ref.sha256 == info.sha256


def describe_latent(latent: Latent) -> str:
    """``"Seed 4 · 2 edits"``: where the latent came from and how many edits it carries."""
    drawn, count = latent.meta.get("sample") or {}, len(latent.edits)
    origin = f"Seed {drawn['seed']}" if "seed" in drawn else "Latent"
    return f"{origin} · {count} edit{'s' if count != 1 else ''}"


# ----------------------------------------------------------------------------- directions


@dataclass(frozen=True)
class DirectionSet:
    """One model's directions, in display order: shipped (named) ones, GANSpace, SeFa."""

    directions: dict[str, Direction]  # spec -> direction, vectors on the CPU
    conditioned: dict[str, Direction]  # named spec -> projected off the other named ones
    named: tuple[str, ...] = ()
    problem: str = ""  # why some directions are missing, for the status line

    def get(self, spec: str, keep_others: bool = False) -> Direction | None:
        if keep_others and spec in self.conditioned:
            return self.conditioned[spec]
        return self.directions.get(spec)

    def groups(self) -> list[tuple[str, list[str]]]:
        """``(section title, specs)`` in display order, empty sections left out."""
        out = [("Named", list(self.named))]
        for method, title in (("ganspace", "GANSpace"), ("sefa", "SeFa")):
            out.append((title, [s for s in self.directions if s.startswith(method + ":")]))
        return [(title, specs) for title, specs in out if specs]


def direction_title(spec: str) -> str:
    """``"ganspace:3"`` -> ``"GANSpace 3"``, ``"sefa:0"`` -> ``"SeFa 0"``, a name -> itself, readable."""
    method, _, index = spec.partition(":")
    names = {"ganspace": "GANSpace", "sefa": "SeFa"}
    if method in names and index.isdigit():
        return f"{names[method]} {index}"
    return spec.replace("_", " ").capitalize()


def compute_directions(G: nn.Module, weights: Path | None, count: int = COMPONENTS,
                       progress: Any = None, cancel: Any = None) -> DirectionSet:
    """The shipped directions beside ``weights`` (if any), then ``count`` GANSpace and SeFa components.

    A damaged directions file or a network SeFa cannot read leaves those out and says why in
    ``problem``, rather than failing: the other directions still work.
    """
    from engine.ops.edit import DirectionLibrary, directions_path, load_directions

    job = Job(3, progress, cancel)
    problems, named = [], {}
    path = directions_path(weights) if weights is not None else None
    if path is not None and path.is_file():
        try:
            named = load_directions(path)
        except GanvasError as exc:
            problems.append(str(exc))
    fits = {n: d for n, d in named.items() if d.vector.shape in ((G.w_dim,), (G.num_ws, G.w_dim))}
    if len(fits) < len(named):
        problems.append(f"{path}: {len(named) - len(fits)} directions do not fit this generator")
    library = DirectionLibrary(G, fits)
    job.step(0, "Sampling w for GANSpace")
    found = {n: library.get(n) for n in fits}
    found.update({f"ganspace:{k}": library.get(f"ganspace:{k}") for k in range(min(count, G.w_dim))})
    job.step(1, "SeFa")
    try:
        found.update({f"sefa:{k}": library.get(f"sefa:{k}") for k in range(min(count, G.w_dim))})
    except GanvasError as exc:
        problems.append(f"no SeFa directions: {exc}")
    job.step(2, "Conditional directions")
    conditioned = {}
    for name in fits if len(fits) > 1 else ():
        try:
            conditioned[name] = library.conditioned(name, [n for n in fits if n != name])
        except GanvasError as exc:  # it lies in the span of the others: keep it as it is
            log.warning("no conditional version of %s: %s", name, exc)
    job.step(3, "Ready")
    on_cpu = {k: dataclasses.replace(d, vector=d.vector.detach().float().cpu()) for k, d in found.items()}
    conditioned = {k: dataclasses.replace(d, vector=d.vector.detach().float().cpu()) for k, d in conditioned.items()}
    return DirectionSet(on_cpu, conditioned, tuple(fits), "; ".join(problems))


# ----------------------------------------------------------------------------- the edit stack


def seed_ws(G: nn.Module, seed: int, psi: float = DEFAULT_PSI, class_index: int | None = None) -> torch.Tensor:
    """The latent ``(1, num_ws, w_dim)`` (CPU) that ``engine.ops.generate.sample`` draws for ``seed``,
    without synthesising its image."""
    import torch

    from engine.ops.generate import class_vector, seed_to_z

    device = next(G.parameters()).device
    with torch.no_grad():
        z, c = seed_to_z(seed, G.z_dim).to(device), class_vector(class_index, G.c_dim).to(device)
        return G.mapping(z, c, truncation_psi=psi).float().cpu()


def _other_latents(G: nn.Module, base: Latent, settings: EditSettings) -> dict[int, torch.Tensor]:
    """The second latents the settings name, by seed: reused from ``base``'s stack, else mapped."""
    from engine.ops.edit import InterpolateEdit, MixEdit

    stored = {e.name: e.other_ws for e in base.edits if isinstance(e, (MixEdit, InterpolateEdit))}
    drawn = base.meta.get("sample") or {}
    out = {}
    for seed in {settings.mix_seed, settings.interp_seed} - {None}:
        known = stored.get(f"seed {seed}")
        out[seed] = known if known is not None else seed_ws(G, seed, drawn.get("psi", DEFAULT_PSI),
                                                            drawn.get("class_index"))
    return out


def build_latent(base: Latent, settings: EditSettings, directions: DirectionSet | None,
                 others: dict[int, torch.Tensor]) -> Latent:
    """``base`` with the edit stack ``settings`` describe (mix, interpolation, directions) and
    the settings in ``meta["edit"]``. ``others``: second latents ``(1, num_ws, w_dim)`` by seed.

    A direction the set lacks (a document made with directions since removed) keeps the
    vector stored in ``base``'s stack.
    """
    from engine.ops.edit import DirectionEdit, DragEdit, InterpolateEdit, MixEdit

    num_ws = base.base_ws.shape[1]
    edits: list = []
    if settings.mix_seed is not None:
        edits.append(MixEdit(others[settings.mix_seed], settings.mix_range(num_ws), f"seed {settings.mix_seed}"))
    if settings.interp_seed is not None:
        edits.append(InterpolateEdit(others[settings.interp_seed], settings.interp_t, None, settings.slerp,
                                     f"seed {settings.interp_seed}"))
    stored = {e.name: e for e in base.edits if isinstance(e, DirectionEdit)}
    order = list(directions.directions) if directions is not None else []
    for spec in sorted(settings.strengths, key=lambda s: order.index(s) if s in order else len(order)):
        strength, layers = settings.strengths[spec], settings.layers.get(spec)
        direction = directions.get(spec, settings.keep_others) if directions is not None else None
        if direction is not None:
            edits.append(dataclasses.replace(direction.edit(strength, layers), name=spec))
        elif spec in stored:
            edits.append(dataclasses.replace(stored[spec], strength=strength, layers=layers or stored[spec].layers))
        else:
            raise GanvasError(f"the direction {spec!r} is not available for this model. Got: {sorted(order)[:6]}")
    edits += [e for e in base.edits if isinstance(e, DragEdit)]  # drags (gui/drag_tool.py) stay on top, in order
    latent = dataclasses.replace(base, edits=edits, meta={**base.meta, "edit": settings.to_json()})
    # replace() leaves out the generator copy holding tuned weights (an init=False field); without
    # it the next render would copy the whole generator again, on every slider move.
    latent._tuned_G = base._tuned_G
    return latent


@dataclass(frozen=True)
class EditRendered:
    settings: EditSettings
    latent: Latent
    image: Any  # (H, W, 3) uint8
    seconds: float


def render_edits_job(G: nn.Module, base: Latent, settings: EditSettings, directions: DirectionSet | None,
                     progress: Any = None, cancel: Any = None) -> EditRendered:
    """Build the latent the settings describe and synthesise it: no search, one forward pass."""
    Job(1, progress, cancel).check()
    start = time.perf_counter()
    latent = build_latent(base, settings, directions, _other_latents(G, base, settings))
    image = latent.render(G)
    return EditRendered(settings, latent, image, time.perf_counter() - start)


# ----------------------------------------------------------------------------- animation


@dataclass(frozen=True)
class AnimationRequest:
    """A sweep of direction ``spec`` from ``-amplitude`` to ``+amplitude``, or (``spec`` None)
    of the interpolation's ``t`` from 0 to 1, written to ``path`` (``.gif`` or ``.mp4``)."""

    path: Path
    spec: str | None
    frames: int = 48
    fps: float = 24.0
    amplitude: float = 3.0


def animation_latents(latent: Latent, request: AnimationRequest, directions: DirectionSet | None) -> torch.Tensor:
    """The frames' latents ``(frames, num_ws, w_dim)``; the rest of the stack stays as it is."""
    import numpy as np
    import torch

    from engine.ops.edit import DirectionEdit, InterpolateEdit, apply_edits, sweep_latents

    check(request.frames >= 2, f"an animation needs at least 2 frames. Got: {request.frames}")
    edits = list(latent.edits)
    if request.spec is None:
        index = next((i for i, e in enumerate(edits) if isinstance(e, InterpolateEdit)), None)
        check(index is not None, "turn the interpolation on to animate it. Got: no interpolation")
        frames = [edits[:index] + [dataclasses.replace(edits[index], t=float(t))] + edits[index + 1:]
                  for t in np.linspace(0.0, 1.0, request.frames)]
        return torch.cat([apply_edits(latent.base_ws, stack) for stack in frames])
    index = next((i for i, e in enumerate(edits) if isinstance(e, DirectionEdit) and e.name == request.spec), None)
    if index is None:  # the direction is at 0 now: add it to sweep it
        settings = EditSettings.of(latent)
        direction = directions.get(request.spec, settings.keep_others) if directions is not None else None
        check(direction is not None, f"no direction {request.spec!r} for this model. Got: none")
        edits.append(dataclasses.replace(direction.edit(0.0, settings.layers.get(request.spec)), name=request.spec))
        index = len(edits) - 1
    strengths = np.linspace(-request.amplitude, request.amplitude, request.frames)
    return sweep_latents(latent.base_ws, edits, index, strengths.tolist())


def export_animation_job(G: nn.Module, latent: Latent, request: AnimationRequest, directions: DirectionSet | None,
                         progress: Any = None, cancel: Any = None) -> Path:
    """Render the animation's frames and write them (a cancel or a failure leaves no file)."""
    from engine.ops.edit import export_animation

    latents = animation_latents(latent, request, directions)
    return export_animation(request.path, latent.generator(G), latents, request.fps, progress, cancel)
