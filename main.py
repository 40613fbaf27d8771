"""GANvas: open the app, or run a headless command (``python main.py --help``)."""

from __future__ import annotations

import sys

from engine.cli import build_parser, run_command


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command is not None:
        return run_command(args)
    from gui.app import run  # Qt is imported only when the window is wanted

    return run(args)


if __name__ == "__main__":
    sys.exit(main())
