"""``sketch``: strokes or edges to image, by latent search on a GAN or feed-forward on an edge model."""

from __future__ import annotations

import argparse
import sys


def add_command(commands: argparse._SubParsersAction) -> None:
    sketch = commands.add_parser(
        "sketch", help="turn colour strokes or an edge drawing into an image",
        description="With a GAN (--model house-gan, a .pkl, ...) search its latent space for images that "
        "honour SKETCH and write the best of --candidates; with an edges-to-image model (house-edges, a "
        "pix2pix latest_net_G.pth) run it on the edges at once. --kind strokes: SKETCH's colours are wanted "
        "where it is opaque (a PNG with transparency) or everywhere (no transparency). --kind edges: SKETCH "
        "is a line drawing, white on black or black on white (main.py edges writes one). Without --kind it "
        "is read as edges when it has only two tones. A non-square SKETCH is center-cropped.")
    sketch.add_argument("sketch", metavar="SKETCH.png", help="the drawing")
    sketch.add_argument("--model", required=True, help="a GAN or an edges-to-image model (id or file)")
    sketch.add_argument("--kind", choices=("strokes", "edges"), default=None, help="what SKETCH holds")
    sketch.add_argument("--mask", metavar="KEEP.png", default=None,
                        help="white = keep these pixels of --source (default: of SKETCH for strokes)")
    sketch.add_argument("--source", metavar="PHOTO.png", default=None, help="the image whose pixels --mask keeps")
    sketch.add_argument("--candidates", type=int, default=None, help="GAN: results from different starts (4)")
    sketch.add_argument("--steps", type=int, default=None, help="GAN: search steps (300)")
    sketch.add_argument("--seed", type=int, default=0)
    sketch.add_argument("--out", required=True, help="the best result (.png); others go to OUT-2.png, ...")
    sketch.add_argument("--save-latent", metavar="NPZ", default=None, help="GAN: save the best ws")
    sketch.add_argument("--json", action="store_true", help="print one JSON line of figures")
    sketch.set_defaults(run=run)


def _square(pixels):
    h, w = pixels.shape[:2]
    s = min(h, w)
    return pixels[(h - s) // 2:(h - s) // 2 + s, (w - s) // 2:(w - s) // 2 + s]


def _two_tone(rgb) -> bool:
    """A line drawing: nearly every pixel is close to black or to white."""
    grey = rgb.astype(float).mean(axis=2)
    return bool(((grey < 40) | (grey > 215)).mean() > 0.98)


def read_drawing(args: argparse.Namespace):
    """(kind, Sketch, notes) from the command line's files, at SKETCH's (cropped) size."""
    import cv2
    import numpy as np

    from engine.errors import check
    from engine.images import load_image
    from engine.ops.edges import edges_from_drawing
    from engine.ops.sketch import Sketch

    image = load_image(args.sketch)
    rgb = _square(image.to_uint8())
    notes = [f"center-cropped {image.width} x {image.height} to a square"] if image.width != image.height else []
    alpha = None if image.alpha is None else _square(image.alpha)
    kind = args.kind or ("edges" if alpha is None and _two_tone(rgb) else "strokes")
    if args.kind is None:
        notes.append(f"read as {kind} (use --kind to choose)")
    drawing = Sketch()
    if kind == "edges":
        pixels = rgb if alpha is None else np.dstack([rgb, alpha])
        drawing.edges = edges_from_drawing(pixels)
        check(bool(drawing.edges.any()), f"{args.sketch}: no line found in the drawing. Got: a blank image")
    else:
        drawing.colour = rgb
        if alpha is not None:
            drawing.alpha = alpha.astype(np.float32) / (65535.0 if alpha.dtype == np.uint16 else 255.0)
    if args.mask is not None:
        side = rgb.shape[0]
        keep = _square(load_image(args.mask).to_uint8()).mean(axis=2) / 255.0
        drawing.keep = cv2.resize(keep.astype(np.float32), (side, side), interpolation=cv2.INTER_AREA) >= 0.5
        check(args.source is not None or kind == "strokes",
              "--mask with --kind edges needs --source PHOTO.png (an edge map has no pixels to keep). Got: none")
        source = rgb if args.source is None else _square(load_image(args.source).to_uint8())
        drawing.source = cv2.resize(source, (side, side), interpolation=cv2.INTER_AREA) \
            if source.shape[0] != side else source
    return kind, drawing, notes


def _other_paths(out: str, count: int) -> list[str]:
    from pathlib import Path

    path = Path(out)
    return [str(path.with_name(f"{path.stem}-{k}{path.suffix}")) for k in range(2, count + 1)]


def run(args: argparse.Namespace) -> int:
    import json

    from engine.errors import check
    from engine.models.catalog import available, resolve
    from engine.models.unet import is_unet_file

    path = resolve(args.model)
    kinds = {e.path.resolve(): e.kind for e in available()}
    feed_forward = kinds.get(path.resolve()) == "edges-to-image" or is_unet_file(path)
    kind, drawing, notes = read_drawing(args)
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    if feed_forward:
        check(kind == "edges", f"{args.model} turns edges into images; it cannot read strokes. Got: --kind {kind}")
        figures = _feed_forward(args, path, drawing)
    else:
        figures = _search(args, path, drawing)
    figures = {"kind": kind, **figures}
    if args.json:
        print(json.dumps(figures))
    else:
        extra = f", {len(figures['candidates'])} candidates" if len(figures.get("candidates", [])) > 1 else ""
        print(f"wrote {args.out} ({figures['route']}{extra}, {figures['seconds']:.1f} s)")
    return 0


def _feed_forward(args: argparse.Namespace, path, drawing) -> dict:
    import time

    import cv2

    from engine.device import pick_device
    from engine.images import save_image
    from engine.models.unet import load_unet, translate_edges
    from engine.ops.edges import canny_edges, edge_fscore, resize_edges

    net = load_unet(path, device=pick_device(args.device).device)
    start = time.perf_counter()
    image = translate_edges(net, drawing.edges)
    seconds = time.perf_counter() - start
    side = image.shape[0]
    if drawing.keep is not None:
        keep = cv2.resize(drawing.keep.astype("float32"), (side, side), interpolation=cv2.INTER_AREA)[..., None] >= 0.5
        source = cv2.resize(drawing.source, (side, side), interpolation=cv2.INTER_AREA)
        image = (keep * source + (1 - keep) * image).astype("uint8")
    save_image(args.out, image)
    f = edge_fscore(canny_edges(image), resize_edges(drawing.edges, side)).f
    return {"route": "feed-forward", "seconds": round(seconds, 3), "edge_f": round(f, 4)}


def _search(args: argparse.Namespace, path, drawing) -> dict:
    from dataclasses import replace

    import numpy as np

    from engine.device import pick_device
    from engine.images import save_image
    from engine.models.checkpoint import load_generator
    from engine.ops.edges import canny_edges, edge_fscore, resize_edges
    from engine.ops.sketch import SketchConfig, prepare, sketch, stroke_agreement

    G = load_generator(path, device=pick_device(args.device).device)
    cfg = replace(SketchConfig(), seed=args.seed)
    cfg = replace(cfg, steps=args.steps) if args.steps is not None else cfg
    if args.candidates is not None:
        cfg = replace(cfg, candidates=args.candidates, screen=max(cfg.screen, args.candidates))

    def progress(step: int, total: int, message: str, preview=None) -> None:
        if not args.json and (step % 50 == 0 or step == total):
            print(f"  {message}", file=sys.stderr)

    result = sketch(G, drawing, cfg, progress=progress)
    best = result.best
    save_image(args.out, best.image)
    for other, candidate in zip(_other_paths(args.out, len(result.candidates)), result.candidates[1:]):
        save_image(other, candidate.image)
    if args.save_latent:
        np.savez(args.save_latent, ws=best.ws.numpy(), model=str(args.model))
    side = best.image.shape[0]
    figures = {"route": "search", "seconds": round(result.seconds, 2), "steps": result.steps,
               "candidates": [{"loss": round(c.loss, 5), **{k: round(v, 5) for k, v in c.terms.items()}}
                              for c in result.candidates]}
    if drawing.edges is not None:
        figures["edge_f"] = round(edge_fscore(canny_edges(best.image), resize_edges(drawing.edges, side)).f, 4)
    if drawing.colour is not None:
        target = prepare(drawing, side, cfg)
        colour = ((target.colour[0].permute(1, 2, 0).numpy() + 1) * 127.5).round().astype(np.uint8)
        stroked = target.alpha[0, 0].numpy() >= 0.5
        if stroked.any():
            figures["stroke_agreement"] = round(stroke_agreement(best.image, colour, stroked), 4)
    return figures
