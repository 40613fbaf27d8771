"""``models``: list the models available by id."""

from __future__ import annotations

import argparse

def add_command(commands: argparse._SubParsersAction) -> None:
    commands.add_parser("models", help="list the models available by id").set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
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
