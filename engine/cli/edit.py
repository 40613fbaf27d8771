"""``edit``: move a latent along a direction, or interpolate two latents; images or animations."""

from __future__ import annotations

import argparse
import sys

from engine.cli.latent import read_latent

def add_command(commands: argparse._SubParsersAction) -> None:
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
    edit.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    import numpy as np

    from engine.errors import check
    from engine.images import save_image
    from engine.models.catalog import resolve
    from engine.models.checkpoint import load_generator
    from engine.ops.edit import (ANIMATION_SUFFIXES, DirectionLibrary, apply_edits, export_animation,
                                 interpolation_latents, parse_layers, sweep_latents)
    from engine.ops.generate import render

    weights = resolve(args.model)
    G = load_generator(weights)
    ws = read_latent(args.latent, G.num_ws, G.w_dim)
    animated = Path(args.out).suffix.lower() in ANIMATION_SUFFIXES
    check((args.direction is None) != (args.interpolate is None),
          f"give exactly one of --direction and --interpolate. Got: {args.direction!r}, {args.interpolate!r}")

    def report(step: int, total: int, message: str, preview: object = None) -> None:
        print(f"\r{message}", end="" if step < total else "\n", file=sys.stderr, flush=True)

    if args.interpolate is not None:
        check(animated, f"an interpolation is written as {' or '.join(ANIMATION_SUFFIXES)}. Got: {args.out}")
        other = read_latent(args.interpolate, G.num_ws, G.w_dim)
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
