import numpy as np
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run(*args):
    return subprocess.run([sys.executable, "main.py", *args], cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_version_and_help():
    assert run("--version").stdout.startswith("GANvas ")
    out = run("--help").stdout
    assert "models" in out and "--screenshot" in out


def test_models_lists_the_house_folder(monkeypatch, tmp_path):
    result = run("models")
    assert result.returncode == 0
    assert "resources/models" in result.stdout or "house-" in result.stdout


def test_generate_writes_the_image_and_latent(tmp_path):
    from engine.images import load_image
    from tests.engine.models import STYLEGAN_FIXTURES

    checkpoint = STYLEGAN_FIXTURES / "checkpoints" / "network-snapshot-sg2ada-cond-p4.pkl"
    out, latent = tmp_path / "x.png", tmp_path / "w.npz"
    result = run("generate", "--model", str(checkpoint), "--seed", "3", "--psi", "0.7", "--class", "2",
                 "--out", str(out), "--save-latent", str(latent))
    assert result.returncode == 0, result.stderr
    assert load_image(out).rgb.shape == (32, 32, 3)
    assert np.load(latent)["ws"].shape == (1, 8, 64)
    missing_class = run("generate", "--model", str(checkpoint), "--out", str(tmp_path / "y.png"))
    assert missing_class.returncode == 1 and "conditional" in missing_class.stderr
    assert not (tmp_path / "y.png").exists()
    bad = run("generate", "--model", "no-such-model", "--out", str(tmp_path / "z.png"))
    assert bad.returncode == 1 and "unknown model id" in bad.stderr


def test_generate_with_the_house_generator(tmp_path):
    from engine.images import load_image

    out = tmp_path / "x.png"
    result = run("generate", "--model", "house-gan", "--seed", "1", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert load_image(out).rgb.shape == (64, 64, 3)
    listing = run("models").stdout
    assert "house-gan" in listing and "house-gan.directions" not in listing
