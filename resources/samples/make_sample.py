"""Draw ``sample.jpg``: a procedural mountain-lake sunset, free to ship with GANvas (MIT).

Run ``python resources/samples/make_sample.py`` to regenerate it; the picture is fully
determined by the seed. It gives File > Open Sample something photo-like to crop,
rotate and compare: smooth gradients, hard ridges, fine texture and a reflection.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

WIDTH, HEIGHT, HORIZON = 768, 512, 330
SEED = 7


def ridge(rng: np.random.Generator, base: float, roughness: float, width: int = WIDTH) -> np.ndarray:
    """A mountain skyline: a height per column from summed random sine waves (fractal-like)."""
    x = np.linspace(0.0, 1.0, width)
    height = np.zeros(width)
    for octave in range(1, 7):
        freq, amp = 2.0**octave, roughness / 1.9**octave
        height += amp * np.sin(2 * np.pi * (freq * x + rng.uniform())) * rng.uniform(0.6, 1.0)
    return base - height


def lerp(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    return a + (b - a) * t[..., None]


def draw(seed: int = SEED) -> np.ndarray:
    """The picture as ``(HEIGHT, WIDTH, 3)`` float RGB in [0, 1]."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float64)
    t = np.clip(yy / HORIZON, 0, 1)
    sky = lerp(np.array([0.10, 0.16, 0.42]), np.array([0.98, 0.58, 0.32]), t**1.6)
    sun_x, sun_y = 0.66 * WIDTH, HORIZON - 70.0
    dist = np.hypot(xx - sun_x, yy - sun_y)
    sky += np.array([1.0, 0.75, 0.45]) * (0.55 * np.exp(-dist / 90.0))[..., None]
    sky = np.where((dist < 26)[..., None], np.array([1.0, 0.95, 0.80]), sky)
    image = sky.copy()
    layers = [  # far to near: (skyline height, roughness, colour), like aerial perspective
        (HORIZON - 95, 90, [0.36, 0.30, 0.48]),
        (HORIZON - 45, 70, [0.22, 0.20, 0.34]),
        (HORIZON - 5, 40, [0.10, 0.11, 0.18]),
    ]
    for base, roughness, colour in layers:
        top = ridge(rng, base, roughness)
        mask = yy >= top[None, :]
        depth = np.clip((yy - top[None, :]) / 120.0, 0.0, 1.0)  # 0 at the ridge, 1 well below it
        shade = np.array(colour) / (1.0 + 0.25 * depth)[..., None]  # darker towards the foot
        image = np.where(mask[..., None], shade, image)
    # The lake mirrors everything above the horizon, rippled and darkened.
    water_rows = np.arange(HORIZON, HEIGHT)
    source_rows = np.clip(2 * HORIZON - water_rows, 0, HORIZON - 1)
    ripple = np.rint(2.0 * np.sin(water_rows[:, None] ** 1.2 / 5.0 + xx[HORIZON:] / 40.0)).astype(int)
    cols = np.clip(xx[HORIZON:].astype(int) + ripple, 0, WIDTH - 1)
    image[HORIZON:] = 0.72 * image[source_rows[:, None], cols] + 0.28 * np.array([0.05, 0.08, 0.16])
    # Lens softness, film grain and a vignette: the texture of a real photo.
    image = cv2.GaussianBlur(image, (0, 0), 0.9)
    image += rng.normal(0.0, 0.012, image.shape)
    vignette = 1.0 - 0.35 * (np.hypot((xx - WIDTH / 2) / WIDTH, (yy - HEIGHT / 2) / HEIGHT) * 1.4) ** 2
    return np.clip(image * vignette[..., None], 0.0, 1.0)


def main() -> None:
    rgb = (draw() * 255.0 + 0.5).astype(np.uint8)
    path = Path(__file__).with_name("sample.jpg")
    cv2.imwrite(str(path), rgb[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 90])
    print(f"{path}: {path.stat().st_size / 1024:.0f} KB")


if __name__ == "__main__":
    main()
