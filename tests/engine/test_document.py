import copy
import json
import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from engine.document import (
    Document, ModelRef, changed_weights, document_bytes, file_sha256, open_document, save_document,
)
from engine.errors import GanvasError
from engine.models.checkpoint import load_generator
from engine.ops.edit import DirectionEdit, InterpolateEdit, MixEdit
from tests.engine.models import STYLEGAN_FIXTURES

ROOT = Path(__file__).resolve().parents[2]
WEIGHTS = STYLEGAN_FIXTURES / "checkpoints" / "network-snapshot-sg2ada-uncond-p4.pkl"


@pytest.fixture(scope="module")
def G():
    return load_generator(WEIGHTS)


def _latent(G, seed):
    return G.mapping(torch.randn(1, G.z_dim, generator=torch.Generator().manual_seed(seed)), None)


def _document(G) -> Document:
    rng = np.random.default_rng(0)
    tuned = copy.deepcopy(G)
    with torch.no_grad():
        tuned.synthesis.b16.conv1.weight.add_(0.05 * torch.randn_like(tuned.synthesis.b16.conv1.weight))
    return Document(
        base_ws=_latent(G, 1),
        model=ModelRef.from_file(WEIGHTS),
        edits=[DirectionEdit(torch.randn(G.w_dim), 1.25, (0, 4), "smile"),
               DirectionEdit(torch.randn(G.num_ws, G.w_dim) * 0.1, -0.5, None, "w+", enabled=False),
               MixEdit(_latent(G, 2), (6, 8), "fine from #2"),
               InterpolateEdit(G.w_avg.clone(), 0.3, (0, 8), slerp=True)],
        source=rng.integers(0, 256, (40, 30, 3), dtype=np.uint8),
        tuned_weights=changed_weights(G, tuned),
        layers={"mask": (rng.random((32, 32)) > 0.5).astype(np.uint8) * 255,
                "strokes": rng.integers(0, 256, (32, 32, 4), dtype=np.uint8),
                "single": rng.integers(0, 256, (32, 32, 1), dtype=np.uint8)},
        meta={"history": ["invert", "smile"], "zoom": 2.0},
    )


def test_save_and_reopen_renders_bit_for_bit(tmp_path, G):
    doc = _document(G)
    assert list(doc.tuned_weights) == ["synthesis.b16.conv1.weight"]
    image = doc.render(G)
    assert not np.array_equal(image, Document(doc.base_ws, edits=doc.edits).render(G))  # tuning is applied
    assert not np.array_equal(image, Document(doc.base_ws).render(G))  # and the edits
    path = save_document(doc, tmp_path / "face.ganvas")
    back = open_document(path)
    np.testing.assert_array_equal(back.render(G), image)
    assert torch.equal(back.base_ws, doc.base_ws) and torch.equal(back.current_ws(), doc.current_ws())
    assert [type(e) for e in back.edits] == [type(e) for e in doc.edits]
    assert back.edits[0].layers == (0, 4) and back.edits[0].strength == 1.25 and back.edits[0].name == "smile"
    assert back.edits[1].enabled is False and back.edits[3].slerp is True and back.edits[1].layers is None
    for name, layer in doc.layers.items():
        assert back.layers[name].dtype == np.uint8
        np.testing.assert_array_equal(back.layers[name], layer)
    np.testing.assert_array_equal(back.source, doc.source)
    assert back.model == doc.model and back.meta == doc.meta
    assert torch.equal(back.tuned_weights["synthesis.b16.conv1.weight"], doc.tuned_weights["synthesis.b16.conv1.weight"])
    assert G.synthesis.b16.conv1.weight is not back.generator(G).synthesis.b16.conv1.weight  # G is not modified
    with zipfile.ZipFile(path) as zf:
        header = json.loads(zf.read("document.json"))
        assert header["format"] == "ganvas.document" and header["version"] == 1
        assert {"tensors.safetensors", "images/source.png", "layers/000.png"} <= set(zf.namelist())


def test_sixteen_bit_source_and_empty_document(tmp_path, G):
    source = np.random.default_rng(1).integers(0, 65536, (8, 9, 3), dtype=np.uint16)
    doc = Document(_latent(G, 5), source=source)
    back = open_document(save_document(doc, tmp_path / "a.ganvas"))
    assert back.source.dtype == np.uint16
    np.testing.assert_array_equal(back.source, source)
    assert back.edits == [] and back.layers == {} and back.model is None
    np.testing.assert_array_equal(back.render(G), doc.render(G))
    with pytest.raises(GanvasError, match="uint8"):
        document_bytes(Document(doc.base_ws, layers={"bad": np.zeros((4, 4), np.float32)}))


def test_model_reference_checks_the_file_hash(tmp_path):
    copy_path = tmp_path / "net.pkl"
    copy_path.write_bytes(WEIGHTS.read_bytes())
    ref = ModelRef.from_file(copy_path)
    assert ref.sha256 == file_sha256(WEIGHTS) and ref.resolve() == copy_path
    copy_path.write_bytes(WEIGHTS.read_bytes() + b"x")
    with pytest.raises(GanvasError, match="differs"):
        ref.resolve()
    assert ref.resolve(verify=False) == copy_path


def test_a_failure_in_the_middle_of_a_save_keeps_the_old_file(tmp_path, G, monkeypatch):
    path = tmp_path / "doc.ganvas"
    old = Document(_latent(G, 1), meta={"v": "old"})
    save_document(old, path)
    before = path.read_bytes()
    new = _document(G)

    def broken_fsync(fd):  # the disk fails after part of the new file has been written
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(GanvasError, match="No space left"):
        save_document(new, path)
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["doc.ganvas"]
    monkeypatch.undo()

    def broken_writestr(self, *args, **kwargs):  # the encoder fails half-way through the zip
        raise RuntimeError("encoder failure")

    monkeypatch.setattr(zipfile.ZipFile, "writestr", broken_writestr)
    with pytest.raises(RuntimeError):
        save_document(new, path)
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["doc.ganvas"]


_SAVER = """
import sys, numpy as np, torch
from engine.document import Document, save_document
big = np.random.default_rng(0).integers(0, 256, (1500, 1500, 4), dtype=np.uint8)
ws = torch.zeros(1, 8, 64)
for i in range(10**6):
    save_document(Document(ws, layers={"big": big}, meta={"i": i}), sys.argv[1])
    print(i, flush=True)
"""


def test_a_killed_save_keeps_a_valid_file(tmp_path, G):
    path = tmp_path / "doc.ganvas"
    save_document(Document(_latent(G, 1), meta={"i": "old"}), path)
    child = subprocess.Popen([sys.executable, "-c", _SAVER, str(path)], cwd=ROOT, stdout=subprocess.PIPE,
                             text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        assert child.stdout.readline().strip() == "0"  # one save done, the next one under way
        deadline = time.monotonic() + 20
        while not any(n.endswith(".part") for n in os.listdir(tmp_path)) and time.monotonic() < deadline:
            time.sleep(0.0005)  # wait until the next save is writing its temporary file
    finally:
        child.kill()  # SIGKILL in the middle of writing: no clean-up code runs
        child.wait()
    doc = open_document(path)  # the old or a complete new document, never a torn one
    assert doc.meta["i"] == "old" or isinstance(doc.meta["i"], int)
    if isinstance(doc.meta["i"], int):
        assert doc.layers["big"].shape == (1500, 1500, 4)


def test_corrupt_or_foreign_files_raise_a_clear_error(tmp_path, G):
    path = save_document(_document(G), tmp_path / "good.ganvas")
    data = path.read_bytes()
    cases = {"random.ganvas": os.urandom(500), "empty.ganvas": b"", "half.ganvas": data[: len(data) // 2]}
    foreign = tmp_path / "foreign.ganvas"
    with zipfile.ZipFile(foreign, "w") as zf:
        zf.writestr("readme.txt", "hello")
    other = tmp_path / "other.ganvas"
    with zipfile.ZipFile(other, "w") as zf:
        zf.writestr("document.json", json.dumps({"format": "something.else", "version": 1}))
    newer = tmp_path / "newer.ganvas"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(newer, "w") as dst:
        for item in src.infolist():
            content = src.read(item)
            if item.filename == "document.json":
                header = json.loads(content)
                header["version"] = 99
                content = json.dumps(header).encode()
            dst.writestr(item, content)
    flipped = bytearray(data)  # damage the tensors member's compressed bytes: CRC / inflate error
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("tensors.safetensors")
    flipped[info.header_offset + 30 + len(info.filename) + 40] ^= 0xFF
    cases["flipped.ganvas"] = bytes(flipped)
    for name, content in cases.items():
        (tmp_path / name).write_bytes(content)
    expectations = {**{n: "GANvas document|damaged" for n in cases}, "foreign.ganvas": "not a GANvas document",
                    "other.ganvas": "something.else", "newer.ganvas": "newer GANvas"}
    for name, pattern in expectations.items():
        with pytest.raises(GanvasError, match=pattern) as info:
            open_document(tmp_path / name)
        assert str(tmp_path / name) in str(info.value)
    with pytest.raises(GanvasError, match="no such document"):
        open_document(tmp_path / "missing.ganvas")
