"""Conformance of engine.models.stylegan3 with the official StyleGAN3 generator.

The fixtures (shared/fixtures/stylegan/sg3_{T,R}_G.*) were produced by NVlabs/stylegan3
on the CPU; every reference array must be reproduced within
|a - b| <= 1e-4 * max(1, max|ref|).
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from engine.errors import GanvasError
from engine.models import stylegan3 as sg3
from engine.models.stylegan3 import Generator

FIXTURES = Path(__file__).resolve().parents[3].parent / "shared" / "fixtures" / "stylegan"
CONFIGS = ["T", "R"]


def assert_close(actual: torch.Tensor | np.ndarray, ref: np.ndarray, what: str) -> None:
    actual = actual.detach().cpu().numpy() if isinstance(actual, torch.Tensor) else actual
    assert actual.shape == ref.shape, f"{what}: shape {actual.shape} != {ref.shape}"
    tol = 1e-4 * max(1.0, float(np.abs(ref).max()))
    err = float(np.abs(actual - ref).max())
    assert err <= tol, f"{what}: max error {err:.3g} > {tol:.3g}"


@lru_cache(maxsize=None)
def fixture(cfg: str) -> tuple[dict, dict[str, torch.Tensor], dict[str, np.ndarray]]:
    stem = FIXTURES / f"sg3_{cfg}_G"
    meta = json.loads(stem.with_suffix(".json").read_text())
    state = load_file(str(stem.with_suffix(".safetensors")))
    with np.load(stem.with_suffix(".npz")) as npz:
        ref = {k: npz[k] for k in npz.files}
    return meta, state, ref


def loaded(cfg: str) -> Generator:
    meta, state, _ = fixture(cfg)
    G = Generator(**meta["init_kwargs"]).eval()
    G.load_state_dict(state, strict=True)
    return G


@pytest.fixture(scope="module", params=CONFIGS)
def case(request: pytest.FixtureRequest) -> tuple[Generator, dict[str, np.ndarray]]:
    if not FIXTURES.is_dir():
        pytest.skip(f"fixtures not found at {FIXTURES}")
    return loaded(request.param), fixture(request.param)[2]


# --- structure ----------------------------------------------------------------


@pytest.mark.parametrize("cfg", CONFIGS)
def test_state_dict_names_shapes_and_order(cfg: str) -> None:
    meta, _, _ = fixture(cfg)
    G = Generator(**meta["init_kwargs"])
    ours = [[k, list(v.shape), str(v.dtype).replace("torch.", "")] for k, v in G.state_dict().items()]
    assert ours == meta["state_dict"]


@pytest.mark.parametrize("cfg", CONFIGS)
def test_layer_table_matches_official(cfg: str) -> None:
    meta, _, _ = fixture(cfg)
    G = Generator(**meta["init_kwargs"])
    table = meta["derived"]["layers"]
    assert G.synthesis.layer_names == [row["name"] for row in table]
    assert G.num_ws == meta["derived"]["num_ws"]
    assert G.synthesis.input.channels == meta["derived"]["input"]["channels"]
    for row in table:
        layer = getattr(G.synthesis, row["name"])
        s = layer.spec
        got = {
            "is_torgb": s.is_torgb, "is_critically_sampled": s.is_critically_sampled,
            "use_fp16": s.use_fp16, "in_channels": s.in_channels, "out_channels": s.out_channels,
            "in_size": [s.in_size] * 2, "out_size": [s.out_size] * 2,
            "in_sampling_rate": s.in_sampling_rate, "out_sampling_rate": s.out_sampling_rate,
            "conv_kernel": layer.conv_kernel, "up_factor": layer.up_factor, "up_taps": layer.up_taps,
            "down_factor": layer.down_factor, "down_taps": layer.down_taps,
            "down_radial": layer.down_radial, "padding": layer.padding,
            "has_up_filter_buffer": layer.up_filter is not None,
            "has_down_filter_buffer": layer.down_filter is not None,
        }
        assert got == {k: row[k] for k in got}, row["name"]
        for key in ("in_cutoff", "out_cutoff", "in_half_width", "out_half_width"):
            assert getattr(s, key) == pytest.approx(row[key], rel=1e-12), (row["name"], key)


@pytest.mark.parametrize("cfg", CONFIGS)
def test_designed_filters_equal_stored_buffers(cfg: str) -> None:
    meta, state, _ = fixture(cfg)
    G = Generator(**meta["init_kwargs"])
    filters = {k: v for k, v in G.state_dict().items() if k.endswith("_filter")}
    assert any(v.ndim == 2 for v in filters.values()) == (cfg == "R")
    for name, f in filters.items():
        torch.testing.assert_close(f, state[name], atol=1e-6, rtol=0, msg=name)


# --- numerical equivalence with the official forward pass -----------------------


def test_mapping_and_truncation(case) -> None:
    G, ref = case
    z = torch.from_numpy(ref["z"])
    with torch.no_grad():
        assert_close(G.w_avg, ref["w_avg"], "w_avg")
        assert_close(G.mapping(z), ref["ws_psi1"], "ws_psi1")
        assert_close(G.mapping(z, truncation_psi=0.7), ref["ws_psi0.7"], "ws_psi0.7")
        cutoff = int(ref["truncation_cutoff_used"][0])
        assert_close(G.mapping(z, truncation_psi=0.7, truncation_cutoff=cutoff),
                     ref["ws_psi0.7_cutoff8"], "ws_psi0.7_cutoff8")


def test_images(case) -> None:
    G, ref = case
    z, c = torch.from_numpy(ref["z"]), torch.from_numpy(ref["c"])
    with torch.no_grad():
        assert_close(G(z, c), ref["img_psi1"], "img_psi1")
        assert_close(G(z, truncation_psi=0.7, noise_mode="random"), ref["img_psi0.7"], "img_psi0.7")
        assert_close(G(z, truncation_psi=0.7, truncation_cutoff=8), ref["img_psi0.7_cutoff8"], "cutoff8")
        ws = torch.from_numpy(ref["ws_custom"])
        assert_close(G.synthesis(ws, noise_mode="const"), ref["img_synthesis_ws_custom"], "ws_custom")


def test_styles_and_activation_statistics(case) -> None:
    G, ref = case
    styles: dict[str, torch.Tensor] = {}
    hooks = [module.register_forward_hook(lambda m, i, o, name=name: styles.__setitem__(name, o))
             for name, module in G.named_modules() if name.endswith(".affine")]
    try:
        with torch.no_grad():
            img, feats = G.synthesis(G.mapping(torch.from_numpy(ref["z"])), return_features=True)
    finally:
        for h in hooks:
            h.remove()
    assert list(feats) == ["input"] + G.synthesis.layer_names
    for name, s in styles.items():
        assert_close(s, ref[f"style/{name}"], name)
    for name, x in feats.items():
        x = x.flatten(1)
        stats = torch.stack([x.mean(1), x.std(1), x.amin(1), x.amax(1)], dim=1)
        assert_close(stats, ref[f"act_stats/synthesis.{name}"], f"act_stats {name}")
    if "layer_out0/synthesis.input" in ref:
        assert_close(feats["input"][0], ref["layer_out0/synthesis.input"], "Fourier input map")
    assert_close(img, ref["img_psi1"], "img_psi1 via synthesis")


def test_input_transform(case) -> None:
    G, ref = case
    z = torch.from_numpy(ref["z"])
    G.set_input_transform(translate=(0.1, -0.05), rotate_deg=10)
    try:
        assert_close(G.synthesis.input.transform, ref["input_transform_custom"], "transform buffer")
        with torch.no_grad():
            assert_close(G(z), ref["img_psi1_transform_custom"], "transformed image")
    finally:
        G.set_input_transform()
    assert torch.equal(G.synthesis.input.transform, torch.eye(3))


def test_translation_moves_content_right_and_down() -> None:
    G = loaded("T")
    z = torch.from_numpy(fixture("T")[2]["z"][:2])
    with torch.no_grad():
        img = G(z)
        G.set_input_transform(translate=(0.25, 0.125))  # 8 px right, 4 px down at 32 px
        shifted = G(z)
        G.set_input_transform()
    expected = torch.roll(img, shifts=(4, 8), dims=(2, 3))[:, :, 8:24, 8:24]
    torch.testing.assert_close(shifted[:, :, 8:24, 8:24], expected, atol=5e-3, rtol=0)
    assert (shifted - img).abs().max() > 0.05


# --- behaviour beyond the fixtures ----------------------------------------------


def small_generator(seed: int) -> Generator:
    torch.manual_seed(seed)
    return Generator(z_dim=8, c_dim=3, w_dim=12, img_resolution=16, img_channels=4,
                     mapping_kwargs={"num_layers": 3, "lr_multiplier": 0.1, "w_avg_beta": 0.9},
                     channel_base=128, channel_max=16, num_layers=6, num_critical=1, margin_size=4,
                     conv_kernel=1, use_radial_filters=True, filter_size=4, output_scale=0.5,
                     conv_clamp=None, magnitude_ema_beta=0.9, num_fp16_res=0).eval()


def test_round_trip_non_default_hyper_parameters() -> None:
    G = small_generator(seed=1)
    with torch.no_grad():  # move the running averages off their initial values
        G(torch.randn(6, 8), torch.eye(3)[[0, 1, 2, 0, 1, 2]], update_emas=True)
    H = small_generator(seed=2)  # other random freqs/phases/weights
    z, c = torch.randn(2, 8), torch.eye(3)[:2]
    with torch.no_grad():
        before = H(z, c)
        H.load_state_dict(G.state_dict(), strict=True)
        assert Generator(**G.init_kwargs).state_dict().keys() == G.state_dict().keys()
        assert G.num_ws == 8 and G.synthesis.layer_names[-1] == "L6_16_4"
        assert not torch.allclose(before, G(z, c))
        torch.testing.assert_close(H(z, c, truncation_psi=0.5), G(z, c, truncation_psi=0.5), atol=0, rtol=0)


def test_update_emas_only_when_asked() -> None:
    G = small_generator(seed=3)
    z, c = torch.randn(4, 8), torch.eye(3)[[0, 1, 2, 0]]
    ema = G.synthesis.L0_24_16.magnitude_ema.clone()
    with torch.no_grad():
        G(z, c)
        assert torch.equal(G.synthesis.L0_24_16.magnitude_ema, ema) and not G.w_avg.any()
        G(z, c, update_emas=True)
    assert not torch.equal(G.synthesis.L0_24_16.magnitude_ema, ema) and G.w_avg.abs().sum() > 0


def test_batch_of_one_matches_batch() -> None:
    G, ref = loaded("R"), fixture("R")[2]
    with torch.no_grad():
        single = G(torch.from_numpy(ref["z"][1:2]))
    assert_close(single, ref["img_psi1"][1:2], "single sample")


def test_gradients_through_filtered_layers() -> None:
    torch.manual_seed(0)
    x = torch.randn(2, 3, 8, 8, dtype=torch.float64, requires_grad=True)
    styles = torch.randn(2, 3, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(4, 3, 3, 3, dtype=torch.float64)
    up = sg3.design_lowpass_filter(8, 2.0, 3.0, 16.0).double()
    down = sg3.design_lowpass_filter(8, 2.0, 3.0, 16.0, radial=True).double()

    def layer(x: torch.Tensor, styles: torch.Tensor) -> torch.Tensor:
        y = sg3.modulated_conv2d(x, weight, styles, True, 2, torch.tensor(0.8, dtype=torch.float64))
        return sg3.filtered_lrelu(y, up, down, torch.zeros(4, dtype=torch.float64), 2, 2,
                                  [3, 2, 3, 2], gain=2**0.5, slope=0.2, clamp=1.0)

    assert torch.autograd.gradcheck(layer, (x, styles), fast_mode=True)
    with torch.no_grad():  # the in-place path taken without autograd gives the same values
        fast = layer(x, styles)
    torch.testing.assert_close(fast, layer(x, styles).detach(), atol=0, rtol=0)


def test_half_precision_layer_math() -> None:
    G = loaded("T")
    layer = G.synthesis.L5_52_27
    torch.manual_seed(0)
    x, w = torch.randn(2, 32, 36, 36), torch.randn(2, 64)
    with torch.no_grad():
        full = layer(x, w)
        y = sg3.modulated_conv2d(x.half(), layer.weight, layer.affine(w), True, 2, layer.magnitude_ema.rsqrt())
        half = sg3.filtered_lrelu(y, layer.up_filter, layer.down_filter, layer.bias, layer.up_factor,
                                  layer.down_factor, layer.padding, gain=2**0.5, slope=0.2, clamp=256)
    assert half.dtype == torch.float16
    torch.testing.assert_close(half.float(), full, atol=1e-2 * full.abs().max().item(), rtol=0)


def test_public_attributes() -> None:
    G = loaded("T")
    assert G.family == "stylegan3"
    assert (G.z_dim, G.c_dim, G.w_dim, G.num_ws, G.img_resolution, G.img_channels) == (64, 0, 64, 16, 32, 3)
    assert G.w_avg.shape == (64,)


def test_bad_inputs_raise_clear_errors() -> None:
    G = small_generator(seed=4)
    with pytest.raises(GanvasError, match="z must have shape"):
        G.mapping(torch.randn(2, 9), torch.eye(3)[:2])
    with pytest.raises(GanvasError, match="c must have shape"):
        G.mapping(torch.randn(2, 8))
    with pytest.raises(GanvasError, match="ws must have shape"):
        G.synthesis(torch.randn(2, 7, 12))
    with pytest.raises(GanvasError, match="noise_mode"):
        G.synthesis(torch.randn(2, 8, 12), noise_mode="bogus")
    with pytest.raises(TypeError, match="Got: \\['channel_bass'\\]"):
        Generator(8, 0, 8, 16, 3, channel_bass=64)
