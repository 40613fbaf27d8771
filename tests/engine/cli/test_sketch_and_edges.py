"""The ``edges`` and ``sketch`` commands, run as a user runs them (``python main.py ...``)."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from engine.images import load_image, save_image
from engine.models.unet import UnetConfig, UnetGenerator, save_unet
from engine.ops.edges import canny_edges
from engine.ops.generate import sample

ROOT = Path(__file__).resolve().parents[3]
HOUSE = ROOT / "resources" / "models" / "house-gan.safetensors"


def run(*args):
    return subprocess.run([sys.executable, "main.py", *map(str, args)], cwd=ROOT, capture_output=True, text=True,
                          timeout=180)


@pytest.fixture(scope="module")
def face(tmp_path_factory):
    from engine.models.checkpoint import load_generator

    path = tmp_path_factory.mktemp("face") / "face.png"
    save_image(path, sample(load_generator(HOUSE), 5, truncation_psi=0.7).image)
    return path


def test_edges_writes_controlnet_style_maps(face, tmp_path):
    out = tmp_path / "edges.png"
    result = run("edges", face, "--low", 100, "--high", 200, "--out", out)
    assert result.returncode == 0, result.stderr
    assert "edge pixels" in result.stdout
    written = load_image(out).rgb
    expected = canny_edges(load_image(face).rgb)
    assert expected.any() and np.array_equal(written[..., 0] == 255, expected)  # white lines on black
    inverted = tmp_path / "inverted.png"
    assert run("edges", face, "--black-on-white", "--out", inverted).returncode == 0
    assert np.array_equal(load_image(inverted).rgb[..., 0] == 0, expected)
    bad = run("edges", face, "--low", 300, "--high", 200, "--out", tmp_path / "bad.png")
    assert bad.returncode == 1 and "low <= high" in bad.stderr and not (tmp_path / "bad.png").exists()


def test_sketch_from_edges_on_the_gan_writes_ranked_candidates(face, tmp_path):
    drawing, out, latent = tmp_path / "drawing.png", tmp_path / "out.png", tmp_path / "w.npz"
    assert run("edges", face, "--black-on-white", "--out", drawing).returncode == 0
    result = run("sketch", drawing, "--model", "house-gan", "--steps", 8, "--candidates", 2, "--out", out,
                 "--save-latent", latent, "--json")
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout)
    assert figures["route"] == "search" and figures["kind"] == "edges" and figures["steps"] == 8
    losses = [c["loss"] for c in figures["candidates"]]
    assert len(losses) == 2 and losses == sorted(losses) and 0 <= figures["edge_f"] <= 1
    assert "read as edges" in result.stderr  # two tones: guessed, and said so
    assert load_image(out).rgb.shape == (64, 64, 3) and (tmp_path / "out-2.png").is_file()
    assert np.load(latent)["ws"].shape == (1, 10, 128)


def test_sketch_from_strokes_keeps_the_masked_pixels(face, tmp_path):
    photo = load_image(face).rgb
    alpha = np.zeros((64, 64), np.uint8)
    alpha[::3, ::3] = 255
    strokes, keep, out = tmp_path / "strokes.png", tmp_path / "keep.png", tmp_path / "out.png"
    save_image(strokes, photo, alpha=alpha)
    mask = np.zeros((64, 64, 3), np.uint8)
    mask[:, :20] = 255
    save_image(keep, mask)
    result = run("sketch", strokes, "--model", HOUSE, "--mask", keep, "--steps", 5, "--candidates", 1,
                 "--out", out, "--json")
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout)
    assert figures["kind"] == "strokes" and 0 <= figures["stroke_agreement"] <= 1
    assert set(figures["candidates"][0]) == {"loss", "colour", "keep"}
    np.testing.assert_array_equal(load_image(out).rgb[:, :20], photo[:, :20])


def test_sketch_with_an_edges_model_runs_feed_forward(tmp_path):
    model = save_unet(UnetGenerator(UnetConfig(input_nc=1, num_downs=5, ngf=4)), tmp_path / "toy-edges.safetensors",
                      {"kind": "edges-to-image", "resolution": 32})
    drawing = np.zeros((128, 128, 3), np.uint8)
    drawing[30:90, 60:64] = 255
    save_image(tmp_path / "lines.png", drawing)
    out = tmp_path / "out.png"
    result = run("sketch", tmp_path / "lines.png", "--model", model, "--out", out, "--json")
    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout)
    assert figures["route"] == "feed-forward" and figures["kind"] == "edges" and figures["seconds"] < 5
    assert load_image(out).rgb.shape == (32, 32, 3)
    wrong = run("sketch", tmp_path / "lines.png", "--model", model, "--kind", "strokes", "--out", tmp_path / "x.png")
    assert wrong.returncode == 1 and "cannot read strokes" in wrong.stderr


def test_sketch_reports_bad_input(tmp_path):
    save_image(tmp_path / "blank.png", np.zeros((64, 64, 3), np.uint8))
    blank = run("sketch", tmp_path / "blank.png", "--model", "house-gan", "--kind", "edges", "--out",
                tmp_path / "x.png")
    assert blank.returncode == 1 and "no line found" in blank.stderr
    missing = run("sketch", tmp_path / "blank.png", "--model", "no-such-model", "--out", tmp_path / "x.png")
    assert missing.returncode == 1 and "unknown model id" in missing.stderr
