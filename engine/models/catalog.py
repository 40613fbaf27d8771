"""The model catalogue: turn a model id or a file path into a weights file.

House models ship in ``resources/models/`` as ``<id>.<ext>`` beside a model card
``<id>.md``; a user can drop more into their own model folder (platform data dir,
``GANvas/models``). The card opens with a small front matter block naming the model's
kind and title::

    ---
    title: House faces (StyleGAN2, 64 px)
    kind: generator
    ---

Every ``--model`` option and every model picker in the GUI calls :func:`resolve`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from platformdirs import user_data_dir

from engine.errors import ModelNotFound

RESOURCES_MODELS = Path(__file__).resolve().parents[2] / "resources" / "models"
WEIGHT_SUFFIXES = (".safetensors", ".pth", ".pt", ".pkl", ".ckpt", ".bin")
COMPANION_SUFFIXES = (".directions.safetensors",)  # named edit directions shipped beside a generator


@dataclass(frozen=True)
class ModelEntry:
    id: str
    path: Path
    card: Path | None
    title: str
    kind: str

    @property
    def size_mb(self) -> float:
        return self.path.stat().st_size / 2**20


def user_models_dir() -> Path:
    return Path(os.environ.get("GANVAS_MODELS_DIR") or Path(user_data_dir("GANvas", appauthor=False)) / "models")


def search_dirs() -> list[Path]:
    """The folders whose model files are known by id: the house models first."""
    return [RESOURCES_MODELS, user_models_dir()]


def read_card(card: Path) -> dict[str, str]:
    """The ``key: value`` front matter of a model card (empty if it has none)."""
    lines = card.read_text(encoding="utf-8").splitlines()
    if not lines or lines[0].strip() != "---":
        return {}
    fields = {}
    for line in lines[1:]:
        if line.strip() == "---":
            break
        key, sep, value = line.partition(":")
        if sep:
            fields[key.strip().lower()] = value.strip()
    return fields


def available(dirs: list[Path] | None = None) -> list[ModelEntry]:
    """Every model file in ``dirs`` (default :func:`search_dirs`), first id wins."""
    entries: dict[str, ModelEntry] = {}
    for folder in dirs if dirs is not None else search_dirs():
        if not folder.is_dir():
            continue
        for path in sorted(folder.iterdir()):
            if path.suffix.lower() not in WEIGHT_SUFFIXES or path.stem in entries:
                continue
            if path.name.endswith(COMPANION_SUFFIXES):
                continue  # data that belongs to a model, not a model of its own
            card = path.with_suffix(".md")
            fields = read_card(card) if card.is_file() else {}
            entries[path.stem] = ModelEntry(
                id=path.stem,
                path=path,
                card=card if card.is_file() else None,
                title=fields.get("title", path.stem),
                kind=fields.get("kind", "unknown"),
            )
    return list(entries.values())


def resolve(model: str | os.PathLike, dirs: list[Path] | None = None) -> Path:
    """The weights file for a catalogue id (``"house-gan"``) or a path to a file.

    Raises:
        ModelNotFound: neither an existing file nor a known id; the message lists the ids.
    """
    text = os.fspath(model)
    path = Path(text).expanduser()
    if path.is_file():
        return path
    for entry in available(dirs):
        if entry.id == text:
            return entry.path
    if path.suffix or os.sep in text:
        raise ModelNotFound(f"{text}: no such model file")
    known = ", ".join(e.id for e in available(dirs)) or "none installed"
    raise ModelNotFound(f"unknown model id; known ids: {known}. Got: {text}")
