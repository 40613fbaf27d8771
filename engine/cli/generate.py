"""``generate``: draw an image from a generator by seed."""

from __future__ import annotations

import argparse

def add_command(commands: argparse._SubParsersAction) -> None:
    generate = commands.add_parser("generate", help="draw an image from a generator")
    generate.add_argument("--model", required=True, help="model id or checkpoint file (.pkl, .pt, .safetensors)")
    generate.add_argument("--seed", type=int, default=0, help="random seed (as in NVIDIA's gen_images.py)")
    generate.add_argument("--psi", type=float, default=1.0, help="truncation psi: 1 = none, 0.7 = typical")
    generate.add_argument("--cutoff", type=int, default=None, help="truncate only the first N layers")
    generate.add_argument("--class", dest="class_index", type=int, default=None, help="class of a conditional model")
    generate.add_argument("--noise", choices=("const", "random", "none"), default="const")
    generate.add_argument("--out", required=True, help="output image (.png or .jpg)")
    generate.add_argument("--save-latent", metavar="NPZ", default=None, help="also save the latent ws")
    generate.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
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
