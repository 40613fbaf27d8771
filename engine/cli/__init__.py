"""The command line: one parser for ``main.py``, and the headless commands behind it.

``python main.py`` with no command opens the app (``gui/``); each subcommand runs
through ``engine`` alone, so everything the app does, a script can do. One module per
command, each with ``add_command(subparsers)`` setting ``run``; the heavy imports wait
inside ``run`` so that ``--help`` and the app start quickly.
"""

from __future__ import annotations

import argparse
import logging
import sys

from engine import __version__
from engine.cli import drag, edges, edit, generate, invert, models, sketch, upscale
from engine.errors import GanvasError

COMMANDS = (models, generate, edit, drag, invert, sketch, edges, upscale)


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
    for command in COMMANDS:
        command.add_command(commands)
    return parser


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
