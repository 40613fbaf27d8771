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
