"""``drag``: move handle points of a latent's image onto target points (DragGAN, ``engine.ops.drag``)."""

from __future__ import annotations

import argparse
import sys


def add_command(commands: argparse._SubParsersAction) -> None:
    drag = commands.add_parser(
        "drag", help="drag points of a latent's image to new places (DragGAN)",
        description="Move the image of LATENT.npz (from generate --save-latent) so that each handle point lands "
        "on its target, and write the result. Points are x,y pixels of the model's image, (0, 0) the top-left "
        "pixel.")
    drag.add_argument("latent", metavar="LATENT.npz", help="latent file with key ws, (1, num_ws, w_dim)")
    drag.add_argument("--model", required=True, help="model id or checkpoint file the latent belongs to")
    drag.add_argument("--points", required=True, metavar="X,Y:TX,TY[;...]",
                      help='handle:target pairs, e.g. "30,40:36,40;20,22:20,18"')
    drag.add_argument("--mask", metavar="PNG", default=None,
                      help="white where the image may change; the rest is held in place")
    drag.add_argument("--steps", type=int, default=None, help="at most this many steps (default 300)")
    drag.add_argument("--mode", choices=("w+", "w"), default="w+", help="optimise W+ slots (default) or one w")
    drag.add_argument("--out", required=True, help="output image (.png or .jpg)")
    drag.add_argument("--save-latent", metavar="NPZ", default=None, help="also save the dragged latent ws")
    drag.add_argument("--json", action="store_true", help="print the outcome as JSON on stdout")
    drag.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import json

    import numpy as np

    from engine.cli.latent import read_latent
    from engine.device import pick_device
    from engine.images import load_image, save_image
    from engine.models.catalog import resolve
    from engine.models.checkpoint import load_generator
    from engine.ops.drag import DragConfig, drag, parse_points

    handles, targets = parse_points(args.points)
    G = load_generator(resolve(args.model), device=pick_device(args.device).device)
    ws = read_latent(args.latent, G.num_ws, G.w_dim)
    mask = None
    if args.mask:
        pixels = load_image(args.mask).rgb  # uint8 or uint16
        mask = pixels.max(axis=2) > np.iinfo(pixels.dtype).max // 2
    config = DragConfig(mode=args.mode)
    if args.steps is not None:
        config.max_steps = args.steps

    def report(step: int, total: int, message: str, preview: object = None) -> None:
        print(f"\r{message}   ", end="", file=sys.stderr, flush=True)

    result = drag(G, ws, handles, targets, mask, config, progress=report)
    print(file=sys.stderr)
    save_image(args.out, result.image)
    if args.save_latent:
        np.savez(args.save_latent, ws=result.latent.numpy(), model=str(args.model), points=args.points)
    final = result.distances[-1]
    if args.json:
        print(json.dumps({"out": args.out, "stopped": result.stopped, "steps": result.steps,
                          "seconds": round(result.seconds, 3), "handles": result.handles, "targets": result.targets,
                          "points": result.points, "distances": final}))
    else:
        gaps = ", ".join(f"{d:.1f}" for d in final)
        print(f"wrote {args.out} ({result.stopped} after {result.steps} steps, {result.seconds:.1f} s; "
              f"px to target: {gaps})")
    return 0
