"""Labelled face data sets for the house generator: DiceBear avatars or parametric faces.

DiceBear (https://www.dicebear.com, MIT) turns a style definition and a seed string
into an SVG avatar, deterministically, and reports every option it picked (hair,
hair colour, skin, eyes, mouth, glasses, beard, background ...). We rasterise the
SVG with resvg (no Qt) and keep those option values as integer-coded labels, so
later features can fit edit directions from them. ``--style parametric`` uses the
dependency-free renderer of :mod:`engine.training.faces` instead.

Output: one uncompressed ``.npz`` with ``images`` ``(N, H, W, 3)`` ``uint8``, one
``label_<name>`` array per attribute and a JSON ``meta`` string (vocabularies,
settings, licence card). :func:`load_dataset` memory-maps the images.

    python -m engine.training.dataset --style avataaars --count 30000 --size 64 --out data/house.npz
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import json
import multiprocessing
import os
import struct
import sys
import time
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from engine.errors import GanvasError, ModelNotFound, check
from engine.jobs import CancelToken, Job, Progress

# The style the shipped house generator is trained on, and the credit the About box
# shows; tests check this text against the licence block inside dicebear-styles.
HOUSE_STYLE = "avataaars"
HOUSE_DATA_CREDIT = (
    "The house face generator was trained on avatars of the \u201cAvataaars\u201d style "
    "by Pablo Stanley (https://avataaars.com/), free for personal and commercial use, "
    "rendered with DiceBear (https://www.dicebear.com, MIT licence)."
)
PARAMETRIC = "parametric"


@dataclass(frozen=True)
class RenderSettings:
    """How each avatar is drawn; stored in the data set's ``meta``."""

    size: int = 64
    # Zoom on the head: unzoomed, shoulders and clothes fill a third of a 64 px frame
    # and the eyes and mouth are 2-3 pixels tall.
    scale: float = 1.3
    translate_y: float = 8.0  # percent of the canvas; recentres the zoomed head
    backgrounds: tuple[str, ...] = ("b6e3f4", "c0aede", "d1d4f9", "ffd5dc", "ffdfbf")
    # Raise the style's default 10 % for glasses and beards so each attribute has
    # enough examples to fit an edit direction; a few heads are bald.
    probabilities: tuple[tuple[str, int], ...] = (("accessories", 35), ("facialHair", 30), ("top", 92))


@dataclass(frozen=True)
class StyleCard:
    """Licence and authorship of one DiceBear style, read from its definition file."""

    style: str
    title: str
    licence: str
    licence_url: str
    attribution: str
    creator: str
    creator_url: str
    source_url: str
    package: str


@dataclass
class LabelledImages:
    """Images with per-image labels.

    ``images``: ``(N, H, W, 3)`` ``uint8`` RGB (possibly a read-only memmap).
    ``labels``: name -> ``(N,)`` array; ``int16`` codes into ``vocab[name]`` for
    categorical labels, ``float32`` values for continuous ones.
    """

    images: np.ndarray
    labels: dict[str, np.ndarray]
    vocab: dict[str, list[str]] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def decode(self, name: str, index: int) -> str | float:
        """The label ``name`` of image ``index`` as the option value it encodes."""
        value = self.labels[name][index]
        if name in self.vocab:
            return self.vocab[name][int(value)]
        return float(value)


def available_styles() -> list[str]:
    """Names of the DiceBear styles that the installed ``dicebear-styles`` ships."""
    from importlib.resources import files

    return sorted(p.name[: -len(".json")] for p in files("dicebear_styles").iterdir() if p.name.endswith(".json"))


def load_style_definition(style: str) -> dict[str, Any]:
    """The JSON definition of a DiceBear style; raises ModelNotFound for an unknown name."""
    try:
        from importlib.resources import files

        resource = files("dicebear_styles").joinpath(f"{style}.json")
    except ModuleNotFoundError as exc:
        raise GanvasError(f"rendering DiceBear avatars needs the 'train' extra (dicebear-styles). Got: {exc}") from exc
    check(
        resource.is_file(),
        f"unknown DiceBear style {style!r}; available: {', '.join(available_styles())}. Got: {style!r}",
        ModelNotFound,
    )
    return json.loads(resource.read_text("utf-8"))


def style_card(style: str) -> StyleCard:
    """The licence, author and source of ``style`` as its definition states them."""
    from importlib.metadata import version

    meta = load_style_definition(style)["meta"]
    return StyleCard(
        style=style,
        title=meta.get("source", {}).get("name", style),
        licence=meta["license"]["name"],
        licence_url=meta["license"].get("url", ""),
        attribution=meta["license"].get("text", ""),
        creator=meta.get("creator", {}).get("name", ""),
        creator_url=meta.get("creator", {}).get("url", ""),
        source_url=meta.get("source", {}).get("url", ""),
        package=f"dicebear-styles {version('dicebear-styles')}",
    )


def label_vocabulary(definition: dict[str, Any], settings: RenderSettings) -> dict[str, list[str]]:
    """Every value each label can take, ``"none"`` first (component absent or colour unused).

    Keys are DiceBear option names: ``<component>Variant`` and ``<colour>Color``.
    """
    vocab: dict[str, list[str]] = {}
    for name, component in definition["components"].items():
        if "extends" in component:
            continue
        vocab[f"{name}Variant"] = ["none", *sorted(component.get("variants", {}))]
    for name, colour in definition.get("colors", {}).items():
        vocab[f"{name}Color"] = ["none", *_unique([_hex(v) for v in colour.get("values", [])])]
    vocab["backgroundColor"] = ["none", *_unique([_hex(v) for v in settings.backgrounds])]
    return vocab


def _unique(values: list[str]) -> list[str]:
    return list(dict.fromkeys(values))


def _hex(colour: str) -> str:
    return "#" + colour.lstrip("#").lower()


def avatar_options(seed: str, settings: RenderSettings) -> dict[str, Any]:
    """The DiceBear options for one avatar; ``seed`` decides every random pick."""
    options: dict[str, Any] = {
        "seed": seed,
        "size": settings.size,
        "scale": settings.scale,
        "translateY": settings.translate_y,
        "backgroundColor": list(settings.backgrounds),
    }
    for component, percent in settings.probabilities:
        options[f"{component}Probability"] = percent
    return options


def render_avatar(style: Any, seed: str, settings: RenderSettings) -> tuple[np.ndarray, dict[str, str]]:
    """Render one avatar.

    Args:
        style: a ``dicebear.Style``.
        seed: the DiceBear seed string.
        settings: size, zoom, backgrounds and probabilities.

    Returns:
        ``(size, size, 3)`` ``uint8`` RGB image, and the picked option values
        (``<component>Variant`` and ``<colour>Color`` keys only).
    """
    import resvg_py
    from dicebear import Avatar
    from PIL import Image

    avatar = Avatar(style, avatar_options(seed, settings))
    png = resvg_py.svg_to_bytes(
        svg_string=avatar.to_string(), width=settings.size, height=settings.size, skip_system_fonts=True
    )
    image = np.asarray(Image.open(io.BytesIO(bytes(png))).convert("RGB"))
    picked: dict[str, str] = {}
    for key, value in avatar.to_json()["options"].items():
        if key.endswith("Variant"):
            picked[key] = str(value)
        elif key.endswith("Color") and value:
            picked[key] = _hex(value[0])
    return image, picked


# Worker processes keep the parsed style between chunks; parsing costs ~50 ms.
_WORKER_STYLE: Any = None


def _init_worker(style_name: str) -> None:
    global _WORKER_STYLE
    from dicebear import Style

    _WORKER_STYLE = Style(load_style_definition(style_name))


def _render_chunk(args: tuple[int, int, int, RenderSettings]) -> tuple[np.ndarray, list[dict[str, str]]]:
    start, stop, seed, settings = args
    images = np.empty((stop - start, settings.size, settings.size, 3), dtype=np.uint8)
    picks = []
    for i in range(start, stop):
        images[i - start], picked = render_avatar(_WORKER_STYLE, f"{seed}-{i}", settings)
        picks.append(picked)
    return images, picks


def _chunks(count: int, seed: int, settings: RenderSettings, chunk: int) -> Iterator[tuple[int, int, int, RenderSettings]]:
    for start in range(0, count, chunk):
        yield start, min(start + chunk, count), seed, settings


def build_dicebear(
    style: str,
    count: int,
    settings: RenderSettings = RenderSettings(),
    seed: int = 0,
    workers: int = 1,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
) -> LabelledImages:
    """Render ``count`` labelled avatars of a DiceBear ``style``.

    Image ``i`` uses the DiceBear seed ``"{seed}-{i}"``, so the result does not
    depend on ``workers``. Labels are ``int16`` codes into ``vocab``.
    """
    check(count >= 1, f"avatar count must be at least 1. Got: {count}")
    check(settings.size >= 8, f"avatar size must be at least 8 pixels. Got: {settings.size}")
    definition = load_style_definition(style)
    vocab = label_vocabulary(definition, settings)
    images = np.empty((count, settings.size, settings.size, 3), dtype=np.uint8)
    codes = {name: np.zeros(count, dtype=np.int16) for name in vocab}
    job = Job(count, progress, cancel)
    # Chunks small enough for regular progress and balanced workers, large enough to amortise IPC.
    tasks = _chunks(count, seed, settings, chunk=min(250, max(1, count // (4 * max(1, workers)))))
    done = 0

    def consume(result: tuple[np.ndarray, list[dict[str, str]]]) -> None:
        nonlocal done
        chunk_images, picks = result
        images[done : done + len(picks)] = chunk_images
        for offset, picked in enumerate(picks):
            for name, value in picked.items():
                # A value the definition does not list (a future style revision)
                # extends the vocabulary rather than being dropped.
                values = vocab.setdefault(name, ["none"])
                codes.setdefault(name, np.zeros(count, dtype=np.int16))
                if value not in values:
                    values.append(value)
                codes[name][done + offset] = values.index(value)
        done += len(picks)
        job.step(done, f"rendered {done}/{count} avatars")

    if workers <= 1:
        _init_worker(style)
        for task in tasks:
            job.check()
            consume(_render_chunk(task))
    else:
        # spawn, not fork: the caller may hold torch threads that fork would copy.
        context = multiprocessing.get_context("spawn")
        with context.Pool(workers, initializer=_init_worker, initargs=(style,)) as pool:
            for result in pool.imap(_render_chunk, tasks):
                consume(result)
    card = style_card(style)
    meta = {
        "kind": "dicebear",
        "style": style,
        "count": count,
        "seed": seed,
        "settings": dataclasses.asdict(settings),
        "card": dataclasses.asdict(card),
    }
    return LabelledImages(images, codes, vocab, meta)


def build_parametric(
    count: int,
    size: int = 64,
    seed: int = 0,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
) -> LabelledImages:
    """Render ``count`` parametric faces (:mod:`engine.training.faces`) with float labels."""
    from engine.training.faces import render_faces

    job = Job(count, progress, cancel)
    job.check()
    images, labels = render_faces(count, size, seed)
    job.step(count, f"rendered {count}/{count} faces")
    meta = {"kind": PARAMETRIC, "style": PARAMETRIC, "count": count, "seed": seed, "settings": {"size": size}}
    return LabelledImages(images, labels, {}, meta)


def save_dataset(data: LabelledImages, path: str | os.PathLike[str]) -> Path:
    """Write ``data`` to one uncompressed ``.npz`` atomically (temporary file, then rename).

    Uncompressed so that :func:`load_dataset` can memory-map the images.
    """
    path = Path(path)
    check(path.suffix == ".npz", f"the data set file must end in .npz. Got: {str(path)!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = dict(data.meta, vocab=data.vocab, labels=sorted(data.labels))
    arrays = {"images": np.ascontiguousarray(data.images), "meta": np.array(json.dumps(meta))}
    arrays.update({f"label_{name}": values for name, values in data.labels.items()})
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as handle:
        np.savez(handle, **arrays)
    os.replace(tmp, path)
    return path


def _memmap_npz_member(path: Path, member: str) -> np.ndarray | None:
    """Memory-map one stored (uncompressed) ``.npy`` member of a zip; None if compressed."""
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo(member)
    if info.compress_type != zipfile.ZIP_STORED:
        return None
    with open(path, "rb") as handle:
        handle.seek(info.header_offset)
        local_header = handle.read(30)
        name_length, extra_length = struct.unpack("<HH", local_header[26:30])
        handle.seek(info.header_offset + 30 + name_length + extra_length)
        major, _ = np.lib.format.read_magic(handle)
        read_header = np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
        shape, fortran_order, dtype = read_header(handle)
        offset = handle.tell()
    return np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape, order="F" if fortran_order else "C")


def load_dataset(path: str | os.PathLike[str], mmap: bool = True) -> LabelledImages:
    """Read a data set written by :func:`save_dataset`; images memory-mapped when ``mmap``."""
    path = Path(path)
    check(path.is_file(), f"data set file not found: {str(path)!r}. Got: no such file", ModelNotFound)
    try:
        with np.load(path, allow_pickle=False) as archive:
            meta = json.loads(str(archive["meta"]))
            labels = {name: archive[f"label_{name}"] for name in meta["labels"]}
            images = _memmap_npz_member(path, "images.npy") if mmap else None
            if images is None:
                images = archive["images"]
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
        raise GanvasError(f"{str(path)!r} is not a GANvas data set (.npz with images, labels, meta). Got: {exc}") from exc
    vocab = meta.pop("vocab")
    meta.pop("labels")
    return LabelledImages(images, labels, vocab, meta)


def _print_progress(step: int, total: int, message: str, preview: Any | None = None) -> None:
    sys.stderr.write(f"\r{message} ({100.0 * step / total:5.1f} %)")
    sys.stderr.flush()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Render a labelled face data set for the house generator.")
    parser.add_argument("--style", default=HOUSE_STYLE, help=f"DiceBear style name, or '{PARAMETRIC}'")
    parser.add_argument("--count", type=int, default=30000)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--out", type=Path, default=Path("data/house.npz"))
    args = parser.parse_args(argv)
    start = time.perf_counter()
    if args.style == PARAMETRIC:
        data = build_parametric(args.count, args.size, args.seed, progress=_print_progress)
    else:
        settings = RenderSettings(size=args.size)
        data = build_dicebear(args.style, args.count, settings, args.seed, args.workers, progress=_print_progress)
    save_dataset(data, args.out)
    sys.stderr.write(f"\nwrote {len(data)} images and {len(data.labels)} labels to {args.out} "
                     f"in {time.perf_counter() - start:.1f} s\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
