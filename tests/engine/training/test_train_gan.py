import dataclasses

import numpy as np
import pytest
import torch
from PIL import Image

from engine.errors import CheckpointError, GanvasError
from engine.models.checkpoint import load_discriminator, load_generator
from engine.training.train_gan import (
    CHECKPOINT_NAME,
    ImageSource,
    TrainConfig,
    ema_beta,
    export_only,
    load_checkpoint,
    main,
    parse_args,
    r1_penalty,
    start_run,
    train,
)


def smoke_config(out, *extra):
    cfg, _ = parse_args(["--smoke", "--out", str(out), *extra])
    return cfg


def test_smoke_run_writes_checkpoint_sheet_and_loadable_export(tmp_path):
    cfg = smoke_config(tmp_path)
    assert cfg.smoke and cfg.steps == 2 and cfg.export.endswith(".safetensors")
    state = train(cfg)
    assert state.step == 2 and state.nimg == 2 * cfg.batch
    payload = load_checkpoint(tmp_path / CHECKPOINT_NAME)
    assert payload["state"]["step"] == 2 and set(payload["nets"]) == {"G", "D", "G_ema"}
    sheet = np.asarray(Image.open(tmp_path / "sheet-latest.png"))
    assert sheet.shape == (2 * 16, 2 * 16, 3)
    G = load_generator(cfg.export)
    assert G.extra_metadata["name"] == "house-gan" and G.extra_metadata["training"]["steps"] == 2
    image = G.synthesis(G.mapping(torch.randn(1, G.z_dim), None))
    assert image.shape == (1, 3, 16, 16) and torch.isfinite(image).all()
    D = load_discriminator(cfg.export)
    assert D(image, None).shape == (1, 1)
    assert not list(tmp_path.glob("*.tmp"))
    again = export_only(dataclasses.replace(cfg, export=str(tmp_path / "again.safetensors")))
    G2 = load_generator(again)
    assert all(torch.equal(v, G.state_dict()[k]) for k, v in G2.state_dict().items())


def test_resume_continues_exactly_where_it_stopped(tmp_path):
    train(smoke_config(tmp_path / "split", "--no-export"))
    resumed = train(smoke_config(tmp_path / "split", "--steps", "3", "--no-export"))
    straight = train(smoke_config(tmp_path / "straight", "--steps", "3", "--no-export"))
    assert resumed.step == straight.step == 3
    a = load_checkpoint(tmp_path / "split" / CHECKPOINT_NAME)["nets"]
    b = load_checkpoint(tmp_path / "straight" / CHECKPOINT_NAME)["nets"]
    for net in ("G", "D", "G_ema"):
        for key, value in a[net].items():
            assert torch.equal(value, b[net][key]), f"{net}.{key} differs after resuming"


def test_resume_takes_retunable_settings_only_when_given(tmp_path):
    run = ["--smoke", "--out", str(tmp_path), "--no-export", "--threads", "1"]
    assert main(run) == 0
    assert main([*run, "--steps", "3", "--augment", "color", "--channel-max", "64"]) == 0
    config = load_checkpoint(tmp_path / CHECKPOINT_NAME)["config"]
    assert config["augment"] == "color" and config["channel_max"] == smoke_config(tmp_path).channel_max
    assert main([*run, "--steps", "4"]) == 0  # not given again: the checkpoint's value stays
    assert load_checkpoint(tmp_path / CHECKPOINT_NAME)["config"]["augment"] == "color"


def test_fresh_ignores_an_existing_checkpoint(tmp_path):
    train(smoke_config(tmp_path, "--no-export"))
    state = train(smoke_config(tmp_path, "--steps", "1", "--no-export"), resume=False)
    assert state.step == 1


def test_a_fresh_run_can_start_from_an_export(tmp_path):
    first = smoke_config(tmp_path / "first")
    train(first)
    G, D = load_generator(first.export), load_discriminator(first.export)
    run = start_run(smoke_config(tmp_path / "second", "--init", first.export, "--steps", "3"), resume=True)
    assert run.state.step == 2 and run.state.nimg == 2 * first.batch
    for name, source in (("G", G), ("G_ema", G), ("D", D)):
        own = run.nets[name].state_dict()
        assert all(torch.equal(v, own[k]) for k, v in source.state_dict().items()), name
    assert train(run.cfg).step == 3  # the step budget counts on from the export's


@pytest.mark.parametrize("content", ["house-gan", "garbage", "missing"])
def test_a_bad_init_is_reported(tmp_path, content):
    from engine.models.catalog import resolve

    path = {"house-gan": resolve("house-gan"), "garbage": tmp_path / "bad.safetensors",
            "missing": tmp_path / "none.safetensors"}[content]
    (tmp_path / "bad.safetensors").write_bytes(b"not a model")
    with pytest.raises(GanvasError, match="--init"):
        start_run(smoke_config(tmp_path / "run", "--init", str(path)), resume=True)


def test_a_budget_is_required(tmp_path):
    cfg = dataclasses.replace(smoke_config(tmp_path), steps=None)
    with pytest.raises(GanvasError, match="budget"):
        train(cfg)


def test_damaged_checkpoint_is_reported(tmp_path):
    path = tmp_path / CHECKPOINT_NAME
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="Got:"):
        load_checkpoint(path)


def test_r1_penalty_of_a_linear_critic_is_its_squared_weight_norm():
    weight = torch.randn(1, 3, 4, 4)

    def critic(x, c):
        return (x * weight).sum(dim=(1, 2, 3)).unsqueeze(1)

    logits, penalty = r1_penalty(critic, torch.randn(2, 3, 4, 4))
    assert logits.shape == (2, 1)
    assert torch.allclose(penalty, weight.square().sum().expand(2))


def test_ema_half_life_is_counted_in_images():
    cfg = TrainConfig(batch=32, ema_kimg=10.0, ema_rampup=None)
    beta = ema_beta(cfg, nimg=10**6)
    assert beta ** (10_000 / 32) == pytest.approx(0.5)
    ramped = dataclasses.replace(cfg, ema_rampup=0.05)
    assert ema_beta(ramped, nimg=3200) < beta  # shorter memory early in training


def test_image_source_scales_to_generator_range_and_mirrors():
    images = np.zeros((4, 8, 8, 3), dtype=np.uint8)
    images[:, :, :4] = 255  # left half white
    source = ImageSource(images, mirror=True)
    batch = source.sample(64, torch.Generator().manual_seed(0))
    assert batch.shape == (64, 3, 8, 8) and batch.min() == -1 and batch.max() == 1
    left_white = (batch[:, 0, 0, 0] == 1).float().mean()
    assert 0.2 < left_white < 0.8  # about half the samples are flipped
    with pytest.raises(GanvasError, match="Got:"):
        ImageSource(np.zeros((2, 8, 6, 3), dtype=np.uint8), mirror=False)
