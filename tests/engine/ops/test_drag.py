import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from engine.document import Document, open_document
from engine.errors import Cancelled, GanvasError
from engine.jobs import CancelToken
from engine.models.catalog import resolve
from engine.models.checkpoint import load_generator
from engine.ops.drag import (DragConfig, DragPreview, drag, motion_loss, parse_points, resolved_config,
                             sample_features, track_points)
from engine.ops.edit import DirectionEdit, DragEdit, apply_edits
from engine.ops.generate import render, sample
from tests.engine.models import STYLEGAN_FIXTURES

ROOT = Path(__file__).resolve().parents[3]
pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def tiny():
    return load_generator(STYLEGAN_FIXTURES / "checkpoints" / "network-snapshot-sg2ada-uncond-p4.pkl")  # 32 px


@pytest.fixture(scope="module")
def tiny_ws(tiny):
    return tiny.mapping(torch.randn(1, tiny.z_dim, generator=torch.Generator().manual_seed(1)), None)


@pytest.fixture(scope="module")
def house():
    return load_generator(resolve("house-gan"))


# ----------------------------------------------------------------------------- pieces


def test_defaults_follow_the_resolution(tiny, house):
    small, cfg = resolved_config(tiny), resolved_config(house)
    assert (small.feature_block, small.layers) == (16, 6)
    assert (cfg.feature_block, cfg.layers, cfg.r1, cfg.r2, cfg.lr) == (32, 6, 2.0, 3.0, pytest.approx(1e-2))
    own = resolved_config(house, DragConfig(feature_block=16, r2=5.0, lr=0.02))
    assert (own.feature_block, own.r2, own.lr) == (16, 5.0, 0.02)
    with pytest.raises(GanvasError, match="feature_block must be one of"):
        resolved_config(house, DragConfig(feature_block=24))
    with pytest.raises(GanvasError, match="layers must be in 1 .. 10"):
        resolved_config(house, DragConfig(layers=11))


def test_sampling_features_equals_resizing_the_map_to_the_image():
    feat = torch.randn(1, 5, 8, 8, generator=torch.Generator().manual_seed(0))
    resized = torch.nn.functional.interpolate(feat, size=(32, 32), mode="bilinear", align_corners=False)
    points = torch.tensor([[0.0, 0.0], [13.0, 7.0], [31.0, 20.0]])
    expected = torch.stack([resized[0, :, int(y), int(x)] for x, y in points.tolist()])
    assert torch.allclose(sample_features(feat, points, 32), expected, atol=1e-5)


def test_tracking_finds_a_shifted_feature_exactly():
    feat = torch.randn(1, 16, 32, 32, generator=torch.Generator().manual_seed(0))
    points = torch.tensor([[10.0, 12.0], [25.0, 5.0]])
    refs = sample_features(feat, points, 32)
    moved = torch.roll(feat, shifts=(-2, 3), dims=(2, 3))  # content moves 3 px right, 2 px up
    found = track_points(moved, points, refs, radius=4.0, resolution=32)
    assert found.tolist() == [[13.0, 10.0], [28.0, 3.0]]
    # Beyond the search radius the feature is out of reach: the point stays within the radius.
    far = torch.roll(feat, shifts=(0, 7), dims=(2, 3))
    stuck = track_points(far, points[:1], refs[:1], radius=3.0, resolution=32)
    assert float((stuck - points[:1]).norm()) <= 3.0 and stuck.tolist() != [[17.0, 12.0]]


def test_each_step_lowers_the_motion_loss_against_its_own_target(tiny, tiny_ws):
    """Motion supervision (DragGAN Eq. 1): an Adam step brings F(q + d) closer to the (detached) F(q)."""
    p, t = torch.tensor([[10.0, 12.0]]), torch.tensor([[16.0, 12.0]])
    delta = torch.zeros(1, 6, tiny.w_dim, requires_grad=True)
    opt = torch.optim.Adam([delta], lr=2e-3)

    def features() -> torch.Tensor:
        ws = tiny_ws + torch.cat([delta, torch.zeros(1, tiny.num_ws - 6, tiny.w_dim)], dim=1)
        return tiny.synthesis(ws, return_features=True)[1]["b16"]

    disc = torch.tensor([[x, y] for x in range(8, 13) for y in range(10, 15) if (x - 10) ** 2 + (y - 12) ** 2 <= 4],
                        dtype=torch.float32)
    for _ in range(3):
        feat = features()
        here = sample_features(feat, disc, 32).detach()
        loss = motion_loss(feat, p, t, 2.0, 32)
        gap_before = (sample_features(feat, disc + torch.tensor([1.0, 0.0]), 32) - here).abs().mean().detach()
        assert float(loss.detach()) == pytest.approx(float(gap_before), rel=1e-5)  # the loss is that gap
        opt.zero_grad()
        loss.backward()
        opt.step()
        with torch.no_grad():
            gap_after = (sample_features(features(), disc + torch.tensor([1.0, 0.0]), 32) - here).abs().mean()
        assert float(gap_after) < float(gap_before)
    assert float(motion_loss(features(), t, t, 2.0, 32)) == 0.0  # an arrived handle pulls nothing


def test_parse_points():
    assert parse_points("30,40:36,40; 1.5,2:3,4") == ([(30.0, 40.0), (1.5, 2.0)], [(36.0, 40.0), (3.0, 4.0)])
    for bad in ("30,40", "30,40:36", "", "a,b:c,d"):
        with pytest.raises(GanvasError, match="Got:"):
            parse_points(bad)


# ----------------------------------------------------------------------------- the search


def test_bad_input_is_refused(tiny, tiny_ws):
    with pytest.raises(GanvasError, match="handles must lie in the 32 x 32 image"):
        drag(tiny, tiny_ws, [(40, 3)], [(3, 3)])
    with pytest.raises(GanvasError, match="one target per handle"):
        drag(tiny, tiny_ws, [(4, 3), (5, 5)], [(3, 3)])
    with pytest.raises(GanvasError, match=r"ws must be \(1, 8, 64\)"):
        drag(tiny, tiny_ws[:, :4], [(4, 3)], [(3, 3)])
    sg3 = load_generator(STYLEGAN_FIXTURES / "checkpoints" / "network-snapshot-sg3-t-p4.pkl")
    with pytest.raises(GanvasError, match="needs a StyleGAN2 synthesis network"):
        drag(sg3, torch.zeros(1, sg3.num_ws, sg3.w_dim), [(4, 3)], [(3, 3)])


def test_a_handle_on_its_target_stops_at_once(tiny, tiny_ws):
    result = drag(tiny, tiny_ws, [(10, 12), (20, 5)], [(10, 12), (21, 6)])
    assert result.stopped == "arrived" and result.steps == 0 and result.distances == [[0.0, 1.414]]
    assert torch.equal(result.delta, torch.zeros(tiny.num_ws, tiny.w_dim))
    assert np.array_equal(result.image, render(tiny, tiny_ws))


def test_house_gan_drag_arrives_and_streams_previews(house):
    ws = sample(house, 3, 0.7).ws
    previews: list[DragPreview] = []
    result = drag(house, ws, [(35, 24)], [(43, 24)], config=DragConfig(max_steps=150),
                  progress=lambda step, total, message, preview=None: previews.append(preview))
    assert result.stopped == "arrived" and 0 < result.steps < 150
    assert result.distances[0] == [8.0] and result.distances[-1][0] <= 2.0
    assert len(result.distances) == result.steps + 1
    assert len(previews) == result.steps and all(isinstance(p, DragPreview) for p in previews)
    assert previews[-1].points == result.points and previews[-1].targets == [(43.0, 24.0)]
    assert np.array_equal(previews[-1].image, result.image)
    moved = [p.points[0][0] for p in previews]
    assert moved[-1] > 40 and max(moved) <= 45  # the tracked handle went right, towards x = 43
    # Only the first 6 slots changed; the latent is the start plus the delta, and the image renders it.
    assert result.delta[6:].abs().max() == 0 and result.delta[:6].abs().max() > 0
    assert torch.equal(result.latent, ws + result.delta)
    assert np.array_equal(result.image, render(house, result.latent))


def test_w_mode_moves_the_first_slots_together(tiny, tiny_ws):
    result = drag(tiny, tiny_ws, [(10, 12)], [(16, 12)], config=DragConfig(mode="w", layers=4, max_steps=3))
    assert result.steps == 3 and result.stopped == "max_steps"
    d = result.delta
    assert all(torch.equal(d[i], d[0]) for i in range(4)) and d[4:].abs().max() == 0 and d[0].abs().max() > 0


def test_the_mask_holds_the_rest_of_the_image(house):
    ws = sample(house, 5, 0.7).ws
    yy, xx = np.mgrid[0:64, 0:64]
    editable = np.hypot(xx - 32, yy - 40) <= 10
    config = DragConfig(max_steps=12, stop_distance=0)
    free = drag(house, ws, [(30, 40)], [(38, 40)], config=config)
    held = drag(house, ws, [(30, 40)], [(38, 40)], mask=editable.astype(np.uint8) * 255, config=config)
    before = render(house, ws).astype(float)
    outside = ~(np.hypot(xx - 32, yy - 40) <= 16)
    change = lambda img: np.abs(img.astype(float) - before).mean(axis=2)[outside].mean()  # noqa: E731
    assert change(held.image) < 0.5 * change(free.image)


def test_cancel_raises_and_stop_keeps_the_result(tiny, tiny_ws):
    cancel, stop = CancelToken(), CancelToken()

    def cancel_at_2(step, total, message, preview=None):
        if step == 2:
            cancel.cancel()

    with pytest.raises(Cancelled):
        drag(tiny, tiny_ws, [(10, 12)], [(16, 12)], config=DragConfig(stop_distance=0), progress=cancel_at_2,
             cancel=cancel)

    def stop_at_3(step, total, message, preview=None):
        if step == 3:
            stop.cancel()

    result = drag(tiny, tiny_ws, [(10, 12)], [(16, 12)], config=DragConfig(stop_distance=0), progress=stop_at_3,
                  stop=stop)
    assert result.stopped == "user" and result.steps == 4 and len(result.distances) == 5


# ----------------------------------------------------------------------------- the edit stack and the CLI


def test_the_drag_edit_renders_bit_for_bit_after_save_and_reopen(house, tmp_path):
    base = sample(house, 7, 0.7).ws
    direction = DirectionEdit(torch.randn(house.w_dim, generator=torch.Generator().manual_seed(0)) * 0.1, 1.0)
    doc = Document(base_ws=base, edits=[direction])
    result = drag(house, doc.current_ws(), [(32, 44)], [(32, 36)], config=DragConfig(max_steps=20))
    doc.edits.append(result.edit("drag 1"))
    assert torch.equal(doc.current_ws(), result.latent)
    assert np.array_equal(doc.render(house), result.image)
    path = doc.save(tmp_path / "dragged.ganvas")
    again = open_document(path)
    edit = again.edits[-1]
    assert isinstance(edit, DragEdit) and edit.handles == ((32.0, 44.0),) and edit.targets == ((32.0, 36.0),)
    assert np.array_equal(again.render(house), result.image)
    edit.enabled = False
    assert torch.equal(apply_edits(base, again.edits), apply_edits(base, [direction]))  # off: as before the drag
    with pytest.raises(GanvasError, match="a drag delta must be"):
        apply_edits(base, [DragEdit(torch.zeros(3, house.w_dim))])


def test_drag_command(tmp_path, house):
    def run(*args):
        return subprocess.run([sys.executable, "main.py", *args], cwd=ROOT, capture_output=True, text=True,
                              timeout=120, env={**os.environ, "OMP_NUM_THREADS": "1"})

    latent, out, saved = tmp_path / "w.npz", tmp_path / "d.png", tmp_path / "d.npz"
    np.savez(latent, ws=sample(house, 3, 0.7).ws.numpy())  # as generate --save-latent writes it
    mask = np.zeros((64, 64, 3), np.uint8)
    mask[14:34, 28:50] = 255
    from engine.images import load_image, save_image

    save_image(tmp_path / "mask.png", mask)
    result = run("drag", str(latent), "--model", "house-gan", "--points", "35,24:43,24", "--mask",
                 str(tmp_path / "mask.png"), "--steps", "40", "--out", str(out), "--save-latent", str(saved), "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["handles"] == [[35.0, 24.0]] and report["targets"] == [[43.0, 24.0]]
    assert report["stopped"] in ("arrived", "max_steps") and report["steps"] <= 40
    assert load_image(out).rgb.shape == (64, 64, 3) and np.load(saved)["ws"].shape == (1, 10, 128)
    assert np.array_equal(render(house, torch.from_numpy(np.load(saved)["ws"])), load_image(out).rgb)
    bad = run("drag", str(latent), "--model", "house-gan", "--points", "35,24:99,24", "--out", str(tmp_path / "x.png"))
    assert bad.returncode == 1 and "targets must lie in the 64 x 64 image" in bad.stderr
    assert not (tmp_path / "x.png").exists()
