"""rosinality/stylegan2-pytorch generators, mapped onto the NVIDIA-layout StyleGAN2 network.

rosinality's ``model.Generator`` computes the same function as NVIDIA's StyleGAN2 generator
(Karras et al., arXiv:1912.04958): pixel norm + equalised-lr MLP, modulated/demodulated convs
(its weight gain cancels under demodulation), the same [1,3,3,1] FIR upsampling and w-slot sharing.
Only names and layouts differ, so a checkpoint is converted key by key and runs on
:class:`engine.models.stylegan2.Generator` with ``family = "rosinality"``:

* ``style.{i+1}`` -> ``mapping.fc{i}``; ``input.input`` (1,C,4,4) -> ``synthesis.b4.const``;
* ``conv1`` / ``convs.{2j}`` / ``convs.{2j+1}`` -> ``b4.conv1`` / ``bR.conv0`` / ``bR.conv1``
  (weight (1,O,I,k,k) -> (O,I,k,k); ``modulation`` -> ``affine``; ``activate.bias`` -> ``bias``;
  ``noise.weight`` (1,) -> ``noise_strength`` (); ``noises.noise_i`` (1,1,R,R) -> ``noise_const``);
* ``to_rgb1`` / ``to_rgbs.j`` -> ``b4.torgb`` / ``bR.torgb`` (bias (1,3,1,1) -> (3,));
* blur / upsample kernels are stored multiplied by 4 (= factor^2); NVIDIA buffers sum to 1.

rosinality stores no truncation centre; ``latent_avg`` (converter output) becomes ``w_avg``,
otherwise ``w_avg`` is estimated as the mean w of 4096 fixed-seed z.
"""

from __future__ import annotations

import math
import re

import torch
from torch import Tensor

from engine.errors import CheckpointError, check
from engine.models.stylegan2 import Generator, build_from_state_dict, estimate_w_avg, setup_filter

# Keys every rosinality generator has; enough to tell it from NVIDIA's and from other models.
REQUIRED_KEYS = ("style.1.weight", "input.input", "conv1.conv.weight", "to_rgb1.conv.weight", "noises.noise_0")
LR_MLP = 0.01  # rosinality's default ``lr_mlp``; weights are stored divided by it


def is_rosinality_state_dict(sd: dict) -> bool:
    """True when ``sd`` has rosinality generator names."""
    return all(k in sd for k in REQUIRED_KEYS)


def infer_kwargs(sd: dict[str, Tensor]) -> dict:
    """Official-style ``Generator`` kwargs from tensor shapes (channel table included).

    The channel table is read from the weights rather than from rosinality's fixed
    {4..32: 512, 64: 256*cm, ...} dictionary, so nets with any table load.
    """
    n_mlp = sum(1 for k in sd if re.fullmatch(r"style\.\d+\.weight", k))
    n_rgbs = sum(1 for k in sd if re.fullmatch(r"to_rgbs\.\d+\.conv\.weight", k))
    style_dim = int(sd["style.1.weight"].shape[1])
    channels = {4: int(sd["input.input"].shape[1])}
    for j in range(n_rgbs):
        channels[2 ** (j + 3)] = int(sd[f"convs.{2 * j}.conv.weight"].shape[1])
    blur = sd.get("convs.0.conv.blur.kernel", sd.get("to_rgbs.0.upsample.kernel"))
    taps = [1, 3, 3, 1] if blur is None else (blur.sum(dim=0) / blur.sum()).tolist()
    return dict(z_dim=style_dim, c_dim=0, w_dim=style_dim, img_resolution=2 ** (n_rgbs + 2),
                img_channels=int(sd["to_rgb1.conv.weight"].shape[1]),
                mapping_kwargs=dict(num_layers=n_mlp, lr_multiplier=LR_MLP),
                synthesis_kwargs=dict(channels=channels, resample_filter=taps, num_fp16_res=0, conv_clamp=None))


def _styled_conv(src: str, dst: str, noise: Tensor, sd: dict[str, Tensor], out: dict[str, Tensor]) -> None:
    out[f"{dst}.weight"] = sd[f"{src}.conv.weight"][0]
    out[f"{dst}.affine.weight"] = sd[f"{src}.conv.modulation.weight"]
    out[f"{dst}.affine.bias"] = sd[f"{src}.conv.modulation.bias"]
    out[f"{dst}.noise_strength"] = sd[f"{src}.noise.weight"].reshape([])
    out[f"{dst}.noise_const"] = noise[0, 0]
    out[f"{dst}.bias"] = sd[f"{src}.activate.bias"]
    if f"{src}.conv.blur.kernel" in sd:
        out[f"{dst}.resample_filter"] = sd[f"{src}.conv.blur.kernel"] / 4


def _to_rgb(src: str, dst: str, sd: dict[str, Tensor], out: dict[str, Tensor]) -> None:
    out[f"{dst}.weight"] = sd[f"{src}.conv.weight"][0]
    out[f"{dst}.affine.weight"] = sd[f"{src}.conv.modulation.weight"]
    out[f"{dst}.affine.bias"] = sd[f"{src}.conv.modulation.bias"]
    out[f"{dst}.bias"] = sd[f"{src}.bias"].reshape(-1)


def convert_state_dict(sd: dict[str, Tensor], kwargs: dict, w_avg: Tensor | None = None) -> dict[str, Tensor]:
    """rosinality state dict -> state dict of ``Generator(**kwargs)`` (from :func:`infer_kwargs`).

    Buffers rosinality lacks (filters of layers that do not resample, ``w_avg``) get the values
    the NVIDIA constructor gives them; they do not change the output.
    """
    flt = setup_filter(kwargs["synthesis_kwargs"]["resample_filter"])
    out = {"mapping.w_avg": torch.zeros([kwargs["w_dim"]]) if w_avg is None else w_avg.reshape(-1).float()}
    for i in range(kwargs["mapping_kwargs"]["num_layers"]):
        out[f"mapping.fc{i}.weight"] = sd[f"style.{i + 1}.weight"]
        out[f"mapping.fc{i}.bias"] = sd[f"style.{i + 1}.bias"]
    out["synthesis.b4.const"] = sd["input.input"][0]
    out["synthesis.b4.resample_filter"] = flt.clone()
    _styled_conv("conv1", "synthesis.b4.conv1", sd["noises.noise_0"], sd, out)
    out["synthesis.b4.conv1.resample_filter"] = flt.clone()
    _to_rgb("to_rgb1", "synthesis.b4.torgb", sd, out)
    for j in range(int(math.log2(kwargs["img_resolution"])) - 2):
        b = f"synthesis.b{2 ** (j + 3)}"
        _styled_conv(f"convs.{2 * j}", f"{b}.conv0", sd[f"noises.noise_{2 * j + 1}"], sd, out)
        _styled_conv(f"convs.{2 * j + 1}", f"{b}.conv1", sd[f"noises.noise_{2 * j + 2}"], sd, out)
        out[f"{b}.conv1.resample_filter"] = flt.clone()
        _to_rgb(f"to_rgbs.{j}", f"{b}.torgb", sd, out)
        out[f"{b}.resample_filter"] = sd[f"to_rgbs.{j}.upsample.kernel"] / 4
    return out


def build_generator(sd: dict[str, Tensor], latent_avg: Tensor | None = None, source: str = "state dict") -> Generator:
    """A :class:`Generator` (``family='rosinality'``) holding the weights of rosinality state dict ``sd``."""
    check(is_rosinality_state_dict(sd),
          f"{source}: not a rosinality generator. Got: keys like {sorted(sd)[:4]}", CheckpointError)
    try:
        kwargs = infer_kwargs(sd)
        G = build_from_state_dict(Generator, kwargs, convert_state_dict(sd, kwargs, latent_avg))
    except (KeyError, RuntimeError, IndexError, ValueError, AttributeError, TypeError) as e:
        raise CheckpointError(f"{source}: rosinality generator with missing or mis-shaped tensors. Got: {e}") from e
    G.family = "rosinality"
    if latent_avg is None:
        G.mapping.w_avg.copy_(estimate_w_avg(G))
    return G
