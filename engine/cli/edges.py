"""``edges``: the Canny edge map of a photo, as ControlNet draws it (white lines on black)."""

from __future__ import annotations

import argparse


def add_command(commands: argparse._SubParsersAction) -> None:
    edges = commands.add_parser(
        "edges", help="Canny edge map of a photo (a sketch for 'sketch --kind edges')",
        description="Write the Canny edges of PHOTO, at its own size, as white lines on black (ControlNet's "
        "convention). Thresholds are on the 0-255 scale of OpenCV's Canny; ControlNet uses 100/200.")
    edges.add_argument("photo", metavar="PHOTO", help="the photo (.png, .jpg, ...)")
    edges.add_argument("--low", type=float, default=100.0, help="hysteresis low threshold (default 100)")
    edges.add_argument("--high", type=float, default=200.0, help="hysteresis high threshold (default 200)")
    edges.add_argument("--sigma", type=float, default=0.0, help="Gaussian blur first, in px (default 0: none)")
    edges.add_argument("--black-on-white", action="store_true", help="black lines on white instead")
    edges.add_argument("--out", required=True, help="the edge map (.png)")
    edges.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from engine.images import load_image, save_image
    from engine.ops.edges import canny_edges

    photo = load_image(args.photo).to_uint8()
    found = canny_edges(photo, args.low, args.high, args.sigma)
    lines = found if not args.black_on_white else ~found
    save_image(args.out, np.repeat((lines * 255).astype(np.uint8)[..., None], 3, axis=2))
    print(f"wrote {args.out}: {int(found.sum())} edge pixels ({100 * found.mean():.1f} %) at "
          f"{photo.shape[1]} x {photo.shape[0]}, thresholds {args.low:g}/{args.high:g}")
    return 0
