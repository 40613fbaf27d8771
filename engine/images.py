"""Robust image files: load any common photo as RGB (+ alpha), save PNG/JPEG atomically.

Loading honours EXIF orientation, converts grey, palette, CMYK and 16-bit images to
RGB, keeps an alpha channel apart (super-resolution upscales it separately) and keeps
16-bit depth (so an upscale of a 16-bit photo stays 16-bit). It refuses an image above a
pixel limit *before* decoding it, and turns every decoder failure into an ``ImageError``
that names the file. Saving writes a temporary file in the target folder and renames
it, so a failed or cancelled save never leaves a half-written image behind.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image as PILImage
from PIL import ImageOps

from engine.errors import GanvasError, ImageError

# 100 megapixels: a 10 000 x 10 000 photo decodes to 300 MB of RGB; beyond that a
# desktop editor should ask the user to shrink first rather than freeze or run out.
DEFAULT_MAX_PIXELS = 100_000_000
READ_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".tif", ".tiff", ".bmp")
WRITE_SUFFIXES = (".png", ".jpg", ".jpeg")


@dataclass
class Image:
    """An RGB image at the API edge.

    ``rgb`` is ``(H, W, 3)`` ``uint8`` or ``uint16``; ``alpha`` is ``(H, W)`` of the same
    dtype or ``None``; ``source`` is the file it came from, if any.
    """

    rgb: np.ndarray
    alpha: np.ndarray | None = None
    source: Path | None = None

    @property
    def width(self) -> int:
        return self.rgb.shape[1]

    @property
    def height(self) -> int:
        return self.rgb.shape[0]

    @property
    def bit_depth(self) -> int:
        return 16 if self.rgb.dtype == np.uint16 else 8

    def to_uint8(self) -> np.ndarray:
        """The RGB pixels as ``(H, W, 3)`` ``uint8``."""
        return to_uint8(self.rgb)

    def to_float(self) -> np.ndarray:
        """The RGB pixels as ``(H, W, 3)`` ``float32`` in ``[0, 1]``."""
        scale = 65535.0 if self.rgb.dtype == np.uint16 else 255.0
        return self.rgb.astype(np.float32) / scale


def to_uint8(pixels: np.ndarray) -> np.ndarray:
    """Convert ``uint8``, ``uint16`` or ``float [0, 1]`` pixels to ``uint8``."""
    if pixels.dtype == np.uint8:
        return pixels
    if pixels.dtype == np.uint16:
        return ((pixels.astype(np.uint32) + 128) // 257).astype(np.uint8)
    if np.issubdtype(pixels.dtype, np.floating):
        return (np.clip(pixels, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    raise ImageError(f"unsupported pixel type. Got: {pixels.dtype}")


def load_image(path: str | os.PathLike, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image:
    """Read an image file into an :class:`Image`.

    Raises:
        ImageError: the file is missing, empty, not an image, truncated or corrupt, or
            has more than ``max_pixels`` pixels (checked from the header, before decoding).
    """
    path = Path(path)
    if not path.is_file():
        raise ImageError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise ImageError(f"{path}: the file is empty (0 bytes)")
    try:
        with warnings.catch_warnings():
            # PIL warns (DecompressionBombWarning) above its own limit; ours comes first.
            warnings.simplefilter("ignore", PILImage.DecompressionBombWarning)
            with PILImage.open(path) as im:
                width, height = im.size
                if width * height > max_pixels:
                    raise ImageError(
                        f"{path}: {width} x {height} pixels is above the limit of "
                        f"{max_pixels:,} pixels; shrink it first or raise the limit in the settings. "
                        f"Got: {width * height:,} pixels"
                    )
                im.load()
                if im.format in ("PNG", "TIFF"):
                    wide = _load_16bit(path)
                    if wide is not None:
                        return _orient(wide, im.getexif().get(_EXIF_ORIENTATION, 1))
                return _to_image(im, path)
    except ImageError:
        raise
    except PILImage.DecompressionBombError as exc:
        raise ImageError(f"{path}: image too large to decode safely ({exc})") from exc
    except PILImage.UnidentifiedImageError as exc:
        raise ImageError(f"{path}: not an image file, or a format GANvas cannot read") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        # PIL reports truncated and corrupt data as OSError ("image file is truncated").
        raise ImageError(f"{path}: the image data is corrupt or truncated ({exc})") from exc


def _to_image(im: PILImage.Image, path: Path) -> Image:
    """Orient and convert a decoded PIL image to RGB (+ alpha), keeping 16-bit depth."""
    im = ImageOps.exif_transpose(im)
    if im.mode in ("I;16", "I;16B", "I;16L", "I", "I;16N"):
        grey = np.asarray(im, dtype=np.uint32)
        grey = np.clip(grey, 0, 65535).astype(np.uint16)
        return Image(np.repeat(grey[..., None], 3, axis=2), None, path)
    if im.mode == "F":
        grey = np.asarray(im, dtype=np.float32)
        rgb = (np.clip(grey, 0, 1) * 65535 + 0.5).astype(np.uint16)
        return Image(np.repeat(rgb[..., None], 3, axis=2), None, path)
    has_alpha = im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info)
    if has_alpha:
        rgba = np.asarray(im.convert("RGBA"))
        return Image(np.ascontiguousarray(rgba[..., :3]), np.ascontiguousarray(rgba[..., 3]), path)
    if im.mode.startswith("RGB") and np.asarray(im).dtype == np.uint16:
        return Image(np.asarray(im).copy(), None, path)
    return Image(np.asarray(im.convert("RGB")).copy(), None, path)


def _load_16bit(path: Path) -> Image | None:
    """PIL decodes 16-bit RGB(A) PNG/TIFF to 8 bits; OpenCV keeps all 16. None if not 16-bit RGB."""
    import cv2

    data = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if data is None or data.dtype != np.uint16 or data.ndim != 3:
        return None
    if data.shape[2] == 4:
        return Image(np.ascontiguousarray(data[..., 2::-1]), np.ascontiguousarray(data[..., 3]), path)
    return Image(np.ascontiguousarray(data[..., ::-1]), None, path)


_EXIF_ORIENTATION = 0x0112


def _orient(image: Image, orientation: int) -> Image:
    """Apply an EXIF orientation (1-8) to the arrays, as ``ImageOps.exif_transpose`` does."""
    def fix(a: np.ndarray) -> np.ndarray:
        swap = (1, 0, 2) if a.ndim == 3 else (1, 0)
        ops = {
            2: lambda: a[:, ::-1], 3: lambda: a[::-1, ::-1], 4: lambda: a[::-1],
            5: lambda: a.transpose(swap), 6: lambda: np.rot90(a, -1),
            7: lambda: a[::-1, ::-1].transpose(swap), 8: lambda: np.rot90(a, 1),
        }
        return np.ascontiguousarray(ops[orientation]()) if orientation in ops else a

    alpha = None if image.alpha is None else fix(image.alpha)
    return Image(fix(image.rgb), alpha, image.source)


def save_image(
    path: str | os.PathLike,
    rgb: np.ndarray,
    alpha: np.ndarray | None = None,
    quality: int = 95,
) -> Path:
    """Write ``(H, W, 3)`` pixels to PNG or JPEG (by suffix), atomically.

    ``uint16`` pixels are written as 16-bit PNG; JPEG is always 8-bit and drops alpha.
    ``quality`` (1-100) applies to JPEG.

    Raises:
        ImageError: unknown suffix, wrong array shape, or the write failed (disk full,
            no permission); in every case no file is left at ``path``'s temporary name
            and an existing file at ``path`` is untouched.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in WRITE_SUFFIXES:
        raise ImageError(f"{path}: can only save {', '.join(WRITE_SUFFIXES)}. Got: {suffix or 'no suffix'}")
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ImageError(f"{path}: expected (H, W, 3) pixels. Got: {tuple(rgb.shape)}")
    if not 1 <= quality <= 100:
        raise ImageError(f"{path}: JPEG quality must be in 1..100. Got: {quality}")
    if np.issubdtype(rgb.dtype, np.floating):
        rgb = to_uint8(rgb)
    if alpha is not None and np.issubdtype(alpha.dtype, np.floating):
        alpha = to_uint8(alpha)
    encoded = _encode(rgb, alpha, suffix, quality, path)
    write_atomically(path, encoded, error=ImageError)
    return path


def _encode(rgb: np.ndarray, alpha: np.ndarray | None, suffix: str, quality: int, path: Path) -> bytes:
    import cv2

    if suffix == ".png":
        bgr = rgb[..., ::-1]
        if alpha is not None:
            bgr = np.concatenate([bgr, alpha.astype(rgb.dtype)[..., None]], axis=2)
        ok, buffer = cv2.imencode(".png", np.ascontiguousarray(bgr))
    else:
        bgr = to_uint8(rgb)[..., ::-1]
        ok, buffer = cv2.imencode(".jpg", np.ascontiguousarray(bgr), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ImageError(f"{path}: the image could not be encoded")
    return buffer.tobytes()


def write_atomically(path: str | os.PathLike, data: bytes, error: type[GanvasError] = GanvasError) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename.

    A failure (or a kill) midway leaves any earlier file at ``path`` untouched; on an error
    the temporary file is removed and ``error`` is raised naming ``path``.
    """
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=folder)
    except OSError as exc:
        raise error(f"{path}: cannot write in {folder}. Got: {exc.strerror or exc}") from exc
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600 files; give the usual permissions
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise error(f"{path}: the file could not be written. Got: {exc.strerror or exc}") from exc
    except BaseException:  # e.g. KeyboardInterrupt: still leave no temporary file behind
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _umask() -> int:
    mask = os.umask(0o022)  # reading the umask means setting it; put it straight back
    os.umask(mask)
    return mask
