"""The loaded generator, held in one observable place.

Panels that need the model (generate, later edit and invert) observe a single
:class:`ModelState` rather than each keeping a reference: ``modelChanged`` fires when a
new generator is in place. Loading runs as a job on the window's :class:`~gui.jobs.JobRunner`,
whose worker thread alone runs torch; the GUI thread only holds the module and its
:class:`ModelInfo`, read once on the worker. A load that fails leaves the previous model in
place; the runner reports the failure like any other job's.

Torch is imported inside the job functions, so opening the window does not wait for it.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, Signal

from engine.errors import check
from engine.jobs import Job
from gui.jobs import JobRunner

if TYPE_CHECKING:
    import torch
    from torch import nn

log = logging.getLogger(__name__)

# The files a user may open or drop as a model; the content, not the name, picks the reader.
CHECKPOINT_SUFFIXES = (".pkl", ".pt", ".pth", ".safetensors")
CHECKPOINT_FILTER = "Checkpoints ({});;All files (*)".format(" ".join(f"*{s}" for s in CHECKPOINT_SUFFIXES))
FAMILY_NAMES = {"stylegan2": "StyleGAN2", "stylegan3": "StyleGAN3", "rosinality": "StyleGAN2 (rosinality)"}


@dataclass(frozen=True)
class ModelInfo:
    """What the GUI shows about a generator; plain values, safe to read on any thread."""

    path: Path
    family: str  # "stylegan2", "stylegan3" or "rosinality"
    resolution: int
    channels: int
    z_dim: int
    c_dim: int  # 0: unconditional
    w_dim: int
    num_ws: int
    parameters: int
    device: str
    sha256: str = ""  # of the weights file, read at load: a saved document names the exact weights
    model_id: str | None = None  # the catalogue id it was loaded by, if any

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def family_name(self) -> str:
        return FAMILY_NAMES.get(self.family, self.family)

    @property
    def conditional(self) -> bool:
        return self.c_dim > 0


@dataclass(frozen=True)
class LoadedModel:
    generator: nn.Module
    info: ModelInfo


def describe_generator(G: nn.Module, path: Path) -> ModelInfo:
    """Read the facts the panels show from a loaded generator (runs on the worker)."""
    parameters = sum(p.numel() for p in G.parameters())
    device = next(G.parameters()).device
    return ModelInfo(path=path, family=str(getattr(G, "family", "unknown")), resolution=int(G.img_resolution),
                     channels=int(G.img_channels), z_dim=int(G.z_dim), c_dim=int(G.c_dim), w_dim=int(G.w_dim),
                     num_ws=int(G.num_ws), parameters=int(parameters), device=str(device))


def same_device(a: object, b: object) -> bool:
    """``"cuda"`` and ``"cuda:0"`` name the same device (torch reports the index once it is used)."""
    a, b = str(a), str(b)
    return a == b or f"{a}:0" == b or a == f"{b}:0"


def load_model(source: str | Path, device: torch.device | str | None = None,
               progress: Any = None, cancel: Any = None) -> LoadedModel:
    """Resolve a catalogue id or path, load its generator onto ``device`` (CPU if None).

    Raises:
        ModelNotFound: ``source`` is neither a file nor a catalogue id.
        CheckpointError: the file is not a loadable generator.
    """
    from engine.document import file_sha256
    from engine.models.catalog import resolve
    from engine.models.checkpoint import load_generator

    job = Job(3, progress, cancel)
    path = resolve(source)
    # load_generator reads and builds in one call, so those two share a step.
    job.step(0, f"Reading {path.name} and building the network")
    G = load_generator(path)
    sha256 = file_sha256(path)  # the file was just read: it is in the page cache
    model_id = None if Path(str(source)).expanduser().is_file() else str(source)
    target = device if device is not None else "cpu"
    job.step(1, f"Moving the network to {target}")
    G = G.to(target)
    info = dataclasses.replace(describe_generator(G, path.resolve()), sha256=sha256, model_id=model_id)
    job.step(3, "Ready")
    return LoadedModel(G, info)


def move_model(G: nn.Module, info: ModelInfo, device: torch.device | str,
               progress: Any = None, cancel: Any = None) -> LoadedModel:
    """Move a loaded generator to ``device``; returns it with fresh info."""
    Job(1, progress, cancel).check()
    G = G.to(device)
    fresh = describe_generator(G, info.path)
    return LoadedModel(G, dataclasses.replace(fresh, sha256=info.sha256, model_id=info.model_id))


class ModelState(QObject):
    """The generator the panels work with.

    Signals: ``modelChanged(ModelInfo | None)`` when a generator is in place (also after it
    moved device), ``loadingChanged(bool)``, ``loaded(Path)`` after a load by :meth:`load`.
    """

    modelChanged = Signal(object)
    loadingChanged = Signal(bool)
    loaded = Signal(object)

    def __init__(self, runner: JobRunner, parent: QObject | None = None):
        super().__init__(parent)
        self.runner = runner
        self._generator: nn.Module | None = None
        self._info: ModelInfo | None = None
        self._device: torch.device | None = None
        self._loads: set[int] = set()
        runner.jobFinished.connect(self._job_finished)

    @property
    def generator(self) -> nn.Module | None:
        """The module; hand it to runner jobs, never call it on the GUI thread."""
        return self._generator

    @property
    def info(self) -> ModelInfo | None:
        return self._info

    @property
    def path(self) -> Path | None:
        return self._info.path if self._info is not None else None

    @property
    def loading(self) -> bool:
        return bool(self._loads)

    def load(self, source: str | Path) -> int:
        """Load a catalogue id or checkpoint path on the worker; returns the job id."""
        check(bool(str(source).strip()), f"choose a model id or a checkpoint file. Got: {source!r}")
        name = Path(str(source)).name
        job_id = self.runner.submit(load_model, source, self._device, title=f"Load model {name}",
                                    on_result=self._loaded)
        self._loads.add(job_id)
        if len(self._loads) == 1:
            self.loadingChanged.emit(True)
        return job_id

    def set_device(self, device: torch.device | str) -> int | None:
        """Run models on ``device`` from now on; moves a loaded generator there (a job)."""
        self._device = device
        if self._generator is None or self._info is None or same_device(self._info.device, device):
            return None
        return self.runner.submit(move_model, self._generator, self._info, device,
                                  title=f"Move model to {device}", on_result=self._set)

    @property
    def device(self) -> torch.device | str | None:
        """Where models run (None until the start-up job chose; loads then go to the CPU)."""
        return self._device

    def adopt(self, model: LoadedModel) -> None:
        """Put a generator that another job loaded in place (opening a document loads its model)."""
        self._loaded(model)

    def _loaded(self, model: LoadedModel) -> None:
        if self._device is not None and not same_device(model.info.device, self._device):
            # The device was chosen while this load was queued: follow it.
            self.runner.submit(move_model, model.generator, model.info, self._device,
                               title=f"Move model to {self._device}", on_result=self._set)
        self._set(model)
        self.loaded.emit(model.info.path)

    def _set(self, model: LoadedModel) -> None:
        self._generator, self._info = model.generator, model.info
        log.info("model %s (%s, %d px) on %s", model.info.name, model.info.family, model.info.resolution,
                 model.info.device)
        self.modelChanged.emit(model.info)

    def _job_finished(self, job_id: int) -> None:
        if job_id in self._loads:
            self._loads.discard(job_id)
            if not self._loads:
                self.loadingChanged.emit(False)
