"""The command line: one parser for ``main.py``, and the headless commands behind it.

``python main.py`` with no command opens the app (``gui/``); each subcommand runs
through ``engine`` alone, so everything the app does, a script can do.
"""

from __future__ import annotations

import argparse
import logging
import sys

from engine import __version__
from engine.errors import GanvasError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ganvas",
        description="GANvas: an image editor whose tools are generative models. "
        "Without a command it opens the app.",
    )
    parser.add_argument("--version", action="version", version=f"GANvas {__version__}")
    parser.add_argument("--device", default=None, help="auto (default), cuda, cuda:N, mps or cpu")
    parser.add_argument("--open", metavar="IMAGE", default=None, help="open this image in the app")
    parser.add_argument("--model", default=None, help="model id or checkpoint file to load at start-up")
    parser.add_argument(
        "--screenshot",
        metavar="PNG",
        default=None,
        help="open the window (offscreen if there is no display), wait for start-up work, "
        "save a PNG of it and exit",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    models = commands.add_parser("models", help="list the models available by id")
    models.set_defaults(run=_models)

    generate = commands.add_parser("generate", help="draw an image from a generator")
    generate.add_argument("--model", required=True, help="model id or checkpoint file (.pkl, .pt, .safetensors)")
    generate.add_argument("--seed", type=int, default=0, help="random seed (as in NVIDIA's gen_images.py)")
    generate.add_argument("--psi", type=float, default=1.0, help="truncation psi: 1 = none, 0.7 = typical")
    generate.add_argument("--cutoff", type=int, default=None, help="truncate only the first N layers")
    generate.add_argument("--class", dest="class_index", type=int, default=None, help="class of a conditional model")
    generate.add_argument("--noise", choices=("const", "random", "none"), default="const")
    generate.add_argument("--out", required=True, help="output image (.png or .jpg)")
    generate.add_argument("--save-latent", metavar="NPZ", default=None, help="also save the latent ws")
    generate.set_defaults(run=_generate)
    _add_edit_command(commands)
    _add_upscale_command(commands)
    _add_invert_command(commands)
    return parser


def _models(args: argparse.Namespace) -> int:
    from engine.models.catalog import available, search_dirs

    entries = available()
    if not entries:
        print("no models found in: " + ", ".join(str(d) for d in search_dirs()))
        return 0
    width = max(len(e.id) for e in entries)
    for entry in entries:
        print(f"{entry.id:<{width}}  {entry.kind:<12} {entry.size_mb:7.1f} MB  {entry.title}")
        print(f"{'':<{width}}  {entry.path}")
    return 0


def _generate(args: argparse.Namespace) -> int:
    import numpy as np

    from engine.device import pick_device
    from engine.images import save_image
    from engine.models.catalog import resolve
    from engine.models.checkpoint import load_generator
    from engine.ops.generate import sample

    device = pick_device(args.device).device
    G = load_generator(resolve(args.model), device=device)
    result = sample(G, args.seed, args.psi, args.cutoff, args.class_index, args.noise)
    save_image(args.out, result.image)
    if args.save_latent:
        np.savez(args.save_latent, ws=result.ws.numpy(), seed=args.seed, psi=args.psi, model=str(args.model))
    print(f"wrote {args.out} ({result.image.shape[1]} x {result.image.shape[0]}, seed {args.seed}, psi {args.psi})")
    return 0


def _add_edit_command(commands: argparse._SubParsersAction) -> None:
    edit = commands.add_parser(
        "edit", help="move a latent along a direction, or interpolate two latents",
        description="Edit LATENT.npz (from generate --save-latent) and write an image, or a .gif/.mp4 "
        "of an edit sweep (-S .. S) or of an interpolation.")
    edit.add_argument("latent", metavar="LATENT.npz", help="latent file with key ws, (1, num_ws, w_dim)")
    edit.add_argument("--model", required=True, help="model id or checkpoint file the latent belongs to")
    edit.add_argument("--direction", default=None,
                      help="a shipped direction name, ganspace:K, sefa:K or an InterFaceGAN boundary .npy")
    edit.add_argument("--strength", type=float, default=1.0,
                      help="in standard deviations of w along the direction (default 1)")
    edit.add_argument("--layers", default=None, help="w slots A-B (inclusive), A, or coarse / middle / fine")
    edit.add_argument("--interpolate", metavar="B.npz", default=None, help="second latent: write an interpolation")
    edit.add_argument("--frames", type=int, default=30, help="frames of an animation (default 30)")
    edit.add_argument("--fps", type=float, default=24.0)
    edit.add_argument("--slerp", action="store_true", help="spherical interpolation about w_avg")
    edit.add_argument("--out", required=True, help="output .png/.jpg, or .gif/.mp4 for an animation")
    edit.add_argument("--save-latent", metavar="NPZ", default=None, help="also save the edited latent ws")
    edit.set_defaults(run=_edit)


def _read_latent(path: str, num_ws: int, w_dim: int) -> torch.Tensor:
    import numpy as np
    import torch

    from engine.errors import check

    try:
        with np.load(path, allow_pickle=False) as archive:
            ws = archive["ws"].astype(np.float32)
    except (OSError, ValueError, KeyError) as exc:
        raise GanvasError(f"{path}: not a latent file with a 'ws' array. Got: {type(exc).__name__}: {exc}") from None
    check(ws.size == num_ws * w_dim, f"{path}: ws must be (1, {num_ws}, {w_dim}) for this model. Got: {ws.shape}")
    return torch.from_numpy(ws.reshape(1, num_ws, w_dim))


def _edit(args: argparse.Namespace) -> int:
    from pathlib import Path

    import numpy as np
    import torch

    from engine.errors import check
    from engine.images import save_image
    from engine.models.catalog import resolve
    from engine.models.checkpoint import load_generator
    from engine.ops.edit import (ANIMATION_SUFFIXES, DirectionLibrary, apply_edits, export_animation,
                                 interpolation_latents, parse_layers, sweep_latents)
    from engine.ops.generate import render

    weights = resolve(args.model)
    G = load_generator(weights)
    ws = _read_latent(args.latent, G.num_ws, G.w_dim)
    animated = Path(args.out).suffix.lower() in ANIMATION_SUFFIXES
    check((args.direction is None) != (args.interpolate is None),
          f"give exactly one of --direction and --interpolate. Got: {args.direction!r}, {args.interpolate!r}")

    def report(step: int, total: int, message: str, preview: object = None) -> None:
        print(f"\r{message}", end="" if step < total else "\n", file=sys.stderr, flush=True)

    if args.interpolate is not None:
        check(animated, f"an interpolation is written as {' or '.join(ANIMATION_SUFFIXES)}. Got: {args.out}")
        other = _read_latent(args.interpolate, G.num_ws, G.w_dim)
        latents = interpolation_latents(ws, other, args.frames, args.slerp, center=G.w_avg.cpu())
        export_animation(args.out, G, latents, args.fps, progress=report)
        print(f"wrote {args.out} ({args.frames} frames, {'slerp' if args.slerp else 'linear'})")
        return 0
    layers = parse_layers(args.layers, G.num_ws) if args.layers else None
    direction = DirectionLibrary.for_weights(G, weights).get(args.direction, layers)
    stack = [direction.edit(args.strength, layers)]
    if animated:
        strengths = np.linspace(-args.strength, args.strength, args.frames).tolist()
        export_animation(args.out, G, sweep_latents(ws, stack, 0, strengths), args.fps, progress=report)
        print(f"wrote {args.out} ({args.frames} frames, {direction.name} from {-args.strength} to {args.strength})")
        return 0
    edited = apply_edits(ws, stack)
    save_image(args.out, render(G, edited))
    if args.save_latent:
        np.savez(args.save_latent, ws=edited.numpy(), model=str(args.model), direction=direction.name,
                 strength=args.strength)
    span = f"slots {stack[0].layers[0]}-{stack[0].layers[1] - 1}" if stack[0].layers else "all slots"
    print(f"wrote {args.out} ({direction.name}, strength {args.strength} x {direction.scale:.3g}, {span})")
    return 0


def _add_upscale_command(commands: argparse._SubParsersAction) -> None:
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
    upscale.set_defaults(run=_upscale)


def _upscale(args: argparse.Namespace) -> int:
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


def _add_invert_command(commands: argparse._SubParsersAction) -> None:
    invert = commands.add_parser(
        "invert", help="find the latent of a photo; inpaint, colourise or super-resolve with a GAN prior",
        description="Search the model's latent space for IMAGE (a non-square image is center-cropped, then "
        "resized to the model resolution). --task picks the forward operator: inpaint needs --mask (white = "
        "hole to fill); colorize fits the luma; superres fits IMAGE shrunk by --scale (an IMAGE smaller than "
        "the model is taken as the low-resolution photo itself).")
    invert.add_argument("image", metavar="IMAGE", help="the photo (.png, .jpg, ...)")
    invert.add_argument("--model", required=True, help="model id or checkpoint file (.pkl, .pt, .safetensors)")
    invert.add_argument("--mode", choices=("w", "w+", "pti"), default="w+", help="latent space (default w+)")
    invert.add_argument("--task", choices=("invert", "inpaint", "colorize", "superres"), default="invert")
    invert.add_argument("--mask", metavar="MASK.png", default=None, help="inpainting mask: white = hole to fill")
    invert.add_argument("--scale", type=int, default=4, help="super-resolution factor (default 4)")
    invert.add_argument("--steps", type=int, default=None, help="latent search steps (default 500)")
    invert.add_argument("--pti-steps", type=int, default=None, help="PTI weight-tuning steps (default 400)")
    invert.add_argument("--seed", type=int, default=0)
    invert.add_argument("--out", required=True, help="the reconstruction (.png or .jpg)")
    invert.add_argument("--save-latent", metavar="NPZ", default=None,
                        help="save ws (1, num_ws, w_dim), and PTI's tuned weight deltas as delta.<name>")
    invert.add_argument("--json", action="store_true", help="print one JSON line of quality figures")
    invert.set_defaults(run=_invert)


def _invert_inputs(args: argparse.Namespace, resolution: int) -> tuple:
    """(target, truth, operator, notes) for the invert command; the image edge is handled here."""
    import cv2
    import numpy as np
    import torch

    from engine.errors import check
    from engine.images import load_image
    from engine.ops import degrade

    def square(pixels):
        h, w = pixels.shape[:2]
        s = min(h, w)
        return pixels[(h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s]

    def resize(pixels, side):
        if pixels.shape[0] == side:
            return pixels
        shrink = pixels.shape[0] > side  # area averaging to shrink, bicubic to enlarge
        return cv2.resize(pixels, (side, side), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)

    photo = load_image(args.image).to_uint8()
    notes = []
    if photo.shape[0] != photo.shape[1]:
        notes.append(f"center-cropped {photo.shape[1]} x {photo.shape[0]} to a square")
    pixels = square(photo)
    if args.task == "superres":
        op = degrade.downsampling(resolution, args.scale)
        if pixels.shape[0] < resolution:  # a real low-resolution photo: the observation itself
            notes.append(f"taken as the low-resolution observation ({resolution // args.scale} px)")
            return resize(pixels, resolution // args.scale), None, op, notes
        truth = resize(pixels, resolution)
        notes.append(f"resized to {resolution} px and shrunk x{args.scale} to simulate the low-resolution input")
        return truth, truth, op, notes
    if pixels.shape[0] != resolution:
        notes.append(f"resized {pixels.shape[0]} px to the model's {resolution} px")
    truth = resize(pixels, resolution)
    if args.task == "inpaint":
        check(args.mask is not None, "inpainting needs --mask MASK.png (white = hole). Got: no mask")
        hole = square(load_image(args.mask).to_uint8()).mean(axis=2).astype(np.float32) / 255.0
        hole = cv2.resize(hole, (resolution, resolution), interpolation=cv2.INTER_AREA)
        return truth, truth, degrade.masked(torch.from_numpy((hole < 0.5).astype(np.float32))), notes
    check(args.mask is None, f"--mask is for --task inpaint. Got: --task {args.task}")
    op = degrade.greyscale(resolution) if args.task == "colorize" else degrade.identity(resolution)
    return truth, truth, op, notes


def _invert(args: argparse.Namespace) -> int:
    import json
    import sys
    from dataclasses import replace

    import numpy as np

    from engine.device import pick_device
    from engine.images import save_image
    from engine.models.catalog import resolve
    from engine.models.checkpoint import load_discriminator, load_generator
    from engine.ops.invert import InvertConfig, invert

    device = pick_device(args.device).device
    path = resolve(args.model)
    G = load_generator(path, device=device)
    try:
        D = load_discriminator(path, device=device)
    except GanvasError:
        D = None  # only used when the distance's D-feature term is switched on
    target, truth, op, notes = _invert_inputs(args, int(G.img_resolution))
    cfg = replace(InvertConfig(), mode=args.mode, seed=args.seed)
    cfg = replace(cfg, steps=args.steps) if args.steps is not None else cfg
    cfg = replace(cfg, pti_steps=args.pti_steps) if args.pti_steps is not None else cfg

    def progress(step: int, total: int, message: str, preview=None) -> None:
        if not args.json and (step % 50 == 0 or step == total):
            print(f"  {message}", file=sys.stderr)

    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    result = invert(G, target, op, cfg, truth=truth, D=D, progress=progress)
    save_image(args.out, result.image)
    if args.save_latent:
        deltas = {f"delta.{k}": v.numpy() for k, v in (result.weights_delta or {}).items()}
        np.savez(args.save_latent, ws=result.ws.numpy(), mode=args.mode, model=str(args.model), **deltas)
    figures = {"psnr": round(result.psnr, 3), "ssim": round(result.ssim, 4),
               "lpips": None if result.lpips is None else round(result.lpips, 4),
               "seconds": round(result.seconds, 2), "steps": result.steps, "distance": result.distance,
               "psnr_unseen": None if result.psnr_unseen is None else round(result.psnr_unseen, 3),
               "task": args.task, "mode": args.mode}
    if args.json:
        print(json.dumps(figures))
    else:
        against = "the input" if truth is not None else "the low-resolution input"
        print(f"wrote {args.out}: PSNR {result.psnr:.2f} dB, SSIM {result.ssim:.3f} against {against}, "
              f"{result.steps} steps in {result.seconds:.1f} s, distance {result.distance}")
    return 0


def run_command(args: argparse.Namespace) -> int:
    """Run a parsed subcommand; a GanvasError becomes a one-line message and exit code 1."""
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    try:
        return args.run(args)
    except GanvasError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
