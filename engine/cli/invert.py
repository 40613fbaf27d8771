"""``invert``: find the latent of a photo; inpaint, colourise or super-resolve with a GAN prior."""

from __future__ import annotations

import argparse
import sys

from engine.errors import GanvasError

def add_command(commands: argparse._SubParsersAction) -> None:
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
    invert.add_argument("--steps", type=int, default=None,
                        help="latent search steps (default 500; 200 when several samples are averaged)")
    invert.add_argument("--pti-steps", type=int, default=None, help="PTI weight-tuning steps (default 400)")
    invert.add_argument("--samples", type=int, default=None,
                        help="searches run together; the answer is the mean of their consistent images "
                             "(closer on average, softer; default 8 for superres with a generator up to 128 px, else 1)")
    invert.add_argument("--seed", type=int, default=0)
    invert.add_argument("--out", required=True, help="the reconstruction (.png or .jpg)")
    invert.add_argument("--save-latent", metavar="NPZ", default=None,
                        help="save ws (1, num_ws, w_dim), and PTI's tuned weight deltas as delta.<name>")
    invert.add_argument("--json", action="store_true", help="print one JSON line of quality figures")
    invert.set_defaults(run=run)


def invert_inputs(args: argparse.Namespace, resolution: int) -> tuple:
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


def run(args: argparse.Namespace) -> int:
    import json
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
    target, truth, op, notes = invert_inputs(args, int(G.img_resolution))
    cfg = replace(InvertConfig(), mode=args.mode, seed=args.seed)
    cfg = replace(cfg, steps=args.steps) if args.steps is not None else cfg
    cfg = replace(cfg, pti_steps=args.pti_steps) if args.pti_steps is not None else cfg
    cfg = replace(cfg, samples=args.samples) if args.samples is not None else cfg

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
               "task": args.task, "mode": args.mode,
               "samples": 1 if result.candidates is None else len(result.candidates)}
    if args.json:
        print(json.dumps(figures))
    else:
        against = "the input" if truth is not None else "the low-resolution input"
        print(f"wrote {args.out}: PSNR {result.psnr:.2f} dB, SSIM {result.ssim:.3f} against {against}, "
              f"{result.steps} steps in {result.seconds:.1f} s, distance {result.distance}")
    return 0
