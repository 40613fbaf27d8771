"""Quality of strokes/edges to image: the GAN search route, the feed-forward route, and a random sample.

Held-out set: avatars drawn with the house data's renderer and settings but DiceBear seeds
``"1-i"`` (``bench/invert_quality.py``'s rendered set): house-gan trained on the whole of
``data/house.npz`` (seeds ``"0-0" .. "0-29999"``) and house-edges on all of it but the last
1 000, so neither saw these. Without the renderer the last images of the data set are used
and the table says so.

Edges: each image's Canny edges (100/200) are the sketch. Figures: the boundary F-score of the
output's Canny edges against the sketch (2 px tolerance, ``engine.ops.edges.edge_fscore``) and
PSNR against the original image, for house-gan's latent search (``engine.ops.sketch``), for an
edges-to-image model (``--edges-model``, default house-edges when installed) and for a
random house-gan sample (seed 20 000 + i, psi 1), the baseline.
Colour strokes: 10 % of the pixels (seeded) carry the target's colour, the rest is unpainted;
the search blurs them itself. Figure: the share of stroked pixels whose output colour is within
ΔE 10 (CIE76, kornia Lab) of the stroke's colour; target >= 80 %.

    python bench/sketch_quality.py --threads 1
    python bench/sketch_quality.py --edges-model runs/house-edges/house-edges.safetensors

Each search result is kept in ``--cache`` (keyed by the model file and the search settings), so a
rerun, e.g. with a newly trained edges model, only searches what it has not searched before.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import sys
import time
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from engine.convert import image_to_tensor  # noqa: E402
from engine.models.checkpoint import load_generator  # noqa: E402
from engine.models.unet import load_unet, translate_edges  # noqa: E402
from engine.ops import losses  # noqa: E402
from engine.ops.edges import canny_edges, edge_fscore  # noqa: E402
from engine.ops.generate import sample  # noqa: E402
from engine.ops.invert import w_prior  # noqa: E402
from engine.ops.sketch import Sketch, SketchConfig, delta_e, sketch, stroke_agreement  # noqa: E402
from invert_quality import rendered_set  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
STROKE_SHARE = 0.10


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return losses.psnr(image_to_tensor(a), image_to_tensor(b))


class SearchCache:
    """Search outputs on disk, one ``.png`` per (task, image), under a key of the model and the settings."""

    def __init__(self, folder: Path | None, model: str, cfg: SketchConfig):
        stat = Path(model).stat()
        key = f"{Path(model).resolve()}|{stat.st_size}|{stat.st_mtime_ns}|{cfg!r}"
        self.folder = None if folder is None else folder / hashlib.sha1(key.encode()).hexdigest()[:12]
        if self.folder is not None:
            self.folder.mkdir(parents=True, exist_ok=True)
        self.loads: list[float] = []  # the machine's load average while each search ran

    def get(self, name: str, compute) -> tuple[np.ndarray, float]:
        """``compute()`` -> image, or the stored one; and the seconds the search took."""
        path = None if self.folder is None else self.folder / f"{name}.png"
        if path is not None and path.is_file():
            seconds, load = map(float, path.with_suffix(".txt").read_text().split())  # written below
            self.loads.append(load)
            return cv2.imread(str(path))[..., ::-1].copy(), seconds
        start = time.perf_counter()
        image = compute()
        seconds = time.perf_counter() - start
        self.loads.append(os.getloadavg()[0])
        if path is not None:
            cv2.imwrite(str(path), image[..., ::-1])
            path.with_suffix(".txt").write_text(f"{seconds:.3f} {self.loads[-1]:.2f}")
        return image, seconds


def edge_row(out: np.ndarray, truth: np.ndarray, drawn: np.ndarray) -> tuple[float, float]:
    return edge_fscore(canny_edges(out), drawn).f, psnr(out, truth)


def run_edges(G, net, images, cfg: SketchConfig, prior, cache: SearchCache, log) -> tuple[dict, list]:
    """Per image (F, PSNR, seconds) for each route; the sheet rows."""
    rows: dict[str, list] = {"search": [], "feed-forward": [], "baseline": []}
    sheet = []
    for i, truth in enumerate(images):
        drawn = canny_edges(truth)
        found, seconds = cache.get(f"edges-{i}", lambda: sketch(G, Sketch(edges=drawn), cfg, prior=prior).best.image)
        rows["search"].append((*edge_row(found, truth, drawn), seconds))
        tiles = [truth, np.repeat((drawn * 255).astype(np.uint8)[..., None], 3, axis=2), found]
        if net is not None:
            start = time.perf_counter()
            fed = translate_edges(net, drawn)
            rows["feed-forward"].append((*edge_row(fed, truth, drawn), time.perf_counter() - start))
            tiles.append(fed)
        base = sample(G, 20_000 + i).image
        rows["baseline"].append((*edge_row(base, truth, drawn), 0.0))
        sheet.append(np.concatenate(tiles + [base], axis=1))
        log(f"edges {i}: " + ", ".join(f"{k} F {v[-1][0]:.3f} PSNR {v[-1][1]:.2f}" for k, v in rows.items() if v))
    return rows, sheet


def strokes_for(truth: np.ndarray, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).random(truth.shape[:2]) < STROKE_SHARE


def run_strokes(G, images, cfg: SketchConfig, prior, cache: SearchCache, log) -> tuple[dict, list]:
    rows: dict[str, list] = {"search": [], "baseline": []}
    sheet = []
    for i, truth in enumerate(images):
        stroked = strokes_for(truth, i)
        drawing = Sketch(colour=truth, alpha=stroked.astype(np.float32))
        found, seconds = cache.get(f"strokes-{i}", lambda: sketch(G, drawing, cfg, prior=prior).best.image)
        base = sample(G, 20_000 + i).image
        for name, out, s in (("search", found, seconds), ("baseline", base, 0.0)):
            rows[name].append((stroke_agreement(out, truth, stroked), float(delta_e(out, truth)[stroked].mean()),
                               psnr(out, truth), s))
        dots = np.where(stroked[..., None], truth, 255).astype(np.uint8)
        sheet.append(np.concatenate([truth, dots, found, base], axis=1))
        log(f"strokes {i}: search {rows['search'][-1][0]:.3f} (mean ΔE {rows['search'][-1][1]:.1f}), "
            f"baseline {rows['baseline'][-1][0]:.3f}")
    return rows, sheet


def _mean(rows: list, k: int) -> float:
    return float(np.mean([r[k] for r in rows]))


def _search_minutes(edge_rows: dict | None, stroke_rows: dict | None) -> float:
    rows = (edge_rows or {}).get("search", []) + (stroke_rows or {}).get("search", [])
    return sum(r[-1] for r in rows) / 60


def report(args, cfg: SketchConfig, note: str, edge_rows: dict | None, stroke_rows: dict | None,
           net_path: str | None, load: float) -> str:
    lines = ["# Strokes and edges to image: quality", "",
             "`python bench/sketch_quality.py " + " ".join(args.argv) + "`", "",
             f"Held-out images: {args.count} avatars, {note}. Search: `SketchConfig` mode {cfg.mode}, "
             f"{cfg.candidates} candidates from the best {cfg.candidates} of {cfg.screen} screened latents, "
             f"{cfg.steps} steps, lr {cfg.lr}, stroke blur σ {cfg.stroke_sigma} px, edge tolerance "
             f"{cfg.edge_tolerance} px; the best-ranked candidate is scored. Baseline: a random house-gan sample "
             "(seed 20 000 + i, ψ 1).", ""]
    if edge_rows:
        lines += ["## Edges → image (Canny 100/200 edges of the original as the sketch)", "",
                  "| route | edge F-score (2 px) | PSNR vs original (dB) | s / image |", "| --- | ---: | ---: | ---: |"]
        names = {"search": "GAN search (house-gan)", "feed-forward": f"feed-forward ({Path(net_path).stem})"
                 if net_path else "feed-forward", "baseline": "baseline: random house-gan sample"}
        for key, rows in edge_rows.items():
            if rows:
                per_image = {"search": f"{_mean(rows, 2):.1f}", "feed-forward": f"{_mean(rows, 2):.3f}"}.get(key, "–")
                lines.append(f"| {names[key]} | {_mean(rows, 0):.3f} | {_mean(rows, 1):.2f} | {per_image} |")
        if not edge_rows["feed-forward"]:
            lines += ["", "No edges-to-image model was given or installed (`--edges-model`); train house-edges "
                      "(`python -m engine.training.train_edges`) and rerun this script."]
        lines.append("")
    if stroke_rows:
        lines += [f"## Colour strokes → image ({100 * STROKE_SHARE:.0f} % of the pixels, the target's colours)", "",
                  "| route | stroked pixels within ΔE 10 | mean ΔE on strokes | PSNR vs original (dB) | s / image |",
                  "| --- | ---: | ---: | ---: | ---: |"]
        for key, name in (("search", "GAN search (house-gan)"), ("baseline", "baseline: random house-gan sample")):
            r = stroke_rows[key]
            share = f"{100 * _mean(r, 0):.1f} %"
            lines.append(f"| {name} | {f'**{share}**' if key == 'search' else share} | {_mean(r, 1):.1f} | {_mean(r, 2):.2f} | "
                         + (f"{_mean(r, 3):.1f} |" if key == "search" else "– |"))
        worst = min(r[0] for r in stroke_rows["search"])
        lines += ["", f"Target: ≥ 80 % of stroked pixels within ΔE 10. Per image the search ranges from "
                  f"{100 * worst:.0f} % to {100 * max(r[0] for r in stroke_rows['search']):.0f} %; "
                  f"{sum(r[0] >= 0.8 for r in stroke_rows['search'])} of {len(stroke_rows['search'])} images reach "
                  "80 % on their own.", ""]
    lines += [f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, {args.threads} torch thread(s), load "
              f"{load:.1f} on average while the searches ran (shared with training runs: times grow with it), torch {torch.__version__}; "
              f"searches {_search_minutes(edge_rows, stroke_rows):.1f} min in all (timed when run; a rerun reads them "
              "from the cache). Contact sheets: `sketch_quality-edges.png` (original, edges, "
              "search, [feed-forward], baseline) and `sketch_quality-strokes.png` (original, strokes, search, "
              "baseline).", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(ROOT / "resources/models/house-gan.safetensors"))
    default_net = ROOT / "resources/models/house-edges.safetensors"
    parser.add_argument("--edges-model", default=str(default_net) if default_net.is_file() else None,
                        help="an edges-to-image model (default: house-edges when installed)")
    parser.add_argument("--count", type=int, default=20)
    parser.add_argument("--tasks", default="edges,strokes")
    parser.add_argument("--steps", type=int, default=None, help="search steps (default: SketchConfig's)")
    parser.add_argument("--candidates", type=int, default=None)
    parser.add_argument("--data", default=str(ROOT / "data/house.npz"))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=str(ROOT / "bench/results/sketch_quality.md"))
    parser.add_argument("--cache", default=str(ROOT / "runs/sketch_quality-cache"), help="'' for none")
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    torch.set_num_threads(args.threads)
    G = load_generator(args.model)
    net = load_unet(args.edges_model) if args.edges_model else None
    prior = w_prior(G)
    cfg = SketchConfig()
    cfg = replace(cfg, steps=args.steps) if args.steps else cfg
    cfg = replace(cfg, candidates=args.candidates) if args.candidates else cfg
    images, note = rendered_set(args.count, int(G.img_resolution), Path(args.data))
    tasks = args.tasks.split(",")
    cache = SearchCache(Path(args.cache) if args.cache else None, args.model, cfg)
    log = lambda message: print(message, file=sys.stderr, flush=True)  # noqa: E731
    out = Path(args.out)
    edge_rows = stroke_rows = None
    if "edges" in tasks:
        edge_rows, sheet = run_edges(G, net, images, cfg, prior, cache, log)
        cv2.imwrite(str(out.with_name(out.stem + "-edges.png")), np.concatenate(sheet)[..., ::-1])
    if "strokes" in tasks:
        stroke_rows, sheet = run_strokes(G, images, cfg, prior, cache, log)
        cv2.imwrite(str(out.with_name(out.stem + "-strokes.png")), np.concatenate(sheet)[..., ::-1])
    text = report(args, cfg, note, edge_rows, stroke_rows, args.edges_model, float(np.mean(cache.loads)))
    out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
