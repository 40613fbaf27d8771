"""Quality of latent search: PSNR / SSIM against the step budget, and inverse problems vs naive baselines.

Inversion (W, W+, PTI) after 50/100/200/500 steps on two held-out sets:
  * generated: samples of the model from seeds it was never evaluated on (10 000 + i, psi 1);
  * rendered: fresh avatars drawn with the training data's renderer and settings but DiceBear
    seeds ``"1-i"`` (training used ``"0-0" .. "0-29999"``, the whole array of data/house.npz),
    so none was seen in training. Without the renderer the last ``count`` images of the
    training array are used instead, and the table says so (they were seen in training).
A PTI budget of ``b`` steps means ``b`` W+ pivot steps, then ``b`` tuning steps.

Inverse problems (W+ and PTI, default steps) on the same sets: inpainting a 30 % hole (a square
at a seeded random place) vs mean fill, colourisation vs the grey image, x4 super-resolution
vs bicubic. Figures: PSNR on the whole image, PSNR on the hole, SSIM.

    python bench/invert_quality.py --model resources/models/house-gan.safetensors --count 10
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.convert import image_to_tensor  # noqa: E402
from engine.models.checkpoint import load_discriminator, load_generator  # noqa: E402
from engine.ops import degrade, losses  # noqa: E402
from engine.ops.generate import sample  # noqa: E402
from engine.ops.invert import InvertConfig, invert, tuned_generator, with_defaults  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def generated_set(G: torch.nn.Module, count: int) -> list[np.ndarray]:
    return [sample(G, 10_000 + i).image for i in range(count)]


def rendered_set(count: int, resolution: int, data: Path) -> tuple[list[np.ndarray], str]:
    """Fresh avatars from the training renderer (held out by seed), else the data's last images."""
    meta: dict = {}
    if data.is_file():
        with np.load(data, mmap_mode="r") as npz:
            if "meta" in npz.files:
                meta = json.loads(str(npz["meta"]))
    try:
        from engine.training.dataset import RenderSettings, build_dicebear

        settings = RenderSettings(**{k: tuple(map(tuple, v)) if k == "probabilities" else
                                     tuple(v) if isinstance(v, list) else v
                                     for k, v in (meta.get("settings") or {}).items()})
        images = build_dicebear(meta.get("style", "avataaars"), count, settings, seed=1).images
        note = "fresh renders, DiceBear seeds 1-0 .. 1-%d (not in training)" % (count - 1)
    except Exception as e:  # the renderer is optional; fall back honestly
        with np.load(data, mmap_mode="r") as npz:
            images = np.asarray(npz["images"][-count:])
        note = f"last {count} images of {data} (SEEN IN TRAINING: renderer unavailable: {e})"
    images = [cv2.resize(im, (resolution, resolution), interpolation=cv2.INTER_AREA)
              if im.shape[0] != resolution else np.asarray(im) for im in images]
    return images, note


def hole_mask(resolution: int, seed: int, fraction: float = 0.3) -> np.ndarray:
    """1 = known; a square hole of ``fraction`` of the area at a seeded random place."""
    side = int(round(resolution * fraction ** 0.5))
    rng = np.random.default_rng(seed)
    y0, x0 = rng.integers(0, resolution - side + 1, size=2)
    mask = np.ones((resolution, resolution), np.float32)
    mask[y0:y0 + side, x0:x0 + side] = 0
    return mask


def baseline(task: str, image: np.ndarray, mask: np.ndarray | None, scale: int) -> np.ndarray:
    """The naive answer: mean fill, the grey image, or bicubic enlargement."""
    if task == "inpaint":
        out = image.astype(np.float32).copy()
        out[mask == 0] = image[mask == 1].reshape(-1, 3).mean(axis=0)
        return out.round().astype(np.uint8)
    if task == "colorize":
        return np.repeat(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)[..., None], 3, axis=2)
    r = image.shape[0]
    small = cv2.resize(image, (r // scale, r // scale), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (r, r), interpolation=cv2.INTER_CUBIC)


def figures(out: np.ndarray, truth: np.ndarray, mask: np.ndarray | None) -> tuple[float, float, float | None]:
    x, y = image_to_tensor(out), image_to_tensor(truth)
    unseen = None if mask is None else losses.psnr(x, y, torch.from_numpy(1 - mask)[None, None])
    return losses.psnr(x, y), losses.ssim(x, y), unseen


def operator_for(task: str, resolution: int, mask: np.ndarray | None, scale: int) -> degrade.Operator:
    if task == "inpaint":
        return degrade.masked(torch.from_numpy(mask))
    if task == "colorize":
        return degrade.greyscale(resolution)
    return degrade.downsampling(resolution, scale)


@torch.no_grad()
def locality(G: torch.nn.Module, result, count: int = 16) -> float:
    """PSNR between the original and the PTI-tuned G on random samples: how much else the tuning moved."""
    ws = G.mapping(torch.randn(count, G.z_dim, generator=torch.Generator().manual_seed(123)), None)
    return losses.psnr(G.synthesis(ws), tuned_generator(G, result).synthesis(ws))


def run_inversion(G, D, sets, budgets, modes, base: InvertConfig, log, trajectory: bool = False) -> list[str]:
    """One row per (set, mode, budget). ``trajectory``: one run per image at the largest budget; the
    smaller W/W+ budgets read the PSNR its history reached at that step (no SSIM), which understates
    them (a run given fewer steps decays its learning rate sooner); PTI gets the largest budget only."""
    rows = ["| set | mode | steps | PSNR dB | SSIM | s / image | PTI locality dB |",
            "| --- | --- | ---: | ---: | ---: | ---: | ---: |"]
    for set_name, images in sets.items():
        for mode in modes:
            runs = [max(budgets)] if trajectory else budgets
            for budget in runs:
                cfg = replace(base, mode=mode, steps=budget, pti_steps=budget)
                ps, ss, ts, loc, along = [], [], [], [], {b: [] for b in budgets if b < budget}
                for im in images:
                    r = invert(G, im, config=cfg, truth=im, D=D)
                    ps.append(r.psnr), ss.append(r.ssim), ts.append(r.seconds)
                    for b in along:
                        along[b].append(next(h.psnr for h in r.history if h.step >= b))
                    if mode == "pti":
                        loc.append(locality(G, r))
                if trajectory and mode != "pti":
                    for b, values in along.items():
                        row = f"| {set_name} | {mode} | {b} (of {budget}) | {np.mean(values):.2f} | - | - | - |"
                        log(row)
                        rows.append(row)
                local = f"{np.mean(loc):.1f}" if loc else "-"
                row = (f"| {set_name} | {mode} | {budget} | {np.mean(ps):.2f} | {np.mean(ss):.3f} | "
                       f"{np.mean(ts):.1f} | {local} |")
                log(row)
                rows.append(row)
    return rows


def run_inverse_problems(G, D, sets, tasks, scale: int, configs: list[InvertConfig], log) -> list[str]:
    rows = ["| set | task | method | PSNR dB | PSNR hole dB | SSIM | s / image |",
            "| --- | --- | --- | ---: | ---: | ---: | ---: |"]
    R = G.img_resolution
    for set_name, images in sets.items():
        for task in tasks:
            results = []
            for cfg in configs:
                ours, ts = [], []
                for i, im in enumerate(images):
                    mask = hole_mask(R, seed=i) if task == "inpaint" else None
                    r = invert(G, im, operator_for(task, R, mask, scale), cfg, truth=im, D=D)
                    ours.append(figures(r.image, im, mask))
                    ts.append(r.seconds)
                count = with_defaults(cfg, task, R).samples
                many = "" if count == 1 else f", mean of {count}"
                results.append((f"GAN prior ({cfg.mode}{many})", ours, f"{np.mean(ts):.1f}"))
            masks = [hole_mask(R, seed=i) if task == "inpaint" else None for i in range(len(images))]
            naive = [figures(baseline(task, im, m, scale), im, m) for im, m in zip(images, masks)]
            name = {"inpaint": "mean fill", "colorize": "grey image", "superres": "bicubic"}[task]
            for method, figs, sec in results + [(name, naive, "-")]:
                p, s = np.mean([f[0] for f in figs]), np.mean([f[1] for f in figs])
                hole = f"{np.mean([f[2] for f in figs]):.2f}" if figs[0][2] is not None else "-"
                row = f"| {set_name} | {task} | {method} | {p:.2f} | {hole} | {s:.3f} | {sec} |"
                log(row)
                rows.append(row)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(ROOT / "resources/models/house-gan.safetensors"))
    parser.add_argument("--count", type=int, default=5, help="images per set")
    parser.add_argument("--budgets", default="50,100,200,500")
    parser.add_argument("--modes", default="w,w+,pti")
    parser.add_argument("--tasks", default="inpaint,colorize,superres")
    parser.add_argument("--scale", type=int, default=4)
    parser.add_argument("--sets", default="generated,rendered")
    parser.add_argument("--data", default=str(ROOT / "data/house.npz"))
    parser.add_argument("--inverse-modes", default="w+,pti", help="search spaces for the inverse problems")
    parser.add_argument("--inverse-steps", type=int, default=None, help="latent steps of the inverse problems "
                        "(default: InvertConfig's)")
    parser.add_argument("--inverse-samples", default="auto",
                        help="samples averaged per inverse problem, e.g. 1,8 (auto: the engine's choice per task)")
    parser.add_argument("--trajectory", action="store_true",
                        help="one run per image at the largest budget; smaller W/W+ budgets from its history")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", default=str(ROOT / "bench/results/invert_quality.md"))
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    G = load_generator(args.model)
    try:
        D = load_discriminator(args.model)
    except Exception:
        D = None
    base = InvertConfig()
    lpips = losses.find_lpips()
    R = int(G.img_resolution)
    sets, notes = {}, []
    wanted = args.sets.split(",")
    if "generated" in wanted:
        sets["generated"] = generated_set(G, args.count)
        notes.append(f"generated: {args.count} samples, seeds 10000 .. {10000 + args.count - 1}, psi 1")
    if "rendered" in wanted:
        sets["rendered"], note = rendered_set(args.count, R, Path(args.data))
        notes.append(f"rendered: {note}")
    start = time.perf_counter()
    log = lambda line: print(line, flush=True)  # noqa: E731
    budgets = [int(b) for b in args.budgets.split(",") if b]
    modes = [m for m in args.modes.split(",") if m]
    tasks = [t for t in args.tasks.split(",") if t]
    inv_rows = run_inversion(G, D, sets, budgets, modes, base, log, args.trajectory) if budgets and modes else []
    ip_base = base if args.inverse_steps is None else replace(base, steps=args.inverse_steps)
    ip_cfgs = [replace(ip_base, mode=m, samples=None if k == "auto" else int(k))
               for m in args.inverse_modes.split(",") if m for k in args.inverse_samples.split(",")]
    ip_rows = run_inverse_problems(G, D, sets, tasks, args.scale, ip_cfgs, log) if tasks else []
    minutes = (time.perf_counter() - start) / 60
    text = [
        "# Inversion quality", "",
        f"Model `{args.model}` ({R} px, {sum(p.numel() for p in G.synthesis.parameters()) / 1e6:.2f} M synthesis "
        f"parameters, discriminator {'present' if D is not None else 'absent'}). Distance: "
        f"{'LPIPS ' + lpips.source if lpips is not None else 'fallback (no LPIPS weights on disk)'}; "
        f"the D-feature term is {'on' if base.distance.d_features > 0 else 'off'} by default.",
        f"CPU, {args.threads} torch thread(s), {platform.processor() or platform.machine()}; "
        f"total {minutes:.1f} min. Written by `python bench/invert_quality.py "
        f"{' '.join(sys.argv[1:] if argv is None else argv)}`.", "",
        *[f"- {n}" for n in notes],
        f"- defaults: {with_defaults(base, 'invert', R).steps} latent steps ({with_defaults(base, 'superres', R).steps} "
        f"for super-resolution, which averages {with_defaults(base, 'superres', R).samples} samples) at lr {base.lr}; PTI {base.pti_steps} steps at lr {base.pti_lr}, "
        f"locality {base.locality} every {base.locality_every} step(s)", "",
    ]
    if inv_rows:
        text += ["## Inversion vs step budget", "", "PSNR / SSIM against the input image (mean over the set). "
                 "PTI locality: PSNR between the original and the tuned generator on 16 random samples "
                 "(higher: the tuning changed less of the rest of the latent space).", "", *inv_rows, ""]
    if ip_rows:
        text += ["## Inverse problems vs naive baselines", "",
                 f"Hole: 30 % of the area; colourisation from luma; super-resolution x{args.scale} from area "
                 "down-sampling. PSNR against the full original.", "", *ip_rows, ""]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(text))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
