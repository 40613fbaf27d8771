"""Slider-to-preview latency of latent editing on the CPU: apply the edit stack, synthesise, convert.

One "slider move" is what the app does when a strength slider changes: ``apply_edits`` on the base
latent with the new strength, ``G.synthesis`` (noise 'const'), and the conversion to a ``uint8``
image (``engine.ops.generate.render``). The stack holds a GANSpace edit on the coarse slots, a
SeFa edit, a shipped direction when the model has one, and a style mix on the fine slots; 200
strength changes sweep the first edit's slider. The directions are computed once beforehand
(their one-off cost is reported apart). Target: p95 <= 50 ms for a 64-px model.

Usage: .venv/bin/python bench/edit_latency.py --model house-gan [--threads 1] [--moves 200]
       --model takes a model id, a checkpoint file, or "random-64" (a random network with the
       house generator's shapes). Each run updates its row in bench/results/edit_latency.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.ops.edit import DirectionLibrary, MixEdit, apply_edits, layer_groups  # noqa: E402
from engine.ops.generate import render  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "edit_latency.md"
HEADER = """# Slider-to-preview latency of latent edits (CPU)

One slider move = `apply_edits` (4-edit stack: GANSpace, SeFa, a shipped direction if any, a style
mix) + `G.synthesis` (noise 'const', batch 1) + conversion to uint8, timed over 200 strength changes
after 10 warm-up moves. Directions are computed once beforehand ("directions" column: 10 000 w
samples, PCA, SeFa). Target: p95 <= 50 ms at 64 px. "load" is the 1-minute load average at the
end of the run: the machine is shared, so the tails (p95, max) grow with it. Written by `bench/edit_latency.py`.

| model | px | num_ws x w_dim | threads | moves | p50 ms | p95 ms | max ms | apply_edits p95 ms | directions s | machine |
| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |
"""


def load_model(spec: str) -> tuple[torch.nn.Module, Path | None, str]:
    """The generator, its weights file (None for a random network) and a label for the table."""
    if spec == "random-64":
        from engine.training.train_gan import TrainConfig, build_networks

        G, _ = build_networks(TrainConfig(), 64)
        return G.eval().requires_grad_(False), None, "random-64 (house shapes, random weights)"
    from engine.models.catalog import resolve
    from engine.models.checkpoint import load_generator

    path = resolve(spec)
    return load_generator(path), path, spec if not Path(spec).is_file() else path.name


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def measure(G: torch.nn.Module, weights: Path | None, moves: int) -> dict[str, float]:
    start = time.perf_counter()
    lib = DirectionLibrary.for_weights(G, weights) if weights else DirectionLibrary(G)
    groups = layer_groups(G.num_ws)
    stack = [lib.get("ganspace:0").edit(0.0, groups["coarse"]), lib.get("sefa:1").edit(0.5)]
    if lib.named:
        stack.append(next(iter(lib.named.values())).edit(0.5))
    gen = torch.Generator().manual_seed(1)
    other = G.mapping(torch.randn(1, G.z_dim, generator=gen), None)
    stack.append(MixEdit(other, groups["fine"] if groups["fine"][0] < groups["fine"][1] else (G.num_ws - 1, G.num_ws)))
    directions_s = time.perf_counter() - start
    base = G.mapping(torch.randn(1, G.z_dim, generator=gen), None)
    strengths = np.sin(np.linspace(0, 6 * np.pi, moves + 10)) * 3  # a user dragging back and forth
    total, edits_only = [], []
    for i, s in enumerate(strengths):
        stack[0].strength = float(s)
        t0 = time.perf_counter()
        ws = apply_edits(base, stack)
        t1 = time.perf_counter()
        image = render(G, ws)
        t2 = time.perf_counter()
        if i >= 10:
            total.append((t2 - t0) * 1e3)
            edits_only.append((t1 - t0) * 1e3)
    assert image.shape == (G.img_resolution, G.img_resolution, 3)
    return {"p50": percentile(total, 50), "p95": percentile(total, 95), "max": max(total),
            "edits_p95": percentile(edits_only, 95), "directions_s": directions_s}


def write_row(label: str, G: torch.nn.Module, threads: int, moves: int, r: dict[str, float]) -> None:
    machine = (f"{platform.machine()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}, "
               f"torch {torch.__version__}")
    row = (f"| {label} | {G.img_resolution} | {G.num_ws} x {G.w_dim} | {threads} | {moves} | {r['p50']:.1f} | "
           f"{r['p95']:.1f} | {r['max']:.1f} | {r['edits_p95']:.3f} | {r['directions_s']:.2f} | {machine} |")
    rows = []
    if RESULTS.is_file():
        rows = [line for line in RESULTS.read_text().splitlines()
                if line.startswith("| ") and not line.startswith("| model") and not line.startswith("| ---")]
    rows = [line for line in rows if not line.startswith(f"| {label} |")] + [row]
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(HEADER + "\n".join(rows) + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="model id, checkpoint file, or random-64")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 on a shared machine)")
    parser.add_argument("--moves", type=int, default=200)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    G, weights, label = load_model(args.model)
    result = measure(G, weights, args.moves)
    write_row(label, G, args.threads, args.moves, result)
    print(f"{label}: p50 {result['p50']:.1f} ms, p95 {result['p95']:.1f} ms, max {result['max']:.1f} ms "
          f"(apply_edits p95 {result['edits_p95']:.3f} ms; directions {result['directions_s']:.2f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
