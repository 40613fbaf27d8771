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
