"""FFHQ-style face alignment from four landmarks, and pasting a result back into the photo.

The crop follows the FFHQ data set script (Karras et al., arXiv:1812.04948, App. A;
NVlabs/ffhq-dataset ``recreate_aligned_images``): an oriented square centred a little
below the eyes, its side set by the eye distance and the eye-to-mouth distance. FFHQ
takes the eyes as the means of dlib's 6-point contours; here the user gives the eye
centres and mouth corners directly (placed by hand, or by any detector). Departures:
one affine warp (``cv2.warpAffine``, area pre-shrinking for large reductions, reflected
border) replaces FFHQ's shrink / crop / pad-and-blur / quad-transform sequence.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from engine.errors import ImageError, check


@dataclass(frozen=True)
class Landmarks:
    """Pixel coordinates ``(x, y)`` in the photo (pixel centres at integers)."""

    eye_left: tuple[float, float]  # the eye on the image's left
    eye_right: tuple[float, float]
    mouth_left: tuple[float, float]
    mouth_right: tuple[float, float]

    def array(self) -> np.ndarray:
        """``(4, 2)`` float64: eye_left, eye_right, mouth_left, mouth_right."""
        pts = np.array([self.eye_left, self.eye_right, self.mouth_left, self.mouth_right], dtype=np.float64)
        check(pts.shape == (4, 2) and bool(np.isfinite(pts).all()),
              f"landmarks must be four finite (x, y) points. Got: {pts.tolist()}")
        return pts


@dataclass(frozen=True)
class Alignment:
    """Where a crop came from: ``matrix`` (2, 3) maps photo pixels to crop pixels."""

    quad: np.ndarray  # (4, 2) photo coordinates of the crop's corners: top-left, bottom-left, bottom-right, top-right
    matrix: np.ndarray  # (2, 3) affine, photo -> crop
    size: int  # crop side in pixels
    photo_shape: tuple[int, int]  # (H, W) of the photo

    @property
    def inverse(self) -> np.ndarray:
        """(2, 3) affine, crop -> photo."""
        return cv2.invertAffineTransform(self.matrix)


def ffhq_quad(landmarks: Landmarks) -> np.ndarray:
    """The FFHQ crop square ``(4, 2)`` (top-left, bottom-left, bottom-right, top-right) in photo pixels."""
    eye_left, eye_right, mouth_left, mouth_right = landmarks.array()
    eye_avg = (eye_left + eye_right) * 0.5
    eye_to_eye = eye_right - eye_left
    mouth_avg = (mouth_left + mouth_right) * 0.5
    eye_to_mouth = mouth_avg - eye_avg
    x = eye_to_eye - np.flipud(eye_to_mouth) * [-1, 1]  # the "horizontal" axis, tilted with the face
    norm = np.hypot(*x)
    check(norm > 1e-6 and np.hypot(*eye_to_eye) > 1e-6 and np.hypot(*eye_to_mouth) > 1e-6,
          f"landmarks are degenerate (eyes or mouth coincide). Got: {landmarks.array().tolist()}")
    x = x / norm
    x = x * max(np.hypot(*eye_to_eye) * 2.0, np.hypot(*eye_to_mouth) * 1.8)
    y = np.flipud(x) * [-1, 1]
    c = eye_avg + eye_to_mouth * 0.1
    return np.stack([c - x - y, c - x + y, c + x + y, c + x - y])


def quad_matrix(quad: np.ndarray, size: int) -> np.ndarray:
    """(2, 3) affine taking the quad's corners to the crop's outer pixel edges."""
    # Pixel centres sit at integers, so the crop's outer edges are at -0.5 and size - 0.5.
    lo, hi = -0.5, size - 0.5
    src = np.float32(quad[:3])
    dst = np.float32([[lo, lo], [lo, hi], [hi, hi]])
    return cv2.getAffineTransform(src, dst).astype(np.float64)


def _check_photo(photo: np.ndarray) -> None:
    if not (isinstance(photo, np.ndarray) and photo.ndim == 3 and photo.shape[2] == 3 and photo.size > 0):
        raise ImageError(f"expected an (H, W, 3) image. Got: {getattr(photo, 'shape', type(photo).__name__)}")


def align_face(photo: np.ndarray, landmarks: Landmarks, size: int = 1024) -> tuple[np.ndarray, Alignment]:
    """Cut the FFHQ-aligned square out of ``photo`` ``(H, W, 3)``.

    Returns the ``(size, size, 3)`` crop (same dtype as ``photo``) and its :class:`Alignment`.
    Parts of the square outside the photo are filled by reflection, as FFHQ pads.
    """
    _check_photo(photo)
    check(isinstance(size, int) and size >= 8, f"the crop size must be an integer >= 8. Got: {size}")
    quad = ffhq_quad(landmarks)
    matrix = quad_matrix(quad, size)
    source, to_source = photo, np.eye(3)
    shrink = int(np.floor(np.hypot(*(quad[3] - quad[0])) / size))
    if shrink >= 2:  # warpAffine samples 4 pixels per output pixel: shrink first, or it aliases
        h, w = photo.shape[:2]
        small = (max(1, round(w / shrink)), max(1, round(h / shrink)))
        source = cv2.resize(photo, small, interpolation=cv2.INTER_AREA)
        sx, sy = w / small[0], h / small[1]
        # small-image pixel -> photo pixel, then photo -> crop
        to_source = np.array([[sx, 0, 0.5 * sx - 0.5], [0, sy, 0.5 * sy - 0.5], [0, 0, 1]])
    warp = (np.vstack([matrix, [0, 0, 1]]) @ to_source)[:2]
    crop = cv2.warpAffine(source, warp, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
    return crop, Alignment(quad, matrix, size, tuple(photo.shape[:2]))


def feather_mask(size: int, feather: float = 0.1) -> np.ndarray:
    """``(size, size)`` float32 weight: 1 inside, falling smoothly to 0 over ``feather * size`` at the edges."""
    check(0 <= feather <= 0.5, f"feather must be in 0 .. 0.5. Got: {feather}")
    ramp = max(feather * size, 1e-6)
    d = np.arange(size, dtype=np.float32) + 0.5
    edge = np.minimum(d, size - d)  # distance to the nearest edge, in pixels
    t = np.clip(edge / ramp, 0, 1)
    one_d = t * t * (3 - 2 * t)  # smoothstep: no visible seam where the ramp starts
    return np.outer(one_d, one_d).astype(np.float32)


def unalign(photo: np.ndarray, crop: np.ndarray, alignment: Alignment, feather: float = 0.1) -> np.ndarray:
    """Paste ``crop`` (any size; the aligned square) back into a copy of ``photo``.

    The crop is warped by the inverse of the alignment and blended through a feathered
    mask, so the seam fades over ``feather`` of the crop's side. Pixels outside the square
    are returned unchanged.
    """
    _check_photo(photo)
    _check_photo(crop)
    check(tuple(photo.shape[:2]) == alignment.photo_shape,
          f"the photo must be the one aligned, {alignment.photo_shape}. Got: {tuple(photo.shape[:2])}")
    n = crop.shape[0]
    check(crop.shape[1] == n, f"the crop must be square. Got: {tuple(crop.shape[:2])}")
    matrix = quad_matrix(alignment.quad, n)  # the crop may be a different size than the aligned one
    h, w = photo.shape[:2]
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP  # the matrix maps photo -> crop, as the inverse map wants
    pasted = cv2.warpAffine(crop.astype(np.float32), matrix, (w, h), flags=flags, borderMode=cv2.BORDER_REPLICATE)
    weight = cv2.warpAffine(feather_mask(n, feather), matrix, (w, h), flags=flags, borderMode=cv2.BORDER_CONSTANT,
                            borderValue=0)[..., None]
    out = photo.astype(np.float32) * (1 - weight) + pasted * weight
    if np.issubdtype(photo.dtype, np.integer):
        info = np.iinfo(photo.dtype)
        out = np.clip(np.rint(out), info.min, info.max)
    return out.astype(photo.dtype)


__all__ = ["Landmarks", "Alignment", "ffhq_quad", "quad_matrix", "align_face", "feather_mask", "unalign"]
