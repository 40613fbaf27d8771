"""``main.py --screenshot``: the real start-up in a fresh process, with no display."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from engine.images import load_image

ROOT = Path(__file__).resolve().parents[2]
MAGENTA = (230, 20, 200)


def run_main(args: list[str], tmp_path: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    for name in ("QT_QPA_PLATFORM", "DISPLAY", "WAYLAND_DISPLAY"):
        env.pop(name, None)  # run() must choose the offscreen platform by itself
    env["GANVAS_SETTINGS"] = str(tmp_path / "settings.ini")
    code = "import sys, main; sys.exit(main.main(sys.argv[1:]))"
    return subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, env=env, timeout=120,
                          capture_output=True, text=True)


def test_screenshot_waits_for_the_opened_image(tmp_path, write_image):
    photo = write_image("magenta.png", np.full((150, 200, 3), MAGENTA, np.uint8))
    shot = tmp_path / "shots" / "window.png"
    done = run_main(["--screenshot", str(shot), "--open", str(photo), "--device", "cpu"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert shot.stat().st_size > 0
    pixels = load_image(shot).rgb
    assert pixels.shape[0] >= 400 and pixels.shape[1] >= 600
    # The opened image is on screen: a large block of its colour, fitted into the canvas.
    magenta = np.all(np.abs(pixels.astype(int) - MAGENTA) <= 2, axis=2)
    assert magenta.sum() > 100 * 150


def test_screenshot_of_a_bad_image_reports_the_error(tmp_path):
    broken = tmp_path / "broken.png"
    broken.write_text("not a picture")
    shot = tmp_path / "window.png"
    done = run_main(["--screenshot", str(shot), "--open", str(broken)], tmp_path)
    assert done.returncode == 1
    assert "broken.png: not an image file" in done.stderr
    assert load_image(shot).rgb.size > 0  # the window is still captured, showing the error in its status bar


def test_without_a_display_the_app_explains_instead_of_aborting(tmp_path):
    result = run_main([], tmp_path)
    assert result.returncode == 1
    assert "no display found" in result.stderr and "--screenshot" in result.stderr
