"""``upscale``: super-resolve an image or a folder of images in seamless tiles."""

from __future__ import annotations

import argparse
import sys

from engine.errors import GanvasError

def add_command(commands: argparse._SubParsersAction) -> None:
    upscale = commands.add_parser(
        "upscale", help="super-resolve an image or a folder of images",
        description="Upscale INPUT (an image, or every image in a folder) with a super-resolution model "
        "that spandrel reads (Real-ESRGAN, Compact, SwinIR, HAT, DAT, SPAN, ...). Large images run in "
        "seamless tiles; out-of-memory falls back to smaller tiles, half precision, then the CPU.")
    upscale.add_argument("input", metavar="INPUT", help="an image file or a folder of images")
    upscale.add_argument("--model", required=True, help="model id (python main.py models) or a .pth/.safetensors file")
    upscale.add_argument("--scale", type=float, default=None, help="output scale (default: the model's own)")
    upscale.add_argument("--tile", default="auto", help="tile side in px, 0 for none, or auto (default)")
    upscale.add_argument("--overlap", type=int, default=16, help="context px around each tile (default 16)")
    upscale.add_argument("--tta", action="store_true", help="average the 8 flips and rotations (8x slower)")
    upscale.add_argument("--alpha", choices=("bicubic", "model"), default="bicubic",
                         help="how transparency is enlarged (default bicubic)")
    upscale.add_argument("--precision", choices=("auto", "fp32", "fp16", "bf16"), default="auto")
    upscale.add_argument("--out", required=True, help="output .png/.jpg, or a folder for a folder INPUT")
    upscale.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import time
    from pathlib import Path

    from engine.device import pick_device
    from engine.errors import Cancelled, check
    from engine.images import READ_SUFFIXES
    from engine.models.superres import load_sr_model
    from engine.ops.upscale import UpscaleOptions, upscale_file

    check(args.tile == "auto" or args.tile.isdigit(), f"--tile must be a size in px, 0 or auto. Got: {args.tile}")
    source, out = Path(args.input), Path(args.out)
    check(source.exists(), f"{source}: no such file or folder")
    if source.is_dir():
        jobs = [p for p in sorted(source.iterdir()) if p.is_file() and p.suffix.lower() in READ_SUFFIXES]
        check(bool(jobs), f"{source}: no images ({', '.join(READ_SUFFIXES)}) in this folder")
        check(not out.suffix or out.is_dir(), f"a folder INPUT needs an output folder. Got: {out}")
        out.mkdir(parents=True, exist_ok=True)
        targets = [out / (p.name if p.suffix.lower() in (".png", ".jpg", ".jpeg") else p.stem + ".png") for p in jobs]
    else:
        jobs, targets = [source], [out / f"{source.stem}.png" if out.is_dir() else out]
    model = load_sr_model(args.model)
    options = UpscaleOptions(scale=args.scale, tile=args.tile if args.tile == "auto" else int(args.tile),
                             overlap=args.overlap, tta=args.tta, precision=args.precision, alpha=args.alpha,
                             device=pick_device(args.device).device)
    print(f"model: {model.summary()}", file=sys.stderr)
    skipped = []
    for index, (path, target) in enumerate(zip(jobs, targets), 1):
        label, last = f"[{index}/{len(jobs)}] {path.name}", [0.0]

        def bar(step: int, total: int, message: str, preview: object = None) -> None:
            if step < total and time.monotonic() - last[0] < 0.2:
                return  # a redraw per tile would flood a slow terminal
            last[0] = time.monotonic()
            filled = round(24 * step / total)
            print(f"\r{label} [{'#' * filled}{'.' * (24 - filled)}] {step}/{total} tiles",
                  end="" if step < total else "\n", file=sys.stderr, flush=True)

        try:
            result = upscale_file(model, path, target, options, progress=bar)
        except Cancelled:
            raise
        except GanvasError as exc:
            if len(jobs) == 1:
                raise
            print(f"skipped: {exc if str(path) in str(exc) else f'{path}: {exc}'}", file=sys.stderr)
            skipped.append(path)
            continue
        notes = "; ".join(result.fallbacks)
        print(f"wrote {target} (x{options.scale or model.scale:g}, {result.tiles} tile(s) of "
              f"{result.tile or 'whole image'}, {result.device} {result.precision}, {result.seconds:.1f} s"
              f"{'; ' + notes if notes else ''})")
    if skipped:
        print(f"upscaled {len(jobs) - len(skipped)} of {len(jobs)}; skipped {len(skipped)}", file=sys.stderr)
        return 1
    return 0
