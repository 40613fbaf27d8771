"""What a training run is, and the machinery the house trainers share.

A training run lives in one output folder (``--out``) and trains until its budget is spent:
minutes of training time, steps, or (GAN) thousands of images, whichever target is reached
first. Along the way it keeps ``checkpoint.pt`` there: the configuration, the state (step
count, training seconds summed over resumes), the networks' and optimisers' state dicts and
the random generators' states. Running the same command again resumes from it exactly where
it stopped (``--fresh`` starts over); the checkpoint's configuration wins, except the fields
the trainer lets the command line override (the budget, the bookkeeping, the paths).

The checkpoint is written every ``checkpoint_minutes`` of wall-clock time, at the end, and on
the way out of an error, a cancel, Ctrl-C or a plain ``kill`` (SIGTERM), so an interrupted run
loses at most the step in flight. Each write goes to a temporary file renamed over the old
one, so a crash while writing leaves the previous checkpoint intact.

``train_gan``, ``train_sr`` and ``train_edges`` keep their data, networks, training step and
export; this module holds the rest: checkpoint files, resuming, the budget, the step loop
with its progress lines, and the command line. A configuration is a trainer's dataclass; the
fields used here are ``out``, ``minutes``, ``steps``, ``checkpoint_minutes``, ``log_every`` and
``export`` (and ``kimg`` and ``batch``, counted by the state's ``nimg``, where present).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import logging
import os
import signal
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, get_args, get_type_hints

import torch
from torch import nn

from engine.errors import CheckpointError, GanvasError, check
from engine.jobs import Job

log = logging.getLogger(__name__)

CHECKPOINT_NAME = "checkpoint.pt"

Config = TypeVar("Config")


@dataclass
class RunState:
    """How far a run has come; a trainer's state adds its own counters."""

    step: int = 0
    seconds: float = 0.0  # training wall time, summed over resumed runs


# ----------------------------------------------------------------------------
# Files


def atomic_write(path: Path, write: Callable[[Path], object], suffix: str = "") -> None:
    """``write(tmp)`` to a temporary file beside ``path``, then rename it over ``path``.

    An error or a kill while writing leaves the previous ``path`` intact. ``suffix`` ends the
    temporary name, for writers that choose the format by extension (PIL, ``np.save``).
    """
    tmp = path.with_name(path.name + ".tmp" + suffix)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _state_dict(part: Any) -> Any:
    return {name: _state_dict(p) for name, p in part.items()} if isinstance(part, dict) else part.state_dict()


def write_checkpoint(path: Path, cfg: Any, state: RunState, generator: torch.Generator, **parts: Any) -> None:
    """Save everything a resume needs, atomically: ``cfg`` and ``state``, the random generators,
    and the state dict of each of ``parts`` (a module, an optimiser, or a dict of them)."""
    payload = {"config": dataclasses.asdict(cfg), "state": dataclasses.asdict(state),
               **{key: _state_dict(part) for key, part in parts.items()},
               "rng": {"generator": generator.get_state(), "torch": torch.get_rng_state()}}
    atomic_write(path, lambda tmp: torch.save(payload, tmp))


def read_checkpoint(path: Path, kind: str, parts: Iterable[str]) -> dict[str, Any]:
    """Read a checkpoint written by :func:`write_checkpoint` (tensors and plain data only).

    ``parts`` are the keys a ``kind`` checkpoint must hold besides the configuration, state and
    random generators.
    """
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several unrelated types for a bad file
        raise CheckpointError(f"cannot read training checkpoint {str(path)!r}. Got: {exc}") from exc
    keys = sorted(payload)[:8] if isinstance(payload, dict) else type(payload).__name__
    check(isinstance(payload, dict) and {"config", "state", "rng", *parts} <= payload.keys(),
          f"{str(path)!r} is not a {kind} training checkpoint. Got: keys {keys}", CheckpointError)
    return payload


def open_run(cfg: Config, resume: bool, load: Callable[[Path], dict[str, Any]],
             overrides: Iterable[str]) -> tuple[Config, dict[str, Any] | None]:
    """Create ``cfg.out`` and read its checkpoint when resuming from one there.

    Returns the run's configuration, the checkpoint's but for the fields in ``overrides`` (taken
    from ``cfg``), and the checkpoint, None for a fresh run. The configuration is also written to
    ``config.json``, for people to read.
    """
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / CHECKPOINT_NAME
    payload = load(path) if resume and path.is_file() else None
    if payload is not None:
        keep = frozenset(overrides)
        cfg = dataclasses.replace(cfg, **{k: v for k, v in payload["config"].items() if k not in keep})
    (out / "config.json").write_text(json.dumps(dataclasses.asdict(cfg), indent=2))
    return cfg, payload


def _load_state_dict(part: Any, saved: Any) -> None:
    if isinstance(part, dict):
        for name, p in part.items():
            _load_state_dict(p, saved[name])
    else:
        part.load_state_dict(saved)


def restore_checkpoint(payload: dict[str, Any], generator: torch.Generator, **parts: Any) -> None:
    """Load ``payload``'s state dicts into ``parts`` (named as for :func:`write_checkpoint`) and
    put the data generator and torch's global generator back where the checkpoint left them."""
    for key, part in parts.items():
        _load_state_dict(part, payload[key])
    generator.set_state(payload["rng"]["generator"])
    torch.set_rng_state(payload["rng"]["torch"])


def millions(net: nn.Module) -> float:
    """``net``'s parameter count in millions."""
    return sum(p.numel() for p in net.parameters()) / 1e6


# ----------------------------------------------------------------------------
# Budget and the step loop


def check_budget(cfg: Any) -> None:
    """Raise unless ``cfg`` sets at least one of its budget targets."""
    names = [name for name in ("minutes", "kimg", "steps") if hasattr(cfg, name)]
    check(any(getattr(cfg, name) is not None for name in names),
          f"set a training budget: {', '.join(names[:-1])} or {names[-1]}. Got: none")


def budget_used(cfg: Any, state: RunState) -> float:
    """Fraction of the budget spent: 0 at the start, 1 or more once the first target is reached."""
    used = []
    if cfg.minutes is not None:
        used.append(state.seconds / max(cfg.minutes * 60, 1e-9))
    if getattr(cfg, "kimg", None) is not None:
        used.append(state.nimg / max(cfg.kimg * 1000, 1e-9))
    if cfg.steps is not None:
        used.append(state.step / max(cfg.steps, 1))
    return max(used, default=1.0)


def eta_minutes(cfg: Any, state: RunState, sec_per_step: float) -> float:
    """Minutes until the first budget target is reached at ``sec_per_step``."""
    left = []
    if cfg.minutes is not None:
        left.append(cfg.minutes - state.seconds / 60)
    if getattr(cfg, "kimg", None) is not None:
        left.append((cfg.kimg * 1000 - state.nimg) / cfg.batch * sec_per_step / 60)
    if cfg.steps is not None:
        left.append((cfg.steps - state.step) * sec_per_step / 60)
    return max(0.0, min(left)) if left else float("nan")


class Meter:
    """Mean step statistics and seconds per step since the last progress line."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.sums: dict[str, float] = {}
        self.counts: dict[str, int] = {}
        self.last: dict[str, float] = {}
        self.start, self.steps = time.perf_counter(), 0

    def add(self, stats: dict[str, float]) -> None:
        self.steps += 1
        self.last = stats
        for key, value in stats.items():  # a statistic may come on some steps only (the GAN's "r1")
            self.sums[key] = self.sums.get(key, 0.0) + value
            self.counts[key] = self.counts.get(key, 0) + 1

    def means(self) -> dict[str, float]:
        return {key: total / self.counts[key] for key, total in self.sums.items()}

    def sec_per_step(self) -> float:
        return (time.perf_counter() - self.start) / max(self.steps, 1)


def train_steps(cfg: Any, state: RunState, job: Job, step: Callable[[float], dict[str, float]],
                progress: Callable[[Meter], str], checkpoint: Callable[[], None],
                after_step: Callable[[], None] | None = None) -> None:
    """Call ``step(used)``, ``used`` the fraction of the budget spent, until the budget is spent.

    ``step`` advances ``state.step`` and returns its statistics; only its time counts as training
    time (``state.seconds``). Every ``cfg.log_every`` steps the line ``progress(meter)`` is logged
    and reported to ``job``; ``after_step`` (if any) runs after each step. ``checkpoint`` runs every
    ``cfg.checkpoint_minutes`` of wall-clock time, at the end, and when an exception ends the loop
    (an error, a cancel, Ctrl-C, SIGTERM under :func:`sigterm_exits`) after a step, never twice for
    one step.
    """
    meter, saved_step, last_checkpoint = Meter(), -1, time.perf_counter()

    def save() -> None:
        nonlocal saved_step, last_checkpoint
        if saved_step != state.step:
            checkpoint()
        saved_step, last_checkpoint = state.step, time.perf_counter()

    try:
        while (used := budget_used(cfg, state)) < 1:
            job.check()
            t0 = time.perf_counter()
            meter.add(step(used))
            state.seconds += time.perf_counter() - t0
            if state.step % cfg.log_every == 0:
                message = progress(meter)
                meter.reset()
                log.info(message)
                job.step(min(999, int(1000 * budget_used(cfg, state))), message)  # the export is still to come
            if after_step is not None:
                after_step()
            if time.perf_counter() - last_checkpoint >= cfg.checkpoint_minutes * 60:
                save()
    except BaseException:
        if state.step > 0:
            save()  # an interrupted run resumes where it stopped
        raise
    save()


# ----------------------------------------------------------------------------
# Command line


def parse_config(config: type[Config], argv: Sequence[str] | None, description: str, smoke: dict[str, Any],
                 smoke_export: str, threads: int) -> tuple[Config, argparse.Namespace]:
    """The configuration from the command line, and the parsed arguments.

    Each scalar field of the ``config`` dataclass gets a flag (``--checkpoint-minutes``;
    ``--mirror/--no-mirror`` for a bool) that overrides it when given. Every trainer also takes
    ``--smoke`` (start from the ``smoke`` fields and export to ``smoke_export`` in ``--out``),
    ``--fresh``, ``--export-only``, ``--no-export`` and ``--threads`` (default ``threads``).
    """
    parser = argparse.ArgumentParser(description=description)
    defaults, hints = config(), get_type_hints(config)
    fields = [f for f in dataclasses.fields(defaults)
              if f.name != "smoke" and isinstance(getattr(defaults, f.name), (bool, int, float, str, type(None)))]
    for f in fields:
        flag, default = "--" + f.name.replace("_", "-"), getattr(defaults, f.name)
        if isinstance(default, bool):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=None)
        else:  # a field defaulting to None takes its type from the annotation, e.g. float for "float | None"
            kind = type(default) if default is not None else next(
                (t for t in get_args(hints[f.name]) if t is not type(None)), str)
            parser.add_argument(flag, type=kind, default=None)
    parser.add_argument("--smoke", action="store_true", help="tiny network and data, a few steps, seconds")
    parser.add_argument("--fresh", action="store_true", help="ignore an existing checkpoint in --out")
    parser.add_argument("--export-only", action="store_true", help="export the latest checkpoint and stop")
    parser.add_argument("--no-export", action="store_true")
    # On a CPU shared with other jobs use 1: two threads wait on each other whenever one is descheduled,
    # which made steps 4-10x slower under load, while one thread keeps a steady pace.
    parser.add_argument("--threads", type=int, default=threads, help="torch intra-op threads")
    args = parser.parse_args(argv)
    values: dict[str, Any] = {}
    if args.smoke:
        values = dict(smoke, smoke=True, export=str(Path(args.out or defaults.out) / smoke_export))
    values.update({f.name: getattr(args, f.name) for f in fields if getattr(args, f.name) is not None})
    if args.no_export:
        values["export"] = None
    return dataclasses.replace(defaults, **values), args


def _exit_on_sigterm(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)


@contextlib.contextmanager
def sigterm_exits() -> Iterator[None]:
    """Within, SIGTERM (a plain ``kill``) raises ``SystemExit(143)`` as Ctrl-C raises
    KeyboardInterrupt, so :func:`train_steps` writes a checkpoint on the way out. Main thread only."""
    previous = signal.signal(signal.SIGTERM, _exit_on_sigterm)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def command(threads: int, work: Callable[[], object]) -> int:
    """Run a trainer's ``work`` as a command; the exit status, 1 (message logged) for a GanvasError."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S",
                        stream=sys.stdout, force=True)
    torch.set_num_threads(threads)  # a process-wide torch setting, so only the command line sets it
    torch.set_flush_denormal(True)  # denormal floats (tiny gradients early in GAN training) cost 10-100x on x86
    with sigterm_exits():
        try:
            work()
        except GanvasError as exc:
            log.error("%s", exc)
            return 1
    return 0
