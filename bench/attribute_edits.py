"""Do the fitted directions of a house model change their attribute, and only it?

For each named direction and each strength, 200 fresh samples are edited *towards the other
side* of the attribute (samples the classifier reads as "yes" move by ``-s``, the others by
``+s``), and the attribute classifier of ``engine.training.evaluate_gan`` reads the images
before and after. Per sample, with p = P(yes | yes or no):

- *moved*: p changes by at least 0.25 towards the other side;
- *flipped*: p crosses 0.5 (reported, not part of the bar: near 0.5 a tiny change flips it);
- another attribute *changed*: its p changes by at least 0.25, either way.

Each share counts the samples where the attribute applies: P(yes or no) >= 0.5 (before the edit
for the edited attribute; before and after for the others).

The bar: moved >= 80 % while every other attribute changes for <= 20 %. Directions are used as
shipped ("plain") and made conditional (InterFaceGAN's projection of each direction off all the
others, so moving one keeps the rest), both from the shipped ``.directions.safetensors``.

Usage: .venv/bin/python bench/attribute_edits.py --model house-gan --classifier runs/attr-classifier.pt
       [--strengths 2 3 4] [--samples 200] [--threads 1]   (writes bench/results/attribute_edits.md)
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from engine.models.catalog import resolve  # noqa: E402
from engine.models.checkpoint import load_generator  # noqa: E402
from engine.ops.edit import (HOUSE_ATTRIBUTES, Direction, apply_edits, classifier_predictor,  # noqa: E402
                             direction_scale, directions_path, load_directions, project_off, sample_w)

MOVE, FLIP = 0.25, 0.5


@torch.no_grad()
def p_yes(G, predict, vocab, ws: torch.Tensor) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Attribute name -> (P(yes | yes or no), P(yes or no)), each ``(N,)``, for the images of ``ws``
    ``(N, num_ws, w_dim)``. The second says whether the attribute applies at all (long vs short
    hair means little under a hat)."""
    images = torch.cat([G.synthesis(ws[i:i + 50], noise_mode="const") for i in range(0, len(ws), 50)])
    probs = predict(images)
    out = {}
    for a in HOUSE_ATTRIBUTES:
        index = {v: i for i, v in enumerate(vocab[a.label])}
        yes = probs[a.label][:, [index[v] for v in a.positive]].sum(1)
        no = probs[a.label][:, [index[v] for v in a.negative]].sum(1)
        out[a.name] = yes / (yes + no).clamp_min(1e-6), yes + no
    return out


def conditional(directions: dict[str, Direction], samples: torch.Tensor) -> dict[str, Direction]:
    """Each direction projected off the span of all the others; strength 1 stays one std of
    ``samples`` ``(N, w_dim)`` along the new vector."""
    out = {}
    for name, d in directions.items():
        vector = project_off(d.vector, [o.vector for n, o in directions.items() if n != name])
        out[name] = Direction(name, vector, d.layers, direction_scale(samples, vector), "conditional", d.info)
    return out


def measure(G, predict, vocab, base: torch.Tensor, before: dict, d: Direction,
            strength: float) -> tuple[float, float, dict[str, float]]:
    """(moved, flipped, other attribute -> changed) fractions for one direction at one strength,
    each over the samples where that attribute applies (P(yes or no) >= 0.5 before and after)."""
    p0 = {a: p for a, (p, _) in before.items()}
    yes = p0[d.name] >= FLIP
    sign = torch.where(yes, -1.0, 1.0)  # towards the other side
    edited = base.clone()
    edited[yes] = apply_edits(base[yes], [d.edit(-strength)])
    edited[~yes] = apply_edits(base[~yes], [d.edit(strength)])
    after = p_yes(G, predict, vocab, edited)
    p1 = {a: p for a, (p, _) in after.items()}

    def share(hits: torch.Tensor, a: str, both: bool = True) -> float:
        applies = (before[a][1] >= 0.5) & ((after[a][1] >= 0.5) if both else True)
        return float(hits[applies].float().mean()) if applies.any() else 0.0

    moved = share((p1[d.name] - p0[d.name]) * sign >= MOVE, d.name, both=False)
    flipped = share((p0[d.name] >= FLIP) != (p1[d.name] >= FLIP), d.name, both=False)
    others = {a: share((p1[a] - p0[a]).abs() >= MOVE, a) for a in before if a != d.name}
    return moved, flipped, others


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="house-gan")
    parser.add_argument("--classifier", default=str(ROOT / "runs/attr-classifier.pt"))
    parser.add_argument("--strengths", type=float, nargs="+", default=[2.0, 3.0, 4.0])
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=str(ROOT / "bench/results/attribute_edits.md"))
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    weights = resolve(args.model)
    G = load_generator(weights).eval()
    predict, vocab = classifier_predictor(args.classifier, G.img_resolution)
    shipped = load_directions(directions_path(weights))
    base = sample_w(G, args.samples, args.seed)[:, None].repeat(1, G.num_ws, 1)
    before = p_yes(G, predict, vocab, base)

    lines = ["# Attribute edits of the shipped directions", "",
             f"Model `{Path(weights).name}`, {args.samples} samples (seed {args.seed}), classifier "
             f"`{Path(args.classifier).name}`. Written by `bench/attribute_edits.py` (definitions in its docstring).",
             "moved: P(yes) of the attribute moves >= 0.25 towards the other side; flipped: it crosses 0.5; "
             "others: share of samples where another attribute's P(yes) moves >= 0.25 (worst one named, and "
             "the mean over the others). Bar: moved >= 80 % and worst other <= 20 %.", ""]
    samples = sample_w(G, 10_000, 0)
    for label, directions in (("plain", shipped), ("conditional", conditional(shipped, samples))):
        lines += [f"## {label}", "", "| direction | strength | moved | flipped | worst other | mean other | bar |",
                  "| --- | ---: | ---: | ---: | --- | ---: | --- |"]
        for d in directions.values():
            for s in args.strengths:
                moved, flipped, others = measure(G, predict, vocab, base, before, d, s)
                worst = max(others, key=others.get)
                ok = "yes" if moved >= 0.8 and others[worst] <= 0.2 else "no"
                row = (f"| {d.name} | {s:g} | {moved:.0%} | {flipped:.0%} | {worst} {others[worst]:.0%} | "
                       f"{sum(others.values()) / len(others):.0%} | {ok} |")
                print(row, flush=True)
                lines.append(row)
        lines.append("")
    # Control: random unit directions moved as far; what changes then is the classifier's and G's
    # sensitivity to any edit of that size, not the fitted direction's entanglement.
    lines += ["## control: random directions", "", "Each attribute's 'moved' share under a random unit direction "
              "of W (seeded), same strengths; the mean over 4 directions.", "",
              "| strength | " + " | ".join(a.name for a in HOUSE_ATTRIBUTES) + " |",
              "| ---: | " + " | ".join("---:" for _ in HOUSE_ATTRIBUTES) + " |"]
    randoms = torch.nn.functional.normalize(torch.randn(4, G.w_dim, generator=torch.Generator().manual_seed(1)), dim=1)
    for s in args.strengths:
        shares = {a.name: 0.0 for a in HOUSE_ATTRIBUTES}
        for v in randoms:
            for a in HOUSE_ATTRIBUTES:
                d = Direction(a.name, v, None, direction_scale(samples, v), "random")
                shares[a.name] += measure(G, predict, vocab, base, before, d, s)[0] / len(randoms)
        row = f"| {s:g} | " + " | ".join(f"{shares[a.name]:.0%}" for a in HOUSE_ATTRIBUTES) + " |"
        print(row, flush=True)
        lines.append(row)
    lines.append("")
    lines.append(f"Run time {(time.perf_counter() - start) / 60:.1f} min on {args.threads} thread(s).")
    Path(args.out).write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
