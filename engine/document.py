"""The edit document: the state of one GANvas picture, and its ``.ganvas`` file.

A document is a base latent ``ws`` (from sampling or inversion), the generator it belongs to,
optionally the weights pivotal tuning changed (Roich et al., arXiv:2106.05744), an ordered,
non-destructive stack of latent edits (:mod:`engine.ops.edit`), the source photo and named
``uint8`` layers (masks, strokes). The picture is never stored: :meth:`Document.render`
synthesises ``apply_edits(base_ws, edits)``, so a reopened document renders bit for bit the same.

File format, version 1: a zip holding

    document.json          {"format": "ganvas.document", "version": 1, model, edits, layers, ...}
    tensors.safetensors    "base_ws", "edits.<i>.<field>", "tuned.<state-dict name>"
    images/source.png      the source photo (8 or 16 bit), if any
    layers/<i>.png         the named layers, in order; names live in document.json

written in memory and then to disk through a temporary file and a rename, so a failed or killed
save leaves the previous file as it was.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import io
import json
import os
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from engine import __version__
from engine.errors import GanvasError, check
from engine.ops.edit import DirectionEdit, DragEdit, Edit, InterpolateEdit, MixEdit, apply_edits

FORMAT = "ganvas.document"
VERSION = 1
SUFFIX = ".ganvas"
_EDIT_TYPES: dict[str, type] = {"direction": DirectionEdit, "mix": MixEdit, "interpolate": InterpolateEdit,
                                 "drag": DragEdit}


def file_sha256(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


@dataclass
class ModelRef:
    """Which generator a document belongs to: a catalogue id or a file path, plus the file's SHA-256."""

    id: str | None = None
    path: str | None = None
    sha256: str = ""

    @classmethod
    def from_file(cls, path: str | os.PathLike, id: str | None = None) -> ModelRef:
        return cls(id, str(Path(path).resolve()), file_sha256(path))

    def resolve(self, verify: bool = True) -> Path:
        """The weights file (by id first, then by path); with ``verify``, its SHA-256 must match."""
        from engine.models.catalog import resolve

        check(bool(self.id or self.path), "the document names no model. Got: no id and no path")
        path = resolve(self.id) if self.id else resolve(self.path)
        if verify and self.sha256:
            actual = file_sha256(path)
            check(actual == self.sha256, f"{path}: the model file differs from the one this document was made "
                                         f"with (SHA-256 {self.sha256[:12]}...). Got: {actual[:12]}...")
        return path


def changed_weights(G: nn.Module, tuned: nn.Module) -> dict[str, Tensor]:
    """The state-dict entries of ``tuned`` that differ from ``G`` (their tuned values, on the CPU)."""
    base = G.state_dict()
    return {k: v.detach().cpu().clone() for k, v in tuned.state_dict().items()
            if k in base and not torch.equal(v.detach().cpu(), base[k].detach().cpu())}


@dataclass(eq=False)  # holds tensors and arrays: compare by identity
class Document:
    """One picture's editable state. ``base_ws``: ``(1, num_ws, w_dim)`` float32."""

    base_ws: Tensor
    model: ModelRef | None = None
    edits: list[Edit] = field(default_factory=list)
    source: np.ndarray | None = None  # (H, W, 3) uint8 or uint16
    tuned_weights: dict[str, Tensor] = field(default_factory=dict)  # tuned values, not differences: bit-exact
    layers: dict[str, np.ndarray] = field(default_factory=dict)  # name -> (H, W) or (H, W, 1|3|4) uint8
    noise_mode: str = "const"
    meta: dict[str, Any] = field(default_factory=dict)  # JSON-serialisable extras (GUI state, history)
    _tuned_G: tuple[nn.Module, nn.Module] | None = field(default=None, init=False, repr=False)

    def current_ws(self) -> Tensor:
        """The base latent with the edit stack applied: ``(1, num_ws, w_dim)``."""
        return apply_edits(self.base_ws, self.edits)

    def generator(self, G: nn.Module) -> nn.Module:
        """``G`` itself, or (with tuned weights) a copy of it holding them, made once per ``G``.

        ``G`` is never modified. Change the weights through :meth:`set_tuned_weights`, which drops the copy.
        """
        if not self.tuned_weights:
            return G
        if self._tuned_G is None or self._tuned_G[0] is not G:
            tuned = copy.deepcopy(G)
            state = tuned.state_dict()
            for name, value in self.tuned_weights.items():
                check(name in state and state[name].shape == value.shape,
                      f"tuned weight {name!r} does not fit this generator. Got: {tuple(value.shape)}")
                with torch.no_grad():
                    state[name].copy_(value)
            self._tuned_G = (G, tuned)
        return self._tuned_G[1]

    def render(self, G: nn.Module) -> np.ndarray:
        """The picture: ``(H, W, 3)`` ``uint8``."""
        from engine.ops.generate import render

        return render(self.generator(G), self.current_ws(), self.noise_mode)

    def set_tuned_weights(self, weights: dict[str, Tensor]) -> None:
        self.tuned_weights = dict(weights)
        self._tuned_G = None

    def save(self, path: str | os.PathLike) -> Path:
        return save_document(self, path)

    @classmethod
    def open(cls, path: str | os.PathLike) -> Document:
        return open_document(path)


# ----------------------------------------------------------------------------- writing


def _png(pixels: np.ndarray, what: str) -> bytes:
    import cv2

    check(pixels.dtype in (np.uint8, np.uint16), f"{what} must be uint8 or uint16. Got: {pixels.dtype}")
    check(pixels.ndim == 2 or (pixels.ndim == 3 and pixels.shape[2] in (1, 3, 4)),
          f"{what} must be (H, W) or (H, W, 1|3|4). Got: {pixels.shape}")
    if pixels.ndim == 3 and pixels.shape[2] in (3, 4):  # OpenCV stores BGR(A)
        pixels = pixels[..., [2, 1, 0, 3][: pixels.shape[2]]]
    ok, buffer = cv2.imencode(".png", np.ascontiguousarray(pixels))
    check(bool(ok), f"{what} could not be encoded as PNG. Got: shape {pixels.shape}")
    return buffer.tobytes()


def _edit_entry(i: int, edit: Edit, tensors: dict[str, Tensor]) -> dict[str, Any]:
    kind = next((k for k, t in _EDIT_TYPES.items() if type(edit) is t), None)
    check(kind is not None, f"edit {i} has an unknown type. Got: {type(edit).__name__}")
    entry: dict[str, Any] = {"type": kind}
    for f in dataclasses.fields(edit):
        value = getattr(edit, f.name)
        if isinstance(value, Tensor):
            key = f"edits.{i}.{f.name}"
            tensors[key] = value.detach().cpu().contiguous()
            entry[f.name] = {"tensor": key}
        else:
            entry[f.name] = list(value) if isinstance(value, tuple) else value
    return entry


def document_bytes(doc: Document) -> bytes:
    """The ``.ganvas`` file of ``doc``, as bytes."""
    from safetensors.torch import save

    check(doc.base_ws.ndim == 3 and doc.base_ws.shape[0] == 1,
          f"base_ws must be (1, num_ws, w_dim). Got: {tuple(doc.base_ws.shape)}")
    tensors: dict[str, Tensor] = {"base_ws": doc.base_ws.detach().cpu().contiguous()}
    edits = [_edit_entry(i, e, tensors) for i, e in enumerate(doc.edits)]
    tensors.update({f"tuned.{k}": v.detach().cpu().contiguous() for k, v in doc.tuned_weights.items()})
    files: dict[str, bytes] = {}
    if doc.source is not None:
        check(doc.source.ndim == 3 and doc.source.shape[2] == 3, f"source must be (H, W, 3). Got: {doc.source.shape}")
        files["images/source.png"] = _png(doc.source, "the source image")
    layer_entries = []
    for i, (name, pixels) in enumerate(doc.layers.items()):
        check(pixels.dtype == np.uint8, f"layer {name!r} must be uint8. Got: {pixels.dtype}")
        member = f"layers/{i:03d}.png"
        files[member] = _png(pixels, f"layer {name!r}")
        layer_entries.append({"name": name, "file": member, "shape": list(pixels.shape)})
    header = {
        "format": FORMAT, "version": VERSION, "app": f"GANvas {__version__}",
        "model": dataclasses.asdict(doc.model) if doc.model else None,
        "noise_mode": doc.noise_mode, "edits": edits, "layers": layer_entries,
        "source": "images/source.png" if doc.source is not None else None,
        "tuned_weights": sorted(doc.tuned_weights), "meta": doc.meta,
    }
    try:
        header_text = json.dumps(header, indent=1)
    except (TypeError, ValueError) as exc:
        raise GanvasError(f"the document's meta must be JSON data. Got: {exc}") from None
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("document.json", header_text)
        zf.writestr("tensors.safetensors", save(tensors))
        for member, data in files.items():
            zf.writestr(member, data, compress_type=zipfile.ZIP_STORED)  # PNG is compressed already
    return buffer.getvalue()


def save_document(doc: Document, path: str | os.PathLike) -> Path:
    """Write ``doc`` to ``path`` atomically: a failure or a kill leaves any earlier file intact."""
    from engine.images import write_atomically

    return write_atomically(path, document_bytes(doc))


# ----------------------------------------------------------------------------- reading


def _unpng(data: bytes, what: str) -> np.ndarray:
    import cv2

    pixels = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    check(pixels is not None, f"{what} is not a readable PNG. Got: {len(data)} bytes")
    if pixels.ndim == 3 and pixels.shape[2] in (3, 4):
        pixels = pixels[..., [2, 1, 0, 3][: pixels.shape[2]]]
    return np.ascontiguousarray(pixels)


def _edit_from(entry: dict[str, Any], tensors: dict[str, Tensor]) -> Edit:
    cls = _EDIT_TYPES[entry["type"]]
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name not in entry:
            continue
        value = entry[f.name]
        if isinstance(value, dict) and "tensor" in value:
            value = tensors[value["tensor"]]
        elif f.name == "layers" and value is not None:
            value = tuple(value)
        kwargs[f.name] = value
    return cls(**kwargs)


def _read(zf: zipfile.ZipFile, member: str) -> bytes:
    check(member in zf.namelist(), f"the member {member!r} is missing. Got: {sorted(zf.namelist())[:8]}")
    return zf.read(member)


def open_document(path: str | os.PathLike) -> Document:
    """Read a ``.ganvas`` file.

    Raises:
        GanvasError: missing file, not a zip, not a GANvas document, a newer version, or damaged
            content (bad CRC, missing member, malformed JSON or tensors); the message names the file.
    """
    from safetensors.torch import load

    path = Path(path)
    check(path.is_file(), f"no such document. Got: {path}")
    try:
        with zipfile.ZipFile(path) as zf:
            try:
                header = json.loads(_read(zf, "document.json"))
            except GanvasError:
                raise GanvasError(f"{path}: not a GANvas document. Got: a zip without document.json") from None
            check(isinstance(header, dict) and header.get("format") == FORMAT,
                  f"{path}: not a GANvas document. Got: format {header.get('format') if isinstance(header, dict) else header!r}")
            version = header.get("version")
            check(isinstance(version, int) and 1 <= version <= VERSION,
                  f"{path}: made by a newer GANvas (document version {version}); this one reads up to "
                  f"{VERSION}. Got: {header.get('app')}")
            tensors = load(_read(zf, "tensors.safetensors"))
            source = _unpng(_read(zf, header["source"]), "the source image") if header.get("source") else None
            # PNG drops a trailing channel axis of 1, hence the stored shape
            layers = {e["name"]: _unpng(_read(zf, e["file"]), f"layer {e['name']!r}").reshape(e["shape"])
                      for e in header["layers"]}
    except GanvasError as exc:
        message = str(exc)
        raise GanvasError(message if message.startswith(str(path)) else f"{path}: {message}") from None
    except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
        raise GanvasError(f"{path}: not a GANvas document, or a damaged one. Got: {exc}") from None
    except (KeyError, TypeError, ValueError, OSError, RuntimeError) as exc:  # damaged JSON / tensors / PNG
        raise GanvasError(f"{path}: damaged GANvas document. Got: {type(exc).__name__}: {exc}") from None
    try:
        doc = Document(
            base_ws=tensors["base_ws"],
            model=ModelRef(**header["model"]) if header.get("model") else None,
            edits=[_edit_from(e, tensors) for e in header["edits"]],
            source=source, layers=layers, noise_mode=header.get("noise_mode", "const"),
            tuned_weights={k: tensors[f"tuned.{k}"] for k in header.get("tuned_weights", [])},
            meta=header.get("meta") or {},
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise GanvasError(f"{path}: damaged GANvas document. Got: {type(exc).__name__}: {exc}") from None
    return doc


__all__ = ["Document", "ModelRef", "open_document", "save_document", "document_bytes", "changed_weights",
           "file_sha256", "FORMAT", "VERSION", "SUFFIX"]
