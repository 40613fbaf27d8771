import pytest

from engine.errors import ModelNotFound
from engine.models.catalog import available, resolve


def test_ids_and_paths_resolve(tmp_path):
    (tmp_path / "faces.safetensors").write_bytes(b"x" * 10)
    (tmp_path / "faces.md").write_text("---\ntitle: Faces\nkind: generator\n---\n# Faces\n")
    (tmp_path / "sr.pth").write_bytes(b"y")
    (tmp_path / "notes.txt").write_text("not a model")
    (tmp_path / "faces.directions.safetensors").write_bytes(b"d")
    entries = {e.id: e for e in available([tmp_path])}
    assert set(entries) == {"faces", "sr"}
    assert entries["faces"].title == "Faces" and entries["faces"].kind == "generator"
    assert entries["sr"].card is None and entries["sr"].kind == "unknown"
    assert resolve("faces", [tmp_path]) == tmp_path / "faces.safetensors"
    assert resolve(str(tmp_path / "sr.pth"), [tmp_path]) == tmp_path / "sr.pth"


def test_unknown_id_lists_the_known_ones(tmp_path):
    (tmp_path / "faces.safetensors").write_bytes(b"x")
    with pytest.raises(ModelNotFound, match="known ids: faces. Got: nope"):
        resolve("nope", [tmp_path])
    with pytest.raises(ModelNotFound, match="no such model file"):
        resolve(str(tmp_path / "missing.pkl"), [tmp_path])


def test_first_folder_wins(tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir(), second.mkdir()
    (first / "m.pt").write_bytes(b"1")
    (second / "m.pt").write_bytes(b"2")
    assert resolve("m", [first, second]) == first / "m.pt"
