import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from engine.errors import GanvasError
from engine.models.catalog import available, read_card
from engine.models.unet import load_unet, translate_edges
from engine.ops.edges import canny_edges
from engine.training.train_edges import (
    CHECKPOINT_NAME,
    EdgesConfig,
    PatchDiscriminator,
    edge_maps,
    export_only,
    load_checkpoint,
    lr_factor,
    parse_args,
    start_run,
    train,
)
from tests.engine.models import REPO_ROOT


@pytest.fixture(autouse=True)
def _one_thread(one_torch_thread):
    yield


def smoke_config(out, *extra):
    cfg, _ = parse_args(["--smoke", "--out", str(out), *extra])
    return cfg


def test_defaults_are_the_documented_recipe():
    cfg, args = parse_args([])
    assert (cfg.num_downs, cfg.ngf, cfg.d_layers, cfg.batch, cfg.holdout) == (6, 32, 2, 16, 1000)
    assert (cfg.lr, cfg.beta1, cfg.l1_weight, cfg.low, cfg.high) == (2e-4, 0.5, 100.0, 100.0, 200.0)
    assert cfg.export == "resources/models/house-edges.safetensors" and args.threads == 1
    assert [lr_factor(cfg, t) for t in (0.0, 0.5, 0.75, 1.0)] == [1.0, 1.0, 0.5, 0.0]


def test_smoke_run_writes_checkpoint_sheet_and_a_loadable_model(tmp_path):
    cfg = smoke_config(tmp_path)
    state = train(cfg)
    assert state.step == 2
    payload = load_checkpoint(tmp_path / CHECKPOINT_NAME)
    assert payload["state"]["step"] == 2 and set(payload["nets"]) == {"G", "D"}
    sheet = np.asarray(Image.open(tmp_path / "sheet-latest.png"))
    assert sheet.shape == (3 * 32, 2 * 32, 3)  # rows: edges, output, real
    net = load_unet(cfg.export)
    meta = net.extra_metadata
    assert meta["kind"] == "edges-to-image" and meta["name"] == "house-edges" and meta["resolution"] == 32
    assert meta["heldout"] == {"first": 12, "count": 4} and meta["canny"]["low"] == 100.0
    assert 0 < meta["validation"]["psnr"] < 60 and meta["training"]["steps"] == 2
    assert net.config.input_nc == 1 and net.config.num_downs == 5
    out = translate_edges(net, np.eye(32, dtype=bool))
    assert out.shape == (32, 32, 3) and out.dtype == np.uint8
    again = export_only(smoke_config(tmp_path, "--export", str(tmp_path / "again.safetensors")))
    assert all(torch.equal(v, net.state_dict()[k]) for k, v in load_unet(again).state_dict().items())


def test_resume_continues_exactly_where_it_stopped(tmp_path):
    train(smoke_config(tmp_path / "split", "--no-export"))
    resumed = train(smoke_config(tmp_path / "split", "--steps", "3", "--no-export"))
    straight = train(smoke_config(tmp_path / "straight", "--steps", "3", "--no-export"))
    assert resumed.step == straight.step == 3
    a = load_checkpoint(tmp_path / "split" / CHECKPOINT_NAME)["nets"]
    b = load_checkpoint(tmp_path / "straight" / CHECKPOINT_NAME)["nets"]
    for net in ("G", "D"):
        for key, value in a[net].items():
            assert torch.equal(value, b[net][key]), f"{net}.{key} differs after resuming"


def test_the_last_images_are_held_out(tmp_path):
    run = start_run(smoke_config(tmp_path), resume=False)
    assert len(run.train) == 12 and len(run.heldout) == 4
    all_images = np.concatenate([run.train.images, run.heldout.images])
    np.testing.assert_array_equal(run.heldout.images, all_images[-4:])
    generator = torch.Generator().manual_seed(0)
    for _ in range(5):  # every sampled pair is a training image with its own edges
        e, x = run.train.sample(4, generator)
        pixels = ((x + 1) * 127.5).round().byte().permute(0, 2, 3, 1).numpy()
        for image, edges in zip(pixels, e[:, 0].numpy() > 0):
            assert any(np.array_equal(image, t) or np.array_equal(image, t[:, ::-1]) for t in run.train.images)
            assert (edges == canny_edges(image)).mean() > 0.98  # mirrored edges, up to Canny's tie rule


def test_edge_maps_are_cached_bit_packed(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (5, 16, 16, 3), dtype=np.uint8)
    cache = tmp_path / "edges.npy"
    first = edge_maps(images, 100, 200, cache)
    assert first.shape == (5, 16, 16) and np.load(cache).shape == (5, 16, 2)
    np.testing.assert_array_equal(edge_maps(images, 100, 200, cache), first)
    np.testing.assert_array_equal(first[2], canny_edges(images[2]))


def test_patch_discriminator_sees_34_pixel_patches():
    D = PatchDiscriminator(4, ndf=4, layers=2).eval()
    x = torch.zeros(1, 4, 64, 64, requires_grad=True)
    out = D(x)
    out[0, 0, out.shape[2] // 2, out.shape[3] // 2].backward()
    rows = torch.nonzero(x.grad.abs().sum(dim=(0, 1, 3)) > 0)
    assert int(rows.max() - rows.min() + 1) == 34


def test_a_budget_is_required(tmp_path):
    with pytest.raises(GanvasError, match="set a training budget"):
        train(EdgesConfig(out=str(tmp_path), smoke=True, data=""))


def test_model_card_and_catalogue_list_the_second_kind(tmp_path):
    card = REPO_ROOT / "resources" / "models" / "house-edges.md"
    fields = read_card(card)
    assert fields["kind"] == "edges-to-image" and "pix2pix" in fields["title"]
    cfg = smoke_config(tmp_path / "run", "--export", str(tmp_path / "models" / "house-edges.safetensors"))
    train(cfg)
    shutil.copy(card, tmp_path / "models" / "house-edges.md")
    shutil.copy(REPO_ROOT / "resources" / "models" / "house-gan.md", tmp_path / "models" / "house-gan.md")
    (tmp_path / "models" / "house-gan.safetensors").write_bytes(b"x")
    kinds = {e.id: e.kind for e in available([tmp_path / "models"])}
    assert kinds == {"house-edges": "edges-to-image", "house-gan": "generator"}
