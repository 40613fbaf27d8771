"""Tests of engine.models. ``STYLEGAN_FIXTURES`` is the shared conformance data (../shared/fixtures)."""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[3]
STYLEGAN_FIXTURES = REPO_ROOT.parent / "shared" / "fixtures" / "stylegan"
