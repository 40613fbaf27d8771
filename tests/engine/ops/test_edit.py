import os
from pathlib import Path

import numpy as np
import pytest
import torch

from engine.errors import Cancelled, GanvasError
from engine.jobs import CancelToken
from engine.models.checkpoint import load_generator
from engine.ops.generate import render
from engine.ops.edit import (
    Direction, DirectionEdit, DirectionLibrary, InterpolateEdit, MixEdit, apply_edits, direction_scale,
    directions_path, export_animation, fit_direction, interpolate, interpolation_latents, layer_groups,
    load_boundary, load_directions, mix_styles, parse_layers, pca, project_off, save_directions, sefa,
    style_affines, sweep_latents, write_animation,
)
from tests.engine.models import STYLEGAN_FIXTURES

CHECKPOINTS = STYLEGAN_FIXTURES / "checkpoints"


@pytest.fixture(scope="module")
def G():
    return load_generator(CHECKPOINTS / "network-snapshot-sg2ada-uncond-p4.pkl")  # 32 px, 8 slots, w_dim 64


@pytest.fixture(scope="module")
def ws(G):
    return G.mapping(torch.randn(2, G.z_dim, generator=torch.Generator().manual_seed(1)), None)[:1]


def _abs_cos(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.reshape(-1).double(), b.reshape(-1).double()
    return float((a @ b).abs() / (a.norm() * b.norm()))


# ----------------------------------------------------------------------------- directions


def test_pca_components_are_orthonormal_and_sorted_by_variance():
    gen = torch.Generator().manual_seed(0)
    scales = torch.tensor([0.5, 4.0, 1.0, 2.0, 0.25, 3.0, 0.1, 1.5])
    rotation, _ = torch.linalg.qr(torch.randn(8, 8, generator=gen))
    samples = (torch.randn(20_000, 8, generator=gen) * scales) @ rotation.T + 5.0
    comps, stds, mean = pca(samples)
    assert torch.allclose(comps @ comps.T, torch.eye(8), atol=1e-5)
    assert bool((stds[:-1] >= stds[1:]).all())
    order = scales.argsort(descending=True)
    for k in range(3):  # the planted axes, largest variance first
        assert _abs_cos(comps[k], rotation[:, order[k]]) > 0.995
        assert abs(float(stds[k]) - float(scales[order[k]])) < 0.05 * float(scales[order[k]])
    assert torch.allclose(mean, torch.full((8,), 5.0), atol=0.1)


def test_ganspace_on_a_generator_uses_the_std_along_each_axis(G):
    lib = DirectionLibrary(G, samples=3000)
    d0, d3 = lib.get("ganspace:0"), lib.get("ganspace:3", (2, 5))
    assert d3.layers == (2, 5) and d0.layers is None
    assert abs(float(d0.vector.norm()) - 1) < 1e-5 and abs(float(d0.vector @ d3.vector)) < 1e-5
    assert d0.scale == pytest.approx(direction_scale(lib.samples, d0.vector), rel=1e-4)
    assert d0.scale > d3.scale
    assert lib.get("ganspace:0") is d0  # computed once
    with pytest.raises(GanvasError, match="components"):
        lib.get(f"ganspace:{G.w_dim}")


@pytest.mark.parametrize("name", ["network-snapshot-sg2ada-uncond-p4.pkl", "network-snapshot-sg3-t-p4.pkl"])
def test_style_affines_read_the_slots_the_network_feeds_them(name):
    G = load_generator(CHECKPOINTS / name)
    modules = {m.weight: m for n, m in G.synthesis.named_modules() if n.endswith("affine") and "input" not in n}
    seen: dict[torch.nn.Module, list[torch.Tensor]] = {}
    hooks = [m.register_forward_hook(lambda mod, inp, out: seen.setdefault(mod, []).append(inp[0].clone()))
             for m in modules.values()]
    ws = G.mapping(torch.randn(1, G.z_dim, generator=torch.Generator().manual_seed(0)), None)
    ws = ws + torch.randn(ws.shape, generator=torch.Generator().manual_seed(1))  # distinct slots
    G.synthesis(ws)
    for h in hooks:
        h.remove()
    expected = sorted((int(torch.nonzero((ws[0] == seen[m][0][0]).all(dim=1))[0]), id(m)) for m in modules.values())
    assert sorted((slot, id(modules[w])) for slot, w in style_affines(G)) == expected


def test_sefa_gives_the_closed_form_eigenvectors(G):
    layers = (2, 5)
    vectors, eigvals = sefa(G, layers)
    rows = torch.cat([w for slot, w in style_affines(G) if 2 <= slot < 5]).double()
    rows = rows / rows.norm(dim=1, keepdim=True)
    _, s, vh = torch.linalg.svd(rows, full_matrices=False)  # right singular vectors = eigenvectors of A^T A
    assert torch.allclose(eigvals[: len(s)].double(), s.square(), rtol=1e-4)
    for k in range(5):
        assert _abs_cos(vectors[k], vh[k]) > 0.9999
    assert torch.allclose(vectors @ vectors.T, torch.eye(G.w_dim), atol=1e-5)
    assert not torch.allclose(vectors[0], sefa(G, (5, 8))[0][0])
    with pytest.raises(GanvasError, match="layer range"):
        sefa(G, (3, 3))


def test_boundary_files_good_and_bad_shapes(tmp_path):
    num_ws, w_dim = 8, 64
    for shape in [(1, w_dim), (w_dim,), (num_ws, w_dim)]:
        path = tmp_path / f"b{len(shape)}{shape[0]}.npy"
        np.save(path, np.random.default_rng(0).normal(size=shape).astype(np.float32) * 3)
        vec = load_boundary(path, num_ws, w_dim)
        assert vec.shape == ((w_dim,) if shape[0] in (1, w_dim) else (num_ws, w_dim))
        assert float(vec.norm()) == pytest.approx(1.0, abs=1e-5)
    bad = {"wide.npy": np.zeros((1, w_dim + 1), np.float32), "two.npy": np.ones((2, w_dim), np.float32),
           "int.npy": np.ones((1, w_dim), np.int64), "zero.npy": np.zeros((1, w_dim), np.float32),
           "nan.npy": np.full((1, w_dim), np.nan, np.float32)}
    for name, arr in bad.items():
        np.save(tmp_path / name, arr)
        with pytest.raises(GanvasError, match="Got:"):
            load_boundary(tmp_path / name, num_ws, w_dim)
    (tmp_path / "text.npy").write_text("not an array")
    with pytest.raises(GanvasError, match="not a .npy"):
        load_boundary(tmp_path / "text.npy", num_ws, w_dim)
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(GanvasError):  # pickled objects are refused, never loaded
        load_boundary(tmp_path / "obj.npy", num_ws, w_dim)


def test_fit_direction_recovers_a_planted_direction():
    gen = torch.Generator().manual_seed(0)
    dim, n = 32, 3000
    planted = torch.randn(dim, generator=gen)
    planted /= planted.norm()
    ws = torch.randn(n, dim, generator=gen) * torch.linspace(0.5, 3.0, dim) + 2.0  # anisotropic, off-centre
    score = (ws - 2.0) @ planted
    labels = (score + 0.1 * torch.randn(n, generator=gen) > 0.4).long()  # imbalanced classes
    fit = fit_direction(ws, labels)
    cos = float(fit.normal @ planted)
    assert cos > 0.95  # and points towards label 1
    assert fit.accuracy > 0.9
    predicted = (ws @ fit.normal + fit.offset > 0).long()
    assert float((predicted == labels).float().mean()) > 0.9
    plus = fit_direction(ws[:, None].repeat(1, 3, 1), labels)  # W+ codes give a W+ normal
    assert plus.normal.shape == (3, dim)
    with pytest.raises(GanvasError, match="each label"):
        fit_direction(ws, torch.zeros(n))


def test_conditional_projection_makes_directions_orthogonal():
    gen = torch.Generator().manual_seed(0)
    d, o1, o2 = (torch.randn(64, generator=gen) for _ in range(3))
    c = project_off(d, [o1, o2])
    assert float(c.norm()) == pytest.approx(1.0, abs=1e-6)
    assert abs(float(c @ o1)) < 1e-5 and abs(float(c @ o2)) < 1e-5
    assert float(c @ d) > 0
    plus = project_off(torch.randn(8, 64, generator=gen), [torch.randn(8, 64, generator=gen)])
    assert plus.shape == (8, 64)
    with pytest.raises(GanvasError, match="span"):
        project_off(o1 + 2 * o2, [o1, o2])
    with pytest.raises(GanvasError, match="shape"):
        project_off(d, [torch.randn(8, 64)])


def test_directions_file_round_trip_and_library(tmp_path, G):
    vec = torch.nn.functional.normalize(torch.randn(G.w_dim), dim=0)
    shipped = [Direction("smile", vec, (0, 4), 2.5, "interfacegan", {"accuracy": 0.9}),
               Direction("age", torch.eye(G.w_dim)[0], None, 1.0, "interfacegan")]
    weights = tmp_path / "net.safetensors"
    assert directions_path(weights) == tmp_path / "net.directions.safetensors"
    save_directions(directions_path(weights), shipped, "abc")
    loaded = load_directions(directions_path(weights))
    assert list(loaded) == ["smile", "age"] and torch.equal(loaded["smile"].vector, vec)
    assert loaded["smile"].layers == (0, 4) and loaded["smile"].scale == 2.5 and loaded["age"].layers is None
    lib = DirectionLibrary.for_weights(G, weights, samples=500)
    edit = lib.get("smile").edit(2.0)
    assert edit.layers == (0, 4) and torch.allclose(edit.direction, vec * 2.5)
    np.save(tmp_path / "b.npy", vec.numpy()[None])
    assert _abs_cos(lib.get(str(tmp_path / "b.npy")).vector, vec) > 0.9999
    with pytest.raises(GanvasError, match="smile"):
        lib.get("frown")
    kept = lib.conditioned("smile", ["age", "ganspace:0"])
    assert abs(float(kept.vector @ shipped[1].vector)) < 1e-5 and abs(float(kept.vector @ lib.get("ganspace:0").vector)) < 1e-5
    assert kept.layers == (0, 4) and kept.scale > 0 and lib.conditioned("smile", ["age", "ganspace:0"]) is kept
    (tmp_path / "junk.safetensors").write_bytes(b"junk")
    with pytest.raises(GanvasError, match="directions"):
        load_directions(tmp_path / "junk.safetensors")


# ----------------------------------------------------------------------------- edit stack


def test_layer_ranges_and_groups():
    assert layer_groups(18) == {"coarse": (0, 4), "middle": (4, 8), "fine": (8, 18), "all": (0, 18)}
    assert layer_groups(10)["fine"] == (8, 10)
    g8 = layer_groups(8)
    assert g8["coarse"][0] == 0 and g8["coarse"][1] == g8["middle"][0] and g8["fine"] == (g8["middle"][1], 8)
    assert parse_layers("2-5", 10) == (2, 6) and parse_layers("3", 10) == (3, 4) and parse_layers("fine", 10) == (8, 10)
    for bad in ("5-2", "0-10", "x", "-1"):
        with pytest.raises(GanvasError, match="Got:"):
            parse_layers(bad, 10)


def test_mixing_copies_exactly_the_chosen_layers(G, ws):
    other = G.mapping(torch.randn(1, G.z_dim, generator=torch.Generator().manual_seed(7)), None)
    for layers in [(0, 4), (2, 3), (5, 8)]:
        for out in (mix_styles(ws, other, layers), apply_edits(ws, [MixEdit(other, layers)])):
            inside = torch.zeros(G.num_ws, dtype=torch.bool)
            inside[layers[0]:layers[1]] = True
            assert torch.equal(out[:, inside], other[:, inside])
            assert torch.equal(out[:, ~inside], ws[:, ~inside])


def test_apply_edits_is_pure_ordered_and_respects_layers(G, ws):
    before = ws.clone()
    d = torch.randn(G.w_dim)
    plus = torch.randn(G.num_ws, G.w_dim)
    out = apply_edits(ws, [DirectionEdit(d, 1.5, (1, 3)), DirectionEdit(plus, -0.5),
                           DirectionEdit(d, 100.0, enabled=False)])
    assert torch.equal(ws, before)
    expected = ws.clone()
    expected[:, 1:3] += 1.5 * d
    expected -= 0.5 * plus
    assert torch.allclose(out, expected, atol=1e-6)
    other = torch.zeros_like(ws)
    last = apply_edits(ws, [DirectionEdit(d, 1.0), MixEdit(other, (0, 2))])  # the later mix wins on 0-1
    assert torch.equal(last[:, :2], other[:, :2])
    first = apply_edits(ws, [MixEdit(other, (0, 2)), DirectionEdit(d, 1.0)])
    assert torch.allclose(first[:, :2], d.expand(1, 2, -1))
    psi = apply_edits(ws, [InterpolateEdit(G.w_avg, 0.3)])  # truncation psi 0.7
    assert torch.allclose(psi, G.w_avg.lerp(ws, 0.7), atol=1e-5)
    assert torch.equal(apply_edits(ws, []), ws)
    with pytest.raises(GanvasError, match="layer range"):
        apply_edits(ws, [DirectionEdit(d, 1.0, (0, 9))])
    with pytest.raises(GanvasError, match="direction must be"):
        apply_edits(ws, [DirectionEdit(torch.randn(3), 1.0)])


def test_interpolation_endpoints_are_exact_and_slerp_keeps_the_radius():
    gen = torch.Generator().manual_seed(0)
    a, b = torch.randn(1, 4, 16, generator=gen), torch.randn(1, 4, 16, generator=gen)
    for slerp in (False, True):
        assert torch.equal(interpolate(a, b, 0.0, slerp), a) and torch.equal(interpolate(a, b, 1.0, slerp), b)
    frames = interpolation_latents(a, b, 7, slerp=True)
    assert frames.shape == (7, 4, 16) and torch.equal(frames[0], a[0]) and torch.equal(frames[-1], b[0])
    assert torch.allclose(interpolate(a, b, 0.25), a + 0.25 * (b - a), atol=1e-6)
    center = torch.randn(16, generator=gen)
    u = torch.nn.functional.normalize(torch.randn(1, 4, 16, generator=gen), dim=-1) * 3
    v = torch.nn.functional.normalize(torch.randn(1, 4, 16, generator=gen), dim=-1) * 3
    for t in (0.1, 0.5, 0.9):
        radius = (interpolate(center + u, center + v, t, slerp=True, center=center) - center).norm(dim=-1)
        assert torch.allclose(radius, torch.full_like(radius, 3.0), atol=1e-5)
        assert bool(((interpolate(center + u, center + v, t) - center).norm(dim=-1) < 3.0 - 1e-3).all())
    mid = interpolate(u, 2 * v, 0.5, slerp=True)  # unequal radii: the radius moves linearly
    assert torch.allclose(mid.norm(dim=-1), torch.full((1, 4), 4.5), atol=1e-5)
    same = interpolate(u, u * 2, 0.5, slerp=True)  # parallel vectors: no NaN
    assert torch.allclose(same, u * 1.5, atol=1e-5)


# ----------------------------------------------------------------------------- animation


def _count_frames(path: Path) -> int:
    import imageio.v3 as iio

    plugin = "FFMPEG" if path.suffix == ".mp4" else None
    return int(iio.imread(path, index=None, plugin=plugin).shape[0])


@pytest.mark.parametrize("suffix", [".gif", ".mp4"])
def test_export_writes_a_decodable_animation(tmp_path, G, ws, suffix):
    other = G.mapping(torch.randn(1, G.z_dim, generator=torch.Generator().manual_seed(3)), None)
    latents = interpolation_latents(ws, other, 9)
    steps = []
    path = export_animation(tmp_path / f"anim{suffix}", G, latents, fps=12,
                            progress=lambda step, total, msg, preview=None: steps.append((step, total)))
    assert path.is_file() and _count_frames(path) == 9
    assert steps[-1] == (9, 9) and len(steps) == 9
    assert [p.name for p in tmp_path.iterdir()] == [path.name]


def test_edit_sweep_and_cancel_leaves_nothing(tmp_path, G, ws):
    d = torch.randn(G.w_dim)
    stack = [DirectionEdit(torch.randn(G.w_dim), 0.5), DirectionEdit(d, 0.0, (0, 4))]
    sweep = sweep_latents(ws, stack, 1, [-2.0, 0.0, 2.0])
    assert torch.allclose(sweep[2] - sweep[1], 2.0 * torch.cat([d.expand(4, -1), torch.zeros(4, G.w_dim)]), atol=1e-5)
    assert stack[1].strength == 0.0  # the stack itself is untouched
    for suffix in (".gif", ".mp4"):
        target = tmp_path / f"old{suffix}"
        target.write_bytes(b"previous")
        token = CancelToken()

        def cancel_at_three(step, total, msg, preview=None, token=token):
            if step == 3:
                token.cancel()

        with pytest.raises(Cancelled):
            export_animation(target, G, sweep.repeat(3, 1, 1), progress=cancel_at_three, cancel=token)
        assert target.read_bytes() == b"previous"
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["old.gif", "old.mp4"][: 1 + (suffix == ".mp4")])
    with pytest.raises(GanvasError, match="animations"):
        write_animation(tmp_path / "x.avi", [np.zeros((8, 8, 3), np.uint8)], 1)
    with pytest.raises(GanvasError, match="no frames"):
        write_animation(tmp_path / "empty.gif", [], 0)
    assert not (tmp_path / "empty.gif").exists() and len(os.listdir(tmp_path)) == 2


# ----------------------------------------------------------------------------- command line


def test_edit_command_writes_images_and_animations(tmp_path, G):
    from engine.images import load_image
    from main import main

    weights = str(CHECKPOINTS / "network-snapshot-sg2ada-uncond-p4.pkl")
    for seed, name in ((1, "a"), (2, "b")):
        assert main(["generate", "--model", weights, "--seed", str(seed), "--out", str(tmp_path / f"{name}.png"),
                     "--save-latent", str(tmp_path / f"{name}.npz")]) == 0
    a = torch.from_numpy(np.load(tmp_path / "a.npz")["ws"])
    assert main(["edit", str(tmp_path / "a.npz"), "--model", weights, "--direction", "ganspace:0", "--strength", "2",
                 "--layers", "0-3", "--out", str(tmp_path / "e.png"), "--save-latent", str(tmp_path / "e.npz")]) == 0
    edited = torch.from_numpy(np.load(tmp_path / "e.npz")["ws"])
    d = DirectionLibrary(G).get("ganspace:0")
    assert torch.allclose(edited[:, :4] - a[:, :4], 2 * d.scale * d.vector.expand(4, -1), atol=1e-4)
    assert torch.equal(edited[:, 4:], a[:, 4:])
    np.testing.assert_array_equal(load_image(tmp_path / "e.png").rgb, render(G, edited))
    assert main(["edit", str(tmp_path / "a.npz"), "--model", weights, "--interpolate", str(tmp_path / "b.npz"),
                 "--frames", "6", "--slerp", "--out", str(tmp_path / "ab.mp4")]) == 0
    assert _count_frames(tmp_path / "ab.mp4") == 6
    assert main(["edit", str(tmp_path / "a.npz"), "--model", weights, "--direction", "sefa:2", "--frames", "5",
                 "--out", str(tmp_path / "sweep.gif")]) == 0
    assert _count_frames(tmp_path / "sweep.gif") == 5
    assert main(["edit", str(tmp_path / "a.npz"), "--model", weights, "--direction", "nope", "--out",
                 str(tmp_path / "x.png")]) == 1
    assert not (tmp_path / "x.png").exists()
