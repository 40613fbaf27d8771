import io
import json

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors import safe_open

from engine.models.superres import load_sr_model
from engine.ops.sr_metrics import imresize
from engine.training.sr_data import (
    Photo,
    licence_for,
    largest_jpeg,
    load_sr_images,
    looks_like_photo,
    parse_copyright,
    shrink_photo,
    write_manifest,
)
from engine.training.train_sr import (
    CHECKPOINT_NAME,
    PatchSource,
    learning_rate,
    load_checkpoint,
    monitor_psnr,
    parse_args,
    smoke_photos,
    train,
)


def smoke_config(out, *extra):
    cfg, _ = parse_args(["--smoke", "--out", str(out), *extra])
    return cfg


def test_smoke_run_resumes_and_exports_a_model_spandrel_loads(tmp_path, one_torch_thread):
    cfg = smoke_config(tmp_path, "--steps", "2")
    assert cfg.smoke and cfg.num_feat == 8 and cfg.export.endswith(".safetensors")
    assert train(cfg).step == 2
    assert load_checkpoint(tmp_path / CHECKPOINT_NAME)["state"]["step"] == 2
    before = torch.load(tmp_path / CHECKPOINT_NAME, weights_only=True)["nets"]["net"]["body.0.weight"]

    state = train(smoke_config(tmp_path, "--steps", "4"))  # resumes from step 2, not from scratch
    assert state.step == 4
    after = load_checkpoint(tmp_path / CHECKPOINT_NAME)["nets"]["net"]["body.0.weight"]
    assert not torch.equal(before, after)

    model = load_sr_model(cfg.export)
    assert model.architecture == "Compact" and model.scale == 4 and "8nf" in model.tags
    lr = torch.rand(1, 3, 10, 12)
    assert model.descriptor(lr).shape == (1, 3, 40, 48)
    with safe_open(cfg.export, framework="pt") as handle:
        extra = json.loads(handle.metadata()["extra"])
    assert extra["training"]["steps"] == 4 and extra["training"]["num_conv"] == 2


def test_fresh_run_ignores_the_checkpoint(tmp_path, one_torch_thread):
    train(smoke_config(tmp_path, "--steps", "2", "--no-export"))
    cfg = smoke_config(tmp_path, "--steps", "1", "--no-export")
    assert train(cfg, resume=False).step == 1


def test_patches_are_aligned_with_the_protocol_bicubic():
    source = PatchSource(smoke_photos(count=2, size=64), scale=4, patch=8)
    generator = torch.Generator().manual_seed(0)
    for _ in range(4):
        lr, hr = source.sample(3, generator)
        assert lr.shape == (3, 3, 8, 8) and hr.shape == (3, 3, 32, 32)
        for lr_i, hr_i in zip(lr, hr):
            down = imresize(hr_i.permute(1, 2, 0).numpy().astype(np.float64), 8, 8)
            # Inside the patch (away from the bicubic footprint at its edge) LR is HR downscaled.
            inner = np.abs(down[2:-2, 2:-2] - lr_i.permute(1, 2, 0).numpy()[2:-2, 2:-2])
            assert inner.max() < 2.5 / 255
            shifted = np.abs(down[2:-2, 2:-2] - lr_i.permute(1, 2, 0).numpy()[1:-3, 2:-2])
            assert shifted.mean() > inner.mean()


def test_learning_rate_warms_up_then_decays_to_the_final_rate():
    cfg = smoke_config("/tmp/unused", "--warmup-steps", "10", "--lr", "0.001", "--lr-final", "0.00001")
    assert learning_rate(cfg, 0, 0.0) == pytest.approx(1e-4)
    assert learning_rate(cfg, 100, 0.0) == pytest.approx(1e-3)
    assert learning_rate(cfg, 100, 0.5) == pytest.approx((1e-3 + 1e-5) / 2)
    assert learning_rate(cfg, 100, 1.0) == pytest.approx(1e-5)


def test_monitor_scores_png_folders_only(tmp_path, one_torch_thread):
    from engine.training.train_sr import build_network

    cfg = smoke_config(tmp_path)
    net = build_network(cfg)
    assert monitor_psnr(cfg, net, str(tmp_path)) is None  # no images: nothing to score
    for i, rgb in enumerate(smoke_photos(count=2, size=32)):
        Image.fromarray(rgb).save(tmp_path / f"im{i}.png")
    with torch.no_grad():  # a zero residual: the network is nearest-neighbour upscaling
        net.body[-1].weight.zero_()
        net.body[-1].bias.zero_()
    psnr = monitor_psnr(cfg, net, str(tmp_path))
    assert psnr is not None and 15 < psnr < 60


# ----------------------------------------------------------------------------
# sr_data


def flat_art(height=300, width=400):
    rgb = np.full((height, width, 3), (200, 220, 240), np.uint8)
    rgb[50:150, 60:300] = (250, 120, 40)
    rgb[180:260, 100:380] = (30, 90, 160)
    return rgb


def textured_photo(height=300, width=400, seed=0):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    base = np.stack([xx * 0.5, yy * 0.6, (xx + yy) * 0.3], axis=2) + 40
    return np.clip(base + rng.normal(0, 8, base.shape), 0, 255).astype(np.uint8)


def test_photo_rule_rejects_flat_art_and_keeps_textured_photos():
    assert not looks_like_photo(flat_art())
    assert looks_like_photo(textured_photo())
    noisy_art = np.clip(flat_art().astype(int) + np.random.default_rng(0).normal(0, 8, (300, 400, 3)), 0, 255)
    assert looks_like_photo(noisy_art.astype(np.uint8))  # the rule is about flat areas, not about shapes


def test_shrink_photo_caps_the_long_side_and_never_enlarges():
    wide = Image.fromarray(textured_photo(600, 1500))
    out = shrink_photo(wide, max_side=1024)
    assert out.shape == (410, 1024, 3) and out.dtype == np.uint8
    tall = shrink_photo(Image.fromarray(textured_photo(1200, 500)), max_side=600)
    assert tall.shape == (600, 250, 3)
    small = Image.fromarray(textured_photo(100, 120))
    assert shrink_photo(small, max_side=1024).shape == (100, 120, 3)
    # Antialiased: a one-pixel checkerboard averages to grey instead of aliasing.
    checker = (np.indices((512, 512)).sum(axis=0) % 2 * 255).astype(np.uint8)
    grey = shrink_photo(Image.fromarray(np.stack([checker] * 3, axis=2)), max_side=128)
    assert abs(float(grey.mean()) - 127.5) < 3 and float(grey.std()) < 10


COPYRIGHT = """Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: wallpapers

Files: *
Copyright: 2014 Someone
License: GPL-2+

Files: 16.04/seeding_by_X.jpg
Copyright: X, 2018
License: CC0-1.0

Files: nature/Aqua.jpg
       nature/Dune.jpg
Copyright: 2008, Y
License: CC-BY-4.0

Files: debian/*
Copyright: 2020 Packager
License: GPL-3+
"""


def test_licences_come_from_the_last_matching_stanza():
    stanzas = parse_copyright(COPYRIGHT)
    assert [s[1] for s in stanzas] == ["GPL-2+", "CC0-1.0", "CC-BY-4.0", "GPL-3+"]
    assert licence_for("seeding_by_X.jpg", stanzas) == ("CC0-1.0", "X, 2018")
    assert licence_for("Dune.jpg", stanzas)[0] == "CC-BY-4.0"
    assert licence_for("other.png", stanzas)[0] == "GPL-2+"  # debian/* matches nothing installed
    assert licence_for("x.png", parse_copyright("Files: debian/*\nLicense: MIT\n"))[0] == "unknown"


def jpeg_bytes(width, height, colour):
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(buffer, "JPEG")
    return buffer.getvalue()


def test_largest_jpeg_inside_an_archive():
    blob = b"EET\x00junk\xff\xd8\xff" + jpeg_bytes(40, 30, "red") + b"pad" + jpeg_bytes(80, 60, "blue") + b"end"
    im = largest_jpeg(blob)
    assert im.size == (80, 60) and im.getpixel((5, 5))[2] > 200
    assert largest_jpeg(b"no images here") is None


def test_manifest_round_trip(tmp_path):
    (tmp_path / "images").mkdir()
    rgb = textured_photo(64, 96)
    Image.fromarray(rgb).save(tmp_path / "images" / "pkg--a.png")
    photo = Photo("pkg--a.png", "pkg", "1.0", "usr/share/backgrounds/a.jpg", "CC0-1.0", "A", (96, 64), (960, 640))
    write_manifest(tmp_path, [photo], 1024)
    images, manifest = load_sr_images(tmp_path)
    assert manifest["count"] == 1 and manifest["licences"] == {"CC0-1.0": 1} and manifest["pixels"] == 96 * 64
    assert np.array_equal(images[0], rgb)
