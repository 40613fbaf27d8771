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
