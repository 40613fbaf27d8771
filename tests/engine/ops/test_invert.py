import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from engine.convert import tensor_to_image
from engine.errors import Cancelled, GanvasError
from engine.jobs import CancelToken
from engine.models.checkpoint import load_generator
from engine.ops import degrade
from engine.ops.generate import sample
from engine.ops.invert import InvertConfig, invert, render_result, tuned_generator, w_prior, with_defaults
from tests.engine.models import STYLEGAN_FIXTURES

CHECKPOINT = STYLEGAN_FIXTURES / "checkpoints" / "network-snapshot-sg2ada-uncond-p4.pkl"
ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def G():
    torch.set_num_threads(1)  # the searches are tiny; more threads only add contention
    return load_generator(CHECKPOINT)


@pytest.fixture(scope="module")
def target(G):
    # psi 0.5: the random-weight fixture is chaotic far from w_avg; its samples near it invert cleanly
    return sample(G, 1, truncation_psi=0.5).image


def test_w_plus_inversion_of_a_sample_reaches_a_high_psnr(G, target):
    previews = []
    result = invert(G, target, config=InvertConfig(steps=250, preview_every=50), lpips=None,
                    progress=lambda step, total, msg, preview=None: previews.append((step, total, preview)))
    assert result.psnr > 28 and result.ssim > 0.9
    assert result.mode == "w+" and result.task == "invert" and result.distance == "mse+pyramid+ms-ssim"
    assert result.latent.shape == (1, G.num_ws, G.w_dim) and result.ws.shape == (1, G.num_ws, G.w_dim)
    assert result.image.shape == (32, 32, 3) and result.image.dtype == np.uint8
    assert result.steps == 250 and len(result.history) == 250 and result.lpips is None
    assert result.history[-1].psnr > result.history[0].psnr + 10
    assert [p[0] for p in previews] == list(range(1, 251)) and previews[-1][1] == 250
    shown = [p[2] for p in previews if p[2] is not None]
    assert len(shown) == 5 and all(p.shape == (32, 32, 3) and p.dtype == np.uint8 for p in shown)
    np.testing.assert_array_equal(render_result(G, result), result.image)


def test_w_inversion_stores_one_broadcast_w(G, target):
    result = invert(G, target, config=InvertConfig(mode="w", steps=30), lpips=None)
    assert result.latent.shape == (1, 1, G.w_dim) and result.ws.shape == (1, G.num_ws, G.w_dim)
    assert torch.equal(result.ws[:, 0], result.ws[:, -1])


def test_cancel_stops_within_a_step(G, target):
    token, seen = CancelToken(), []

    def progress(step, total, message, preview=None):
        seen.append(step)
        if step == 7:
            token.cancel()

    with pytest.raises(Cancelled):
        invert(G, target, config=InvertConfig(steps=100), lpips=None, progress=progress, cancel=token)
    assert seen[-1] == 7


def test_pti_improves_on_its_pivot_and_leaves_g_alone(G, target):
    before = {k: v.clone() for k, v in G.state_dict().items()}
    cfg = InvertConfig(mode="pti", steps=40, pti_steps=60, preview_every=1000)
    result = invert(G, target, config=cfg, lpips=None)
    assert result.psnr > result.pivot_psnr + 3
    assert result.steps == 100 and result.weights_delta
    assert all(k.startswith("synthesis.") for k in result.weights_delta)
    assert all(torch.equal(v, G.state_dict()[k]) for k, v in before.items())  # tuned a copy
    G_t = tuned_generator(G, result)
    with torch.no_grad():
        tuned = G_t.synthesis(result.ws, noise_mode="const")
    assert np.abs(render_result(G, result).astype(int) - result.image).max() <= 1
    assert not torch.equal(tuned, G.synthesis(result.ws, noise_mode="const"))


def test_inpainting_ignores_the_hidden_pixels(G, target):
    mask = torch.ones(32, 32)
    mask[8:20, 6:24] = 0
    op = degrade.masked(mask)
    other = target.copy()
    other[8:20, 6:24] = 255 - other[8:20, 6:24]
    cfg = InvertConfig(steps=25)
    a = invert(G, target, op, cfg, lpips=None)
    b = invert(G, other, op, cfg, lpips=None)
    assert torch.equal(a.latent, b.latent)
    assert a.task == "inpaint" and a.psnr_unseen is None
    c = invert(G, target, op, cfg, truth=target, lpips=None)
    assert c.psnr_unseen is not None and c.psnr_unseen < c.psnr  # the hole is the hard part
    # consistent: the known pixels are the input's
    known = mask.numpy().astype(bool)
    assert np.abs(c.image[known].astype(int) - target[known]).max() <= 1
    assert np.array_equal(c.image[~known], c.render[~known]) and not np.array_equal(c.image, c.render)
    np.testing.assert_array_equal(render_result(G, c), c.render)


def test_colourisation_and_super_resolution_take_observations(G, target):
    cfg = InvertConfig(steps=20)
    grey = target.mean(axis=2).astype(np.uint8)  # (H, W): a one-channel observation
    r = invert(G, grey, degrade.greyscale(32), cfg, truth=target, lpips=None)
    assert r.task == "colorize" and r.image.shape == (32, 32, 3)
    small = target.reshape(8, 4, 8, 4, 3).mean(axis=(1, 3)).astype(np.uint8)  # 8 px: x4 area down-sampling
    r = invert(G, small, degrade.downsampling(32, 4), cfg, truth=target, lpips=None)
    assert r.task == "superres" and r.image.shape == (32, 32, 3) and 5 < r.psnr < 60


def test_several_samples_answer_with_the_mean_of_their_consistent_images(G, target):
    small = target.reshape(8, 4, 8, 4, 3).mean(axis=(1, 3)).astype(np.float32) / 255  # x4 area down-sampling
    op = degrade.downsampling(32, 4)
    one = invert(G, small, op, InvertConfig(steps=30, samples=1), truth=target, lpips=None)
    previews = []
    many = invert(G, small, op, InvertConfig(steps=30, samples=3, preview_every=30), truth=target, lpips=None,
                  progress=lambda step, total, msg, preview=None: previews.append(preview))
    default = invert(G, small, op, InvertConfig(steps=5), truth=target, lpips=None)
    assert many.steps == one.steps == 30 and default.steps == 5  # the candidates search as one batch
    assert many.latent.shape == (1, G.num_ws, G.w_dim)  # the best candidate's
    np.testing.assert_array_equal(render_result(G, many), many.render)
    assert one.candidates is None and many.candidates.shape == (3, G.num_ws, G.w_dim)
    assert any(torch.equal(c, many.latent[0]) for c in many.candidates)
    # the answer is the mean of the candidates' renders made consistent with the observation
    y = torch.from_numpy(small).permute(2, 0, 1)[None] * 2 - 1
    with torch.no_grad():
        renders = G.synthesis(many.candidates, noise_mode="const")
    mean = degrade.project(op, renders, y).clamp(-1, 1).mean(0, keepdim=True)
    assert np.abs(tensor_to_image(mean).astype(int) - many.image).max() <= 1
    assert np.abs(previews[-1].astype(int) - many.image).mean() < 2  # the last preview is (nearly) the answer
    assert not np.array_equal(many.image, tensor_to_image(degrade.project(op, renders[:1], y).clamp(-1, 1)))
    with pytest.raises(GanvasError, match="samples must be"):
        invert(G, target, config=InvertConfig(samples=0), lpips=None)


def test_defaults_follow_the_task():
    plans = [with_defaults(InvertConfig(), task, 64) for task in ("invert", "inpaint", "colorize", "superres")]
    assert [(c.samples, c.steps) for c in plans] == [(1, 500), (1, 500), (1, 500), (8, 200)]
    big = with_defaults(InvertConfig(), "superres", 1024)  # 8 x a 1024 px search would not fit a laptop
    assert (big.samples, big.steps) == (1, 500)
    assert with_defaults(InvertConfig(steps=30, samples=2), "superres", 64).steps == 30
    assert with_defaults(InvertConfig(samples=3), "invert", 1024).steps == 200  # averaging shortens the search


def test_bad_arguments(G, target):
    with pytest.raises(GanvasError, match="mode must be one of"):
        invert(G, target, config=InvertConfig(mode="z"), lpips=None)
    with pytest.raises(GanvasError, match="steps must be"):
        invert(G, target, config=InvertConfig(steps=0), lpips=None)
    with pytest.raises(GanvasError, match="made for 64 px"):
        invert(G, target, degrade.greyscale(64), lpips=None)
    with pytest.raises(GanvasError, match="observation of shape"):
        invert(G, target[:16, :16], degrade.downsampling(32, 4), lpips=None)
    with pytest.raises(GanvasError, match="truth must be"):
        invert(G, target, truth=target[:16], lpips=None)
    with pytest.raises(GanvasError, match="StyleGAN generator"):
        invert(torch.nn.Linear(2, 2), target)


def test_w_prior_is_a_whitening_of_mapped_samples(G):
    prior = w_prior(G, n=2000)
    with torch.no_grad():
        w = G.mapping(torch.randn(500, G.z_dim, generator=torch.Generator().manual_seed(9)), None)[:, :1]
    assert 0.7 < float(prior.nll(w)) < 1.3  # about 1 per dimension for samples
    assert float(prior.nll(w * 3)) > 3
    assert prior.w_std > 0 and prior.w_avg.shape == (G.w_dim,)


def test_command_line(tmp_path, target):
    from engine.images import save_image

    photo = np.concatenate([target, target[:, :8]], axis=1)  # 32 x 40: not square
    save_image(tmp_path / "photo.png", photo)
    out, latent = tmp_path / "out.png", tmp_path / "w.npz"
    cmd = [sys.executable, "main.py", "invert", str(tmp_path / "photo.png"), "--model", str(CHECKPOINT),
           "--steps", "30", "--out", str(out), "--save-latent", str(latent), "--json"]
    run = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120,
                         env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"})
    assert run.returncode == 0, run.stderr
    figures = json.loads(run.stdout.strip().splitlines()[-1])
    assert {"psnr", "ssim", "lpips", "seconds", "steps", "distance"} <= set(figures)
    assert figures["steps"] == 30 and figures["distance"] == "mse+pyramid+ms-ssim" and figures["psnr"] > 10
    assert "center-cropped 40 x 32" in run.stderr
    assert out.is_file() and np.load(latent)["ws"].shape == (1, 8, 64)
    sr = subprocess.run(cmd[:4] + ["--model", str(CHECKPOINT), "--task", "superres", "--samples", "2", "--steps",
                                   "10", "--out", str(out), "--json"], cwd=ROOT, capture_output=True, text=True,
                        timeout=120, env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"})
    assert sr.returncode == 0, sr.stderr
    figures = json.loads(sr.stdout.strip().splitlines()[-1])
    assert figures["samples"] == 2 and figures["task"] == "superres" and figures["steps"] == 10
    missing = subprocess.run(cmd[:4] + ["--model", str(CHECKPOINT), "--task", "inpaint", "--out", str(out)],
                             cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert missing.returncode == 1 and "--mask" in missing.stderr
