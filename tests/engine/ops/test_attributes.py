import numpy as np
import pytest
import torch

from engine.errors import GanvasError
from engine.models.checkpoint import load_generator
from engine.ops.attributes import (Attribute, KeepConfig, attribute_regions, data_set_regions, edit_effects,
                                   fit_attribute_directions, keep_direction, keep_weights)
from engine.ops.edit import sample_w
from engine.training.dataset import LabelledImages, save_dataset
from tests.engine.models import STYLEGAN_FIXTURES

TONE = Attribute("bright", "tone", ("bright",), ("dark",))
VOCAB = {"tone": ["none", "dark", "bright"]}


@pytest.fixture(scope="module")
def G():
    return load_generator(STYLEGAN_FIXTURES / "checkpoints" / "network-snapshot-sg2ada-uncond-p4.pkl")  # 32 px


def tone_predictor(G, columns: slice):
    """A stand-in classifier: is the picture bright or dark in ``columns``? Thresholded at the median sample."""
    z = torch.randn(300, G.z_dim, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        threshold = float(G.synthesis(G.mapping(z, None))[..., columns].mean(dim=(1, 2, 3)).median())

    def predict(images):
        bright = torch.sigmoid((images[..., columns].mean(dim=(1, 2, 3)) - threshold) * 30)
        return {"tone": torch.stack([torch.zeros_like(bright), 1 - bright, bright], dim=1)}

    return predict


def test_directions_fitted_from_a_classifier_move_its_attribute(G):
    predict = tone_predictor(G, slice(None))
    steps = []
    (d,) = fit_attribute_directions(G, predict, VOCAB, [TONE], n=640, batch=64, min_confidence=0.6,
                                    progress=lambda step, total, msg, preview=None: steps.append(step))
    assert steps == list(range(1, 11)) and d.name == "bright" and d.info["accuracy"] > 0.8
    assert d.vector.shape == (G.w_dim,) and d.method == "interfacegan"
    effects = edit_effects(G, predict, VOCAB, [d], [TONE], n=128)
    assert effects["bright"]["bright"] > 0.3
    with pytest.raises(GanvasError, match="no label"):
        fit_attribute_directions(G, predict, VOCAB, [Attribute("x", "mouth", ("a",), ("b",))], n=64)


def test_regions_find_where_the_labelled_images_differ(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(100, 140, size=(400, 32, 32, 3), dtype=np.uint8)
    codes = (np.arange(400) % 3).astype(np.int16)  # 0 off, 1 on, 2 unsure (neither side)
    images[codes == 1, 4:8, 6:12] = 255  # the attribute: a patch at rows 4-7, columns 6-11
    save_dataset(LabelledImages(images, {"acc": codes}, {"acc": ["off", "on", "odd"]}), tmp_path / "d.npz")
    regions = data_set_regions(tmp_path / "d.npz", [Attribute("patch", "acc", ("on",), ("off",))])
    region = regions["patch"]
    assert region.shape == (32, 32) and float(region.max()) == pytest.approx(1.0)
    assert float(region[5:7, 8:10].min()) > 0.8 and float(region[4:8, 6:12].min()) > 0.3
    assert torch.equal(region, region.flip(1))  # mirrored: columns 20-25 too
    outside = torch.ones(32, 32, dtype=torch.bool)
    outside[2:10, 4:14] = outside[2:10, 18:28] = False  # the patches and their 5 px blur
    assert float(region[outside].max()) < 0.1
    weights = keep_weights({"patch": region, "other": 1 - region}, "patch", focus=5.0)
    assert float(weights.mean()) == pytest.approx(1.0, abs=1e-5)
    assert float(weights[5:7, 8:10].max()) < 0.1 * float(weights[outside].min())
    with pytest.raises(GanvasError, match="both sides"):
        attribute_regions(torch.zeros(4, 3, 8, 8), {"patch": torch.ones(4, dtype=torch.long)})
    with pytest.raises(GanvasError, match="no label"):
        data_set_regions(tmp_path / "d.npz", [Attribute("x", "mouth", ("a",), ("b",))])


def test_a_kept_direction_copies_the_edit_inside_its_region_only(G):
    """The plain tone edit, kept to the left half: the kept edit changes the right half far less than
    the plain one, and on the left it comes close to what the plain edit does there."""
    left, right = slice(0, G.img_resolution // 2), slice(G.img_resolution // 2, None)
    predict = tone_predictor(G, slice(None))
    (plain,) = fit_attribute_directions(G, predict, VOCAB, [TONE], n=640, batch=64, min_confidence=0.6)
    pool = sample_w(G, 640, seed=0)
    with torch.no_grad():
        yes = predict(G.synthesis(pool[:, None].repeat(1, G.num_ws, 1)))["tone"][:, 2] >= 0.5
    region = torch.zeros(G.img_resolution, G.img_resolution)
    region[:, left] = 1
    cfg = KeepConfig(strength=2.0, steps=60, batch=16, lr=0.02)
    move = keep_direction(G, plain, pool, yes, region, torch.ones_like(region), cfg)
    assert move.shape == (G.num_ws, G.w_dim)

    base = sample_w(G, 64, seed=9)[:, None].repeat(1, G.num_ws, 1)
    plain_move = plain.vector * plain.scale * cfg.strength
    with torch.no_grad():
        original, edited, kept = (G.synthesis(base + m) for m in (0, plain_move, move))
    plain_left = float((edited - original)[..., left].square().mean())
    plain_right = float((edited - original)[..., right].square().mean())
    assert float((kept - original)[..., right].square().mean()) < 0.3 * plain_right
    assert float((kept - edited)[..., left].square().mean()) < 0.5 * plain_left


def test_fitting_with_keep_gives_w_plus_directions_and_counts_its_steps(G):
    predict = tone_predictor(G, slice(None))
    dark_left = Attribute("dark", "tone", ("dark",), ("bright",))
    steps = []
    cfg = KeepConfig(steps=3, batch=8)
    with pytest.raises(GanvasError, match="region"):
        fit_attribute_directions(G, predict, VOCAB, [TONE], n=128, keep=cfg, regions={})
    regions = {"bright": torch.rand(32, 32), "dark": torch.rand(32, 32)}
    directions = fit_attribute_directions(G, predict, VOCAB, [TONE, dark_left], n=128, batch=64, min_confidence=0.6,
                                          keep=cfg, regions=regions,
                                          progress=lambda step, total, msg, preview=None: steps.append((step, total)))
    assert [d.name for d in directions] == ["bright", "dark"]
    assert all(d.vector.shape == (G.num_ws, G.w_dim) and d.method == "interfacegan+keep" for d in directions)
    assert directions[0].info["keep"]["steps"] == 3
    assert [s for s, _ in steps] == list(range(1, 2 + 2 * 3 + 1)) and {t for _, t in steps} == {2 + 2 * 3}
