"""StyleGAN2 networks against the official reference outputs (shared fixtures) and naive ops."""

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from engine.errors import GanvasError
from engine.models import rosinality
from engine.models.stylegan2 import (Discriminator, Generator, conv2d_resample, downsample2d, modulated_conv2d,
                                     setup_filter, truncate, upfirdn2d, upsample2d)
from tests.engine.models import STYLEGAN_FIXTURES as FIX

ADA_GENERATORS = ["sg2ada_G", "sg2ada_cond_G", "sg2ada_fp16clamp_G"]


def assert_close(actual, ref, tol=1e-4):
    """The fixtures' tolerance: |a - b| <= tol * max(1, max|ref|)."""
    actual = actual.detach().cpu().numpy() if isinstance(actual, torch.Tensor) else np.asarray(actual)
    ref = np.asarray(ref)
    assert actual.shape == ref.shape
    bound = tol * max(1.0, float(np.abs(ref).max()))
    err = float(np.abs(actual - ref).max())
    assert err <= bound, f"max error {err:.3g} > {bound:.3g}"


def load_fixture(name, cls=Generator):
    spec = json.loads((FIX / f"{name}.json").read_text())
    net = cls(**spec["init_kwargs"]).eval()
    net.load_state_dict(load_file(FIX / f"{name}.safetensors"), strict=True)
    return net, spec, np.load(FIX / f"{name}.npz")


def inputs(ref):
    z = torch.from_numpy(ref["z"])
    c = torch.from_numpy(ref["c"]) if ref["c"].shape[1] else None
    return z, c


# ----------------------------------------------------------------------------- ops against naive references


def naive_upfirdn2d(x, f, up, down, pad, gain=1.0):
    """Explicit zero insertion, padding, full 2-D true convolution, subsampling."""
    n, c, h, w = x.shape
    z = torch.zeros(n, c, h * up, w * up, dtype=x.dtype)
    z[:, :, ::up, ::up] = x
    z = F.pad(z, list(pad))
    k = (f * gain).flip([0, 1])[None, None].repeat(c, 1, 1, 1)
    return F.conv2d(z, k, groups=c)[:, :, ::down, ::down]


@pytest.mark.parametrize("up,down,pad", [(2, 1, (2, 1, 2, 1)), (1, 2, (1, 1, 1, 1)), (1, 1, (1, 2, 0, 3)),
                                         (2, 1, (-1, 0, 4, 2)), (1, 1, (-1, -1, 2, 2))])
def test_upfirdn2d_matches_naive(up, down, pad):
    torch.manual_seed(0)
    x = torch.randn(2, 3, 9, 9, dtype=torch.float64)
    f = torch.rand(4, 4, dtype=torch.float64)  # asymmetric: catches a missing filter flip
    assert torch.allclose(upfirdn2d(x, f, up, down, pad, gain=3.0), naive_upfirdn2d(x, f, up, down, pad, 3.0))


def test_resampling_shapes_and_dc_gain():
    f = setup_filter([1, 3, 3, 1])
    assert torch.allclose(f.sum(), torch.tensor(1.0))
    x = torch.ones(1, 2, 8, 8)
    assert torch.allclose(upsample2d(x, f)[:, :, 2:-2, 2:-2], torch.ones(1, 2, 12, 12))
    assert downsample2d(x, f).shape == (1, 2, 4, 4)


@pytest.mark.parametrize("up,k", [(1, 3), (2, 3), (2, 1), (1, 1)])
def test_modulated_conv_fused_equals_naive_per_sample(up, k):
    torch.manual_seed(1)
    n, i, o = 3, 5, 4
    x, weight, styles = torch.randn(n, i, 8, 8, dtype=torch.float64), torch.randn(o, i, k, k, dtype=torch.float64), \
        torch.randn(n, i, dtype=torch.float64)
    f = setup_filter([1, 3, 3, 1]).double()
    fused = modulated_conv2d(x, weight, styles, up=up, padding=k // 2, resample_filter=f, fused=True)
    split = modulated_conv2d(x, weight, styles, up=up, padding=k // 2, resample_filter=f, fused=False)
    for s in range(n):  # naive: explicit per-sample weights, zero insertion + FIR for upsampling
        w = weight * styles[s].reshape(1, -1, 1, 1)
        w = w / (w.square().sum(dim=[1, 2, 3], keepdim=True) + 1e-8).sqrt()
        xs = x[s:s + 1]
        if up == 1:
            ref = F.conv2d(xs, w, padding=k // 2)
        else:  # transposed conv = zero insertion + full true convolution; then the FIR at 2x
            ref = F.conv2d(naive_upfirdn2d(xs, torch.ones(1, 1, dtype=x.dtype), 2, 1, (k - 1, k - 2) * 2),
                           w.flip([2, 3]))
            ref = naive_upfirdn2d(ref, f, 1, 1, (1 if k == 3 else 2,) * 4, gain=4)
        assert torch.allclose(fused[s:s + 1], ref, atol=1e-10)
        assert torch.allclose(split[s:s + 1], ref, atol=1e-10)


def test_modulated_conv_gradients():
    torch.manual_seed(2)
    x = torch.randn(2, 2, 3, 3, dtype=torch.float64, requires_grad=True)
    w = torch.randn(2, 2, 3, 3, dtype=torch.float64, requires_grad=True)
    s = torch.randn(2, 2, dtype=torch.float64, requires_grad=True)
    f = setup_filter([1, 3, 3, 1]).double()
    assert torch.autograd.gradcheck(lambda a, b, c: modulated_conv2d(a, b, c, up=2, padding=1, resample_filter=f),
                                    (x, w, s), fast_mode=True)


def test_conv2d_resample_down_matches_filter_then_stride():
    torch.manual_seed(3)
    x, w = torch.randn(1, 2, 8, 8), torch.randn(3, 2, 3, 3)
    f = setup_filter([1, 3, 3, 1])
    ref = F.conv2d(upfirdn2d(x, f, padding=(2, 2, 2, 2)), w, stride=2)
    assert torch.allclose(conv2d_resample(x, w, f, down=2, padding=1), ref)


# ----------------------------------------------------------------------------- generators vs official outputs


@pytest.mark.parametrize("name", ADA_GENERATORS)
def test_state_dict_names_and_order(name):
    G, spec, _ = load_fixture(name)
    ours = [[k, list(v.shape)] for k, v in G.state_dict().items()]
    assert ours == [[k, s] for k, s, _ in spec["state_dict"]]
    assert G.num_ws == spec["derived"]["num_ws"]
    use_fp16 = {f"b{r}": getattr(G.synthesis, f"b{r}").use_fp16 for r in G.synthesis.block_resolutions}
    assert use_fp16 == spec["derived"]["block_use_fp16"]


@pytest.mark.parametrize("name", ADA_GENERATORS)
def test_generator_matches_official(name):
    G, _, ref = load_fixture(name)
    z, c = inputs(ref)
    with torch.no_grad():
        assert_close(G.w_avg, ref["w_avg"])
        assert_close(G.mapping(z, c), ref["ws_psi1"])
        assert_close(G(z, c), ref["img_psi1_const"])
        assert_close(G.mapping(z, c, truncation_psi=0.7), ref["ws_psi0.7"])
        assert_close(G(z, c, truncation_psi=0.7), ref["img_psi0.7_const"])
        cutoff = int(ref["truncation_cutoff_used"][0])
        assert_close(G.mapping(z, c, truncation_psi=0.7, truncation_cutoff=cutoff), ref["ws_psi0.7_cutoff3"])
        assert_close(G(z, c, truncation_psi=0.7, truncation_cutoff=cutoff), ref["img_psi0.7_cutoff3_const"])
        assert_close(G(z, c, noise_mode="none"), ref["img_psi1_none"])
        ws = torch.from_numpy(ref["ws_custom"])
        assert_close(G.synthesis(ws, noise_mode="const"), ref["img_synthesis_ws_custom_const"])
        assert_close(G.synthesis(ws, fused_modconv=False), ref["img_synthesis_ws_custom_const"])


def test_styles_and_layer_statistics_match_official():
    G, _, ref = load_fixture("sg2ada_G")
    z, c = inputs(ref)
    seen = {}
    hooks = [m.register_forward_hook(lambda mod, args, out, name=name: seen.__setitem__(name, out))
             for name, m in G.named_modules() if name.endswith("affine") or name.split(".")[-1].startswith(("conv", "torgb"))]
    with torch.no_grad():
        G(z, c)
    for h in hooks:
        h.remove()
    for key in ref.files:
        if key.startswith("style/"):
            assert_close(seen[key[len("style/"):]], ref[key])
        elif key.startswith("act_stats/"):
            out = seen[key[len("act_stats/"):]].flatten(1)
            stats = torch.stack([out.mean(1), out.std(1), out.amin(1), out.amax(1)], dim=1)
            assert_close(stats, ref[key], tol=1e-3)


def test_block_features_match_official():
    G, _, ref = load_fixture("sg2ada_G")
    with torch.no_grad():
        img, feats = G.synthesis(G.mapping(*inputs(ref)), return_features=True)
    assert list(feats) == ["b4", "b8", "b16", "b32"]
    for name, x in feats.items():
        assert_close(x[0], ref[f"block_x0/synthesis.{name}"])
    assert_close(img[0], ref["block_img0/synthesis.b32"])


def test_fp16_blocks_follow_the_official_half_path_when_enabled_on_cpu():
    G, _, ref = load_fixture("sg2ada_fp16clamp_G")
    z, _ = inputs(ref)
    G.synthesis.fp16_devices = ("cpu",)  # normally CUDA only; here to exercise the half-precision path
    with torch.no_grad():
        half = G(z)
        exact = G(z, force_fp32=True)
    assert half.dtype == torch.float32 and not torch.equal(half, exact)
    assert_close(half, ref["img_psi1_const_fp16_cpu"], tol=1e-2)
    assert_close(exact, ref["img_psi1_const"])


def test_noise_modes_and_explicit_noise():
    G, _, ref = load_fixture("sg2ada_G")
    z, _ = inputs(ref)
    with torch.no_grad():
        ws = G.mapping(z)
        r1, r2 = G.synthesis(ws, noise_mode="random"), G.synthesis(ws, noise_mode="random")
        assert not torch.allclose(r1, r2)
        zeros = [torch.zeros(1, 1, r, r) for r in (4, 8, 8, 16, 16, 32, 32)]
        assert_close(G.synthesis(ws, noise=zeros), ref["img_psi1_none"])
        consts = [layer.noise_const[None, None] for layer in G.synthesis.modules() if hasattr(layer, "noise_const")]
        assert_close(G.synthesis(ws, noise=consts), ref["img_psi1_const"])
    assert G.synthesis.num_noise == 7


def test_input_checks():
    G, _, _ = load_fixture("sg2ada_cond_G")
    with pytest.raises(GanvasError, match="conditional.*Got: None"):
        G.mapping(torch.zeros(1, 64))
    with pytest.raises(GanvasError, match=r"ws must have shape \(N, 8, 64\). Got: \(1, 7, 64\)"):
        G.synthesis(torch.zeros(1, 7, 64))
    with pytest.raises(GanvasError, match="noise_mode"):
        G.synthesis(torch.zeros(1, 8, 64), noise_mode="loud")


def test_truncate_helper_moves_only_cutoff_slots():
    ws, avg = torch.randn(2, 6, 4), torch.randn(4)
    out = truncate(ws, avg, 0.5, cutoff=2)
    assert torch.allclose(out[:, :2], avg + 0.5 * (ws[:, :2] - avg)) and torch.equal(out[:, 2:], ws[:, 2:])


@pytest.mark.parametrize("architecture", ["orig", "skip", "resnet"])
def test_architectures_build_and_run(architecture):
    torch.manual_seed(4)
    G = Generator(8, 0, 8, 16, 1, mapping_kwargs={"num_layers": 1},
                  synthesis_kwargs={"channel_base": 64, "channel_max": 8, "architecture": architecture}).eval()
    assert G.num_ws == 6
    img, feats = G.synthesis(G.mapping(torch.randn(2, 8)), return_features=True)
    assert img.shape == (2, 1, 16, 16) and feats["b8"].shape == (2, 8, 8, 8)
    assert ("synthesis.b8.skip.weight" in G.state_dict()) == (architecture == "resnet")
    assert ("synthesis.b8.torgb.weight" in G.state_dict()) == (architecture == "skip")
    img.sum().backward()
    assert G.synthesis.b16.conv0.weight.grad is not None


# ----------------------------------------------------------------------------- discriminators


@pytest.mark.parametrize("name", ["sg2ada_D", "sg2ada_cond_D"])
def test_discriminator_matches_official(name):
    D, spec, ref = load_fixture(name, Discriminator)
    assert [k for k in D.state_dict()] == [k for k, _, _ in spec["state_dict"]]
    img, c = torch.from_numpy(ref["img"]), torch.from_numpy(ref["c"])
    c = c if c.shape[1] else None
    with torch.no_grad():
        assert_close(D(img[:4], None if c is None else c[:4]), ref["logits_first4"])
        logits, feats = D(img, c, return_features=True)
    assert_close(logits, ref["logits_all8"])
    assert {k: tuple(v.shape) for k, v in feats.items()} == {"b32": (8, 32, 16, 16), "b16": (8, 32, 8, 8),
                                                             "b8": (8, 32, 4, 4)}


# ----------------------------------------------------------------------------- rosinality on the same network


def test_rosinality_fixture_through_the_shared_network():
    ref = np.load(FIX / "rosinality_G.npz")
    G = rosinality.build_generator(load_file(FIX / "rosinality_G.safetensors")).eval()
    assert G.family == "rosinality" and G.num_ws == 8
    t = lambda k: torch.from_numpy(ref[k])  # noqa: E731
    with torch.no_grad():
        G.mapping.w_avg.copy_(t("truncation_latent")[0])
        ws = G.mapping(t("z"))
        assert_close(ws, ref["latent_z"])
        assert_close(G.synthesis(ws), ref["img_z"])
        assert_close(ws[:, 0], ref["w"])
        assert_close(G.synthesis(t("w")[:, None].repeat(1, G.num_ws, 1)), ref["img_w_input_is_latent"])
        assert_close(G.mapping(t("z"), truncation_psi=0.7), ref["latent_z_trunc0.7"])
        assert_close(G(t("z"), truncation_psi=0.7), ref["img_z_trunc0.7"])
        assert_close(G.synthesis(t("wplus_custom")), ref["img_wplus_custom"])
        wt = truncate(t("wplus_custom"), G.w_avg, 0.7)
        assert_close(wt, ref["latent_wplus_custom_trunc0.7"])
        assert_close(G.synthesis(wt), ref["img_wplus_custom_trunc0.7"])
        mixed = torch.cat([G.mapping(t("z"))[:, :3], G.mapping(t("z2"))[:, 3:]], dim=1)
        assert_close(mixed, ref["latent_mix_z_z2_inject3"])
        assert_close(G.synthesis(mixed), ref["img_mix_z_z2_inject3"])
        noise = [t(f"noise_explicit/{i}") for i in range(7)]
        assert_close(G.synthesis(G.mapping(t("z")), noise=noise), ref["img_z_explicit_noise"])


def test_synthesis_gradients_wrt_ws_and_noise():
    """What inversion needs: exact gradients through the in-place inference shortcuts."""
    torch.manual_seed(6)
    G = Generator(4, 0, 4, 8, 3, mapping_kwargs={"num_layers": 1},
                  synthesis_kwargs={"channel_base": 16, "channel_max": 3, "conv_clamp": 10.0}).double().eval()
    ws = torch.randn(1, G.num_ws, 4, dtype=torch.float64, requires_grad=True)
    noise = [torch.randn(1, 1, r, r, dtype=torch.float64, requires_grad=True) for r in (4, 8, 8)]
    assert torch.autograd.gradcheck(lambda w, *n: G.synthesis(w, noise=list(n)), (ws, *noise), fast_mode=True)
    ws2 = ws.detach().repeat(2, 1, 1).requires_grad_()  # batch of 2: the shared-weight path
    assert torch.autograd.gradcheck(lambda w: G.synthesis(w, noise_mode="const"), (ws2,), fast_mode=True)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="half-precision blocks run only on CUDA")
def test_cuda_fp16_blocks_and_fp32_path():
    G, _, ref = load_fixture("sg2ada_fp16clamp_G")
    G = G.cuda()
    z = torch.from_numpy(ref["z"]).cuda()
    with torch.no_grad():
        assert_close(G(z, force_fp32=True).cpu(), ref["img_psi1_const"])
        assert_close(G(z).cpu(), ref["img_psi1_const_fp16_cpu"], tol=1e-2)
        assert_close(G(z[:1]).cpu(), ref["img_psi1_const_fp16_cpu"][:1], tol=1e-2)  # batch 1: fused fp16 path
