"""Safe loading and saving of StyleGAN checkpoints: NVIDIA ``.pkl``, rosinality ``.pt``, safetensors.

Nothing stored in a model file is ever executed. NVIDIA network pickles (stylegan2-ada-pytorch,
stylegan3) go through a restricted unpickler whose allow-list holds only the data constructors
such files use; their persistent-object records are kept as plain data (the embedded
``module_src`` text is neither run nor parsed), the state dict is rebuilt by walking the module
tree, the hyper-parameters come from ``_init_kwargs`` and the family from class names. Torch
files (zip or legacy) go through ``torch.load(weights_only=True)``, which also admits
``argparse.Namespace`` for rosinality training checkpoints. Every failure raises
:class:`~engine.errors.CheckpointError` naming the file.

House format (``.safetensors``, written by :func:`save_generator`)::

    metadata  format="ganvas.stylegan", format_version="1",
              architecture="stylegan2" | "stylegan3" | "rosinality"   (G.family),
              G_kwargs=<JSON constructor kwargs of G>,       # rosinality: NVIDIA-layout Generator kwargs
              D_architecture="stylegan2", D_kwargs=<JSON>    # only when a discriminator is stored
              extra=<JSON of the caller's extra_metadata>    # optional
    tensors   "G.<state-dict name>" (and "D.<state-dict name>"), official NVIDIA names.

A safetensors file without this metadata is read as a bare state dict (prefix ``G.`` optional)
whose hyper-parameters are inferred from tensor shapes (StyleGAN2 and rosinality names only).
"""

from __future__ import annotations

import argparse
import codecs
import collections
import io
import json
import logging
import os
import pickle
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import Tensor, nn

from engine.errors import CheckpointError, GanvasError, ModelNotFound, check
from engine.models import rosinality
from engine.models.stylegan2 import Discriminator, Generator, build_from_state_dict

log = logging.getLogger(__name__)

HOUSE_FORMAT = "ganvas.stylegan"
HOUSE_VERSION = "1"
FAMILIES = ("stylegan2", "stylegan3", "rosinality")
_TORCH_LEGACY_MAGIC = b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19"  # pickled 0x1950a86a20f9469cfc6c
_G_POSITIONAL = ("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels", "mapping_kwargs", "synthesis_kwargs")
_D_POSITIONAL = ("c_dim", "img_resolution", "img_channels", "architecture", "channel_base", "channel_max",
                 "num_fp16_res", "conv_clamp", "cmap_dim", "block_kwargs", "mapping_kwargs", "epilogue_kwargs")
_SPEED_ONLY_KWARGS = ("fused_modconv_default", "fp16_channels_last", "channels_last")


@dataclass
class NetworkRecord:
    """One network read from a file, before it is built."""

    architecture: str  # one of FAMILIES, or "stylegan2-discriminator"
    kwargs: dict | None  # constructor kwargs; None: infer from the state dict
    state_dict: dict[str, Tensor]
    w_avg: Tensor | None = None  # rosinality ``latent_avg``
    extra: dict = field(default_factory=dict)


# ----------------------------------------------------------------------------- restricted unpickler


class _Refused(Exception):
    """A pickle asked for something outside the allow-list."""


class PersistentObject:
    """Plain-data stand-in for an NVIDIA ``persistent_class`` instance: class name + ``__dict__``."""

    def __init__(self, class_name: str, state: dict):
        self.class_name, self.state = class_name, state

    def child(self, name: str) -> PersistentObject | None:
        return (self.state.get("_modules") or {}).get(name)


def _reconstruct_persistent_obj(meta: Any) -> PersistentObject:
    if not (isinstance(meta, dict) and isinstance(meta.get("class_name"), str) and isinstance(meta.get("state"), dict)):
        raise _Refused("a persistent object record without class_name/state")
    return PersistentObject(meta["class_name"], meta["state"])  # meta["module_src"] deliberately unused


class _EasyDict(dict):
    """Stand-in for ``dnnlib.util.EasyDict`` (a dict subclass, so a BUILD opcode also works)."""


def _load_from_bytes(blob: Any) -> Any:
    if not isinstance(blob, (bytes, bytearray)):
        raise _Refused("a storage record that is not bytes")
    # The blob is torch's legacy serialisation of one storage; weights_only admits only storages.
    storage = torch.load(io.BytesIO(blob), weights_only=True, map_location="cpu")
    if not isinstance(storage, torch.storage.TypedStorage):
        raise _Refused(f"a storage record holding {type(storage).__name__}")
    return storage


def _rebuild_tensor_v2(storage: Any, offset: int, size: tuple, stride: tuple, *_: Any) -> Tensor:
    if not isinstance(storage, torch.storage.TypedStorage):
        raise _Refused(f"a tensor built from {type(storage).__name__}")
    return torch.empty(0, dtype=storage.dtype).set_(storage, offset, size, stride)  # set_ checks bounds


def _rebuild_parameter(data: Any, *_: Any) -> Tensor:
    if not isinstance(data, Tensor):
        raise _Refused(f"a parameter built from {type(data).__name__}")
    return data


def _latin1_encode(text: str, encoding: str = "latin1") -> bytes:
    if encoding != "latin1":  # protocol-2 pickles spell bytes as _codecs.encode(str, 'latin1')
        raise _Refused(f"_codecs.encode with encoding {encoding!r}")
    return codecs.encode(text, "latin1")


_np_multiarray = getattr(np, "_core", None) or np.core
_ALLOWED: dict[tuple[str, str], Any] = {
    ("torch_utils.persistence", "_reconstruct_persistent_obj"): _reconstruct_persistent_obj,
    ("dnnlib.util", "EasyDict"): _EasyDict,
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("_codecs", "encode"): _latin1_encode,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("torch.storage", "_load_from_bytes"): _load_from_bytes,
    ("numpy", "dtype"): np.dtype,
    ("numpy", "ndarray"): np.ndarray,
}
for _mod in ("numpy.core.multiarray", "numpy._core.multiarray"):  # numpy 1.x / 2.x spellings
    _ALLOWED[(_mod, "scalar")] = _np_multiarray.multiarray.scalar
    _ALLOWED[(_mod, "_reconstruct")] = _np_multiarray.multiarray._reconstruct


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED:
            raise _Refused(f"{module}.{name}")
        return _ALLOWED[(module, name)]


def _unpickle(path: Path) -> Any:
    try:
        with open(path, "rb") as f:
            return _RestrictedUnpickler(f).load()
    except _Refused as e:
        raise CheckpointError(f"{path}: refused to load: the pickle asks for an object outside the allow-list "
                              f"of network checkpoints (loading it normally could run code). Got: {e}") from None
    except Exception as e:  # truncated or corrupt streams fail in many ways inside pickle / torch
        raise CheckpointError(f"{path}: truncated or corrupt pickle. Got: {type(e).__name__}: {e}") from None


# ----------------------------------------------------------------------------- NVIDIA pickle tree


def _plain(obj: Any) -> Any:
    """EasyDict / OrderedDict / numpy values -> JSON-friendly Python values."""
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, (np.generic, np.ndarray)):
        return obj.tolist()
    return obj


def tree_state_dict(node: PersistentObject, prefix: str = "") -> dict[str, Tensor]:
    """State dict of a pickled module tree, in the order ``nn.Module.state_dict`` yields it."""
    st, out = node.state, {}
    for name, t in (st.get("_parameters") or {}).items():
        if t is not None:
            out[prefix + name] = t
    skip = set(st.get("_non_persistent_buffers_set") or ())
    for name, t in (st.get("_buffers") or {}).items():
        if t is not None and name not in skip:
            out[prefix + name] = t
    for name, child in (st.get("_modules") or {}).items():
        if isinstance(child, PersistentObject):
            out.update(tree_state_dict(child, f"{prefix}{name}."))
        elif child is not None:
            raise CheckpointError(f"module {prefix}{name} is not a network record. Got: {type(child).__name__}")
    return out


def _class_names(node: PersistentObject) -> set[str]:
    names = {node.class_name}
    for child in (node.state.get("_modules") or {}).values():
        if isinstance(child, PersistentObject):
            names |= _class_names(child)
    return names


def _init_kwargs(node: PersistentObject, positional: tuple[str, ...]) -> dict:
    kwargs = _plain(dict(node.state.get("_init_kwargs") or {}))
    args = list(node.state.get("_init_args") or ())
    check(len(args) <= len(positional), f"too many positional init args. Got: {len(args)}", CheckpointError)
    kwargs.update(zip(positional, _plain(args)))
    return kwargs


def _blocks_facts(container: PersistentObject, conv_name: str) -> dict:
    """``num_fp16_res`` / ``conv_clamp`` as the pickled blocks really have them (defaults differ by repo)."""
    blocks = [b for n, b in (container.state.get("_modules") or {}).items()
              if re.fullmatch(r"b\d+", n) and isinstance(b, PersistentObject) and "use_fp16" in b.state]
    facts: dict = {"num_fp16_res": sum(bool(b.state["use_fp16"]) for b in blocks)} if blocks else {}
    conv = blocks[0].child(conv_name) if blocks else None
    if conv is not None and "conv_clamp" in conv.state:
        facts["conv_clamp"] = _plain(conv.state["conv_clamp"])
    return facts


def _sg2_generator_kwargs(node: PersistentObject) -> dict:
    """Official kwargs -> ``Generator`` kwargs; the stylegan3 repo passes synthesis options flat."""
    kw = _init_kwargs(node, _G_POSITIONAL)
    top = {k: kw.pop(k) for k in _G_POSITIONAL[:5] if k in kw}
    check(len(top) == 5, f"_init_kwargs lack {set(_G_POSITIONAL[:5]) - set(top)}. Got: {sorted(top)}", CheckpointError)
    mapping = dict(kw.pop("mapping_kwargs", None) or {})
    synthesis = dict(kw.pop("synthesis_kwargs", None) or {})
    synthesis.update(kw)
    for k in _SPEED_ONLY_KWARGS:
        synthesis.pop(k, None)
    synthesis.update(_blocks_facts(node.child("synthesis"), "conv1"))
    return dict(top, mapping_kwargs=mapping, synthesis_kwargs=synthesis)


def _sg2_discriminator_kwargs(node: PersistentObject) -> dict:
    kw = _init_kwargs(node, _D_POSITIONAL)
    kw.update(_blocks_facts(node, "conv0"))
    kw["block_kwargs"] = {k: v for k, v in (kw.get("block_kwargs") or {}).items() if k not in _SPEED_ONLY_KWARGS}
    return kw


def _nvidia_record(node: Any, key: str) -> NetworkRecord:
    check(isinstance(node, PersistentObject), f"entry {key!r} is not a network. Got: {type(node).__name__}",
          CheckpointError)
    names = _class_names(node)
    if node.class_name == "Generator" and "SynthesisInput" in names:
        arch, kwargs = "stylegan3", _init_kwargs(node, _G_POSITIONAL[:6])
    elif node.class_name == "Generator" and "SynthesisBlock" in names:
        arch, kwargs = "stylegan2", _sg2_generator_kwargs(node)
    elif node.class_name == "Discriminator" and "DiscriminatorBlock" in names:
        arch, kwargs = "stylegan2-discriminator", _sg2_discriminator_kwargs(node)
    else:
        raise CheckpointError(f"entry {key!r} is not a known StyleGAN network. Got: class {node.class_name} "
                              f"with parts {sorted(names)[:6]}")
    return NetworkRecord(arch, kwargs, tree_state_dict(node))


def _read_nvidia_pickle(path: Path) -> dict[str, NetworkRecord]:
    data = _unpickle(path)
    if isinstance(data, PersistentObject):  # a bare network rather than a snapshot dict
        data = {"G_ema" if data.class_name == "Generator" else "D": data}
    check(isinstance(data, dict), f"{path}: not a network snapshot. Got: a pickled {type(data).__name__}",
          CheckpointError)
    if not any(isinstance(v, PersistentObject) for v in data.values()):  # e.g. a pickled state dict
        return _records_from_dict(data, path)
    records = {}
    try:
        g_key = "G_ema" if data.get("G_ema") is not None else "G"
        if data.get(g_key) is not None:
            records["G"] = _nvidia_record(data[g_key], g_key)
        if data.get("D") is not None:
            records["D"] = _nvidia_record(data["D"], "D")
    except CheckpointError as e:
        raise CheckpointError(f"{path}: {e}") from None
    check(bool(records), f"{path}: no network inside. Got: keys {sorted(map(str, data))[:8]}", CheckpointError)
    return records


# ----------------------------------------------------------------------------- bare state dicts


def infer_stylegan2_kwargs(sd: dict[str, Tensor]) -> dict:
    """``Generator`` kwargs from the tensor shapes of an NVIDIA-named StyleGAN2 state dict.

    ``conv_clamp`` and fp16 use are not recorded in weights; they default to None / fp32 here.
    """
    n_fc = sum(1 for k in sd if re.fullmatch(r"mapping\.fc\d+\.weight", k))
    res = sorted(int(m.group(1)) for k in sd if (m := re.fullmatch(r"synthesis\.b(\d+)\.conv1\.weight", k)))
    embed = sd.get("mapping.embed.weight")
    embed_features = int(embed.shape[0]) if embed is not None else 0
    fc0 = sd["mapping.fc0.weight"]
    mapping = dict(num_layers=n_fc, layer_features=int(fc0.shape[0]) if n_fc > 1 else None)
    if embed is not None:
        mapping["embed_features"] = embed_features
    channels = {r: int(sd[f"synthesis.b{r}.conv1.weight"].shape[0]) for r in res}
    architecture = "resnet" if "synthesis.b8.skip.weight" in sd else \
        "skip" if "synthesis.b4.torgb.weight" in sd or len(res) == 1 else "orig"
    flt = sd["synthesis.b4.resample_filter"]
    synthesis = dict(channels=channels, architecture=architecture, num_fp16_res=0, conv_clamp=None,
                     resample_filter=(flt.sum(dim=0) / flt.sum()).tolist(),
                     use_noise="synthesis.b4.conv1.noise_strength" in sd)
    return dict(z_dim=int(fc0.shape[1]) - embed_features, c_dim=int(embed.shape[1]) if embed is not None else 0,
                w_dim=int(sd[f"mapping.fc{n_fc - 1}.weight"].shape[0]), img_resolution=res[-1],
                img_channels=int(sd[f"synthesis.b{res[-1]}.torgb.weight"].shape[0]),
                mapping_kwargs=mapping, synthesis_kwargs=synthesis)


def _state_dict_record(sd: dict, source: str) -> NetworkRecord:
    """Detect the family of a bare generator state dict."""
    sd = {k[2:] if k.startswith("G.") else k: v for k, v in sd.items()}
    if rosinality.is_rosinality_state_dict(sd):
        return NetworkRecord("rosinality", None, sd)
    if "synthesis.b4.const" in sd and "mapping.fc0.weight" in sd:
        log.info("%s: no hyper-parameters stored; inferred from shapes (conv_clamp=None, fp32)", source)
        try:
            return NetworkRecord("stylegan2", infer_stylegan2_kwargs(sd), sd)
        except (KeyError, IndexError, ValueError, AttributeError, TypeError) as e:
            raise CheckpointError(f"{source}: incomplete StyleGAN2 state dict. Got: {type(e).__name__}: {e}") from None
    if "synthesis.input.freqs" in sd:
        raise CheckpointError(f"{source}: a StyleGAN3 state dict without hyper-parameters; use a NVIDIA .pkl "
                              f"or a GANvas .safetensors. Got: {len(sd)} tensors and no metadata")
    raise CheckpointError(f"{source}: not a StyleGAN generator. Got: a state dict with keys like "
                          f"{sorted(map(str, sd))[:4]}")


def _read_torch(path: Path) -> dict[str, NetworkRecord]:
    try:  # Namespace only holds rosinality's command-line options; every other class stays refused
        with torch.serialization.safe_globals([argparse.Namespace]):
            data = torch.load(path, weights_only=True, map_location="cpu")
    except Exception as e:
        raise CheckpointError(f"{path}: unreadable, corrupt or unsafe torch file. Got: {type(e).__name__}: "
                              f"{str(e).splitlines()[0] if str(e) else ''}") from None
    check(isinstance(data, dict), f"{path}: not a checkpoint dictionary. Got: {type(data).__name__}", CheckpointError)
    return _records_from_dict(data, path)


def _records_from_dict(data: dict, path: Path) -> dict[str, NetworkRecord]:
    """rosinality checkpoint (``g_ema`` [+ ``latent_avg``]) or a bare / wrapped state dict."""
    if isinstance(data.get("g_ema"), dict):
        return {"G": NetworkRecord("rosinality", None, data["g_ema"], w_avg=data.get("latent_avg"))}
    for key in ("state_dict", "params_ema", "params"):
        if isinstance(data.get(key), dict):
            data = data[key]
            break
    return {"G": _state_dict_record(data, str(path))}


def _read_safetensors(path: Path) -> dict[str, NetworkRecord]:
    try:
        with safe_open(path, framework="pt") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as e:
        raise CheckpointError(f"{path}: truncated or corrupt safetensors file. Got: {e}") from None
    if meta.get("format") != HOUSE_FORMAT:
        return {"G": _state_dict_record(tensors, str(path))}
    check(meta.get("architecture") in FAMILIES, f"{path}: unknown architecture. Got: {meta.get('architecture')!r}",
          CheckpointError)
    try:
        extra = json.loads(meta.get("extra", "{}"))
        prefixed = any(k.startswith("G.") for k in tensors)
        g_sd = {k[2:]: v for k, v in tensors.items() if k.startswith("G.")} if prefixed else dict(tensors)
        records = {"G": NetworkRecord(meta["architecture"], json.loads(meta["G_kwargs"]), g_sd, extra=extra)}
        if "D_kwargs" in meta:
            d_sd = {k[2:]: v for k, v in tensors.items() if k.startswith("D.")}
            records["D"] = NetworkRecord("stylegan2-discriminator", json.loads(meta["D_kwargs"]), d_sd, extra=extra)
    except (KeyError, ValueError) as e:
        raise CheckpointError(f"{path}: damaged GANvas metadata. Got: {type(e).__name__}: {e}") from None
    return records


def read_checkpoint(path: str | os.PathLike) -> dict[str, NetworkRecord]:
    """Read the networks in ``path`` ("G" and/or "D"), choosing the reader by content, not by name."""
    path = Path(path)
    if not path.is_file():
        raise ModelNotFound(f"no such checkpoint file. Got: {path}")
    size = path.stat().st_size
    check(size > 0, f"{path}: the file is empty. Got: 0 bytes", CheckpointError)
    with open(path, "rb") as f:
        head = f.read(16)
    header_len = int.from_bytes(head[:8], "little") if len(head) >= 9 else -1
    if head.startswith(b"PK\x03\x04") or head.startswith(_TORCH_LEGACY_MAGIC):
        return _read_torch(path)
    if 2 <= header_len <= size - 8 and head[8:9] == b"{":
        return _read_safetensors(path)
    if head[:1] == b"\x80":
        return _read_nvidia_pickle(path)
    raise CheckpointError(f"{path}: not a model file (expected .pkl, .pt or .safetensors content). "
                          f"Got: first bytes {head[:8]!r}")


# ----------------------------------------------------------------------------- building


def _stylegan3_class(source: str) -> type[nn.Module]:
    try:  # imported on demand: the StyleGAN3 module is only needed for StyleGAN3 files
        from engine.models.stylegan3 import Generator as StyleGAN3Generator
    except ImportError as e:
        raise CheckpointError(f"{source}: StyleGAN3 networks are not available. Got: {e}") from None
    return StyleGAN3Generator


def _build_generator(rec: NetworkRecord, source: str) -> nn.Module:
    if rec.architecture == "rosinality" and rec.kwargs is None:
        return rosinality.build_generator(rec.state_dict, rec.w_avg, source)
    cls = _stylegan3_class(source) if rec.architecture == "stylegan3" else Generator
    try:
        if rec.architecture == "stylegan3":  # official signature: synthesis options are flat kwargs
            G = cls(**{k: v for k, v in rec.kwargs.items() if k != "mapping_kwargs"},
                    mapping_kwargs=rec.kwargs.get("mapping_kwargs"))
            G.load_state_dict(rec.state_dict, strict=True)
            if not isinstance(getattr(G, "init_kwargs", None), dict):
                G.init_kwargs = dict(rec.kwargs)
        else:
            G = build_from_state_dict(cls, rec.kwargs, rec.state_dict)
    except (GanvasError, TypeError, RuntimeError, ValueError, KeyError) as e:
        raise CheckpointError(f"{source}: the {rec.architecture} weights do not fit the network their "
                              f"hyper-parameters describe. Got: {str(e).splitlines()[0][:400]}") from None
    G.family = rec.architecture
    return G


def _finish(net: nn.Module, rec: NetworkRecord, device: str | torch.device | None) -> nn.Module:
    net.extra_metadata = rec.extra
    # Inference network: no parameter gradients unless a caller (e.g. pivotal tuning) turns them on.
    return net.to(device or "cpu").eval().requires_grad_(False)


def load_generator(path: str | os.PathLike, device: str | torch.device | None = None) -> nn.Module:
    """Load the (EMA) generator of any supported checkpoint, in eval mode on ``device`` (default CPU).

    The result offers ``mapping``, ``synthesis``, ``w_avg``, ``num_ws``, ``family`` ("stylegan2",
    "stylegan3" or "rosinality") and ``init_kwargs``; its parameters do not require grad.
    """
    records = read_checkpoint(path)
    check("G" in records, f"{path}: holds no generator. Got: {sorted(records)}", CheckpointError)
    return _finish(_build_generator(records["G"], str(path)), records["G"], device)


def load_discriminator(path: str | os.PathLike, device: str | torch.device | None = None) -> Discriminator:
    """Load the StyleGAN2(-ADA) discriminator stored in a NVIDIA pickle or a GANvas file."""
    records = read_checkpoint(path)
    rec = records.get("D")
    check(rec is not None and rec.architecture == "stylegan2-discriminator",
          f"{path}: holds no StyleGAN2 discriminator. Got: networks {sorted(records)}", CheckpointError)
    try:
        D = build_from_state_dict(Discriminator, rec.kwargs, rec.state_dict)
    except (GanvasError, TypeError, RuntimeError, ValueError, KeyError) as e:
        raise CheckpointError(f"{path}: the discriminator weights do not fit its hyper-parameters. "
                              f"Got: {str(e).splitlines()[0][:400]}") from None
    return _finish(D, rec, device)


def _cpu_tensors(net: nn.Module, prefix: str) -> dict[str, Tensor]:
    # clone: safetensors refuses tensors that share memory, as pickled storages may
    return {prefix + k: v.detach().to("cpu").contiguous().clone() for k, v in net.state_dict().items()}


def save_generator(G: nn.Module, path: str | os.PathLike, D: nn.Module | None = None,
                   extra_metadata: dict | None = None) -> None:
    """Write ``G`` (and ``D``) in the house safetensors format described in the module docstring.

    The file is written next to ``path`` and renamed into place, so a failure leaves no partial file.
    """
    family, kwargs = getattr(G, "family", None), getattr(G, "init_kwargs", None)
    check(family in FAMILIES and isinstance(kwargs, dict),
          f"G must be a StyleGAN generator with family and init_kwargs. Got: family={family!r}", CheckpointError)
    meta = {"format": HOUSE_FORMAT, "format_version": HOUSE_VERSION, "architecture": family,
            "G_kwargs": json.dumps(_plain(kwargs))}
    tensors = _cpu_tensors(G, "G.")
    if D is not None:
        check(isinstance(getattr(D, "init_kwargs", None), dict), "D must be a StyleGAN2 discriminator. "
              f"Got: {type(D).__name__}", CheckpointError)
        meta.update(D_architecture="stylegan2", D_kwargs=json.dumps(_plain(D.init_kwargs)))
        tensors.update(_cpu_tensors(D, "D."))
    if extra_metadata:
        meta["extra"] = json.dumps(extra_metadata)
    path = Path(path)
    tmp = path.with_name(path.name + ".partial")
    try:
        save_file(tensors, str(tmp), metadata=meta)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


__all__ = ["load_generator", "load_discriminator", "save_generator", "read_checkpoint", "NetworkRecord",
           "PersistentObject", "tree_state_dict", "infer_stylegan2_kwargs", "HOUSE_FORMAT"]
