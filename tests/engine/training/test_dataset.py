import json

import numpy as np
import pytest

from engine.errors import GanvasError, ModelNotFound
from engine.training import dataset
from engine.training.dataset import (
    HOUSE_DATA_CREDIT,
    HOUSE_STYLE,
    LabelledImages,
    RenderSettings,
    build_dicebear,
    build_parametric,
    load_dataset,
    save_dataset,
    style_card,
)
from engine.training.faces import LABEL_NAMES, FaceParams, render_face, render_faces


# ---------------------------------------------------------------- parametric faces


def test_parametric_faces_are_deterministic_per_seed():
    images_a, labels_a = render_faces(6, 32, seed=7)
    images_b, labels_b = render_faces(6, 32, seed=7)
    images_c, _ = render_faces(6, 32, seed=8)
    assert images_a.shape == (6, 32, 32, 3) and images_a.dtype == np.uint8
    assert np.array_equal(images_a, images_b)
    assert all(np.array_equal(labels_a[k], labels_b[k]) for k in LABEL_NAMES)
    assert not np.array_equal(images_a, images_c)


def test_parametric_labels_are_the_drawn_parameters():
    images, labels = render_faces(5, 32, seed=1)
    assert set(labels) == set(LABEL_NAMES)
    for i in range(5):
        params = FaceParams(**{k: float(labels[k][i]) for k in LABEL_NAMES})
        assert np.array_equal(render_face(params, 32), images[i])
    assert np.all(np.abs(labels["smile"]) <= 1) and set(np.unique(labels["glasses"])) <= {0.0, 1.0}


def test_smile_bends_the_mouth_and_glasses_add_dark_rims():
    base = FaceParams()
    smile = render_face(FaceParams(smile=1.0), 64).astype(int)
    frown = render_face(FaceParams(smile=-1.0), 64).astype(int)
    changed_rows = np.nonzero(np.abs(smile - frown).sum(axis=(1, 2)))[0]
    assert changed_rows.size > 0 and changed_rows.min() > 40  # only the lower face changes
    plain = render_face(base, 64)
    glasses = render_face(FaceParams(glasses=1.0), 64)
    assert (glasses.max(axis=2) < 60).sum() > (plain.max(axis=2) < 60).sum() + 20


def test_parametric_face_rejects_tiny_size():
    with pytest.raises(GanvasError, match="Got: 4"):
        render_face(FaceParams(), 4)


# ---------------------------------------------------------------- DiceBear avatars


@pytest.fixture(scope="module")
def avatars():
    return build_dicebear(HOUSE_STYLE, 6, RenderSettings(size=48), seed=3)


def test_dicebear_images_and_labels(avatars):
    assert avatars.images.shape == (6, 48, 48, 3) and avatars.images.dtype == np.uint8
    for name in ("mouthVariant", "skinColor", "hairColor", "accessoriesVariant", "facialHairVariant",
                 "topVariant", "eyesVariant", "backgroundColor"):
        codes = avatars.labels[name]
        assert codes.dtype == np.int16 and codes.shape == (6,)
        assert codes.max() < len(avatars.vocab[name])
    # Every avatar has a mouth and a skin, so code 0 ("none") never appears there.
    assert avatars.labels["mouthVariant"].min() > 0 and avatars.labels["skinColor"].min() > 0
    assert "smile" in avatars.vocab["mouthVariant"] and "sunglasses" in avatars.vocab["accessoriesVariant"]
    assert avatars.meta["card"]["style"] == HOUSE_STYLE


def test_background_label_matches_the_corner_pixel(avatars):
    for i in range(len(avatars)):
        colour = avatars.decode("backgroundColor", i)
        expected = [int(colour[k : k + 2], 16) for k in (1, 3, 5)]
        assert np.abs(avatars.images[i, 0, 0].astype(int) - expected).max() <= 1


def test_dicebear_is_deterministic_and_seed_dependent(avatars):
    again = build_dicebear(HOUSE_STYLE, 6, RenderSettings(size=48), seed=3)
    other = build_dicebear(HOUSE_STYLE, 6, RenderSettings(size=48), seed=4)
    assert np.array_equal(avatars.images, again.images)
    assert all(np.array_equal(avatars.labels[k], again.labels[k]) for k in avatars.labels)
    assert not np.array_equal(avatars.images, other.images)


def test_forced_glasses_probability_shows_in_labels():
    settings = RenderSettings(size=32, probabilities=(("accessories", 100), ("facialHair", 0)))
    data = build_dicebear(HOUSE_STYLE, 4, settings, seed=0)
    assert data.labels["accessoriesVariant"].min() > 0
    assert data.labels["facialHairVariant"].max() == 0


def test_unknown_style_is_reported():
    with pytest.raises(ModelNotFound, match="Got: 'no-such-style'"):
        build_dicebear("no-such-style", 2)


def test_house_credit_names_the_style_licence_and_artist():
    card = style_card(HOUSE_STYLE)
    assert card.creator in HOUSE_DATA_CREDIT
    assert card.licence.lower() in HOUSE_DATA_CREDIT.lower()
    assert card.source_url in HOUSE_DATA_CREDIT
    assert card.attribution.startswith("Remix of")


# ---------------------------------------------------------------- files


def test_save_and_memmap_load_round_trip(tmp_path, avatars):
    path = save_dataset(avatars, tmp_path / "set.npz")
    loaded = load_dataset(path, mmap=True)
    assert isinstance(loaded.images, np.memmap)
    assert np.array_equal(np.asarray(loaded.images), avatars.images)
    assert loaded.vocab == avatars.vocab
    assert all(np.array_equal(loaded.labels[k], avatars.labels[k]) for k in avatars.labels)
    assert loaded.meta["card"] == avatars.meta["card"]
    assert not list(tmp_path.glob("*.tmp"))


def test_load_rejects_missing_and_foreign_files(tmp_path):
    with pytest.raises(ModelNotFound):
        load_dataset(tmp_path / "absent.npz")
    foreign = tmp_path / "foreign.npz"
    np.savez(foreign, x=np.zeros(3))
    with pytest.raises(GanvasError, match="not a GANvas data set"):
        load_dataset(foreign)


def test_command_line_builds_a_parametric_set(tmp_path):
    out = tmp_path / "faces.npz"
    assert dataset.main(["--style", "parametric", "--count", "8", "--size", "32", "--out", str(out)]) == 0
    data = load_dataset(out)
    assert data.images.shape == (8, 32, 32, 3)
    assert set(data.labels) == set(LABEL_NAMES) and data.labels["smile"].dtype == np.float32
    assert isinstance(data.decode("smile", 0), float)


def test_parametric_builder_matches_the_renderer():
    data = build_parametric(4, 32, seed=5)
    images, _ = render_faces(4, 32, seed=5)
    assert isinstance(data, LabelledImages) and np.array_equal(data.images, images)
    assert json.loads(json.dumps(data.meta))["kind"] == "parametric"


def test_two_workers_give_the_same_set_as_one(avatars):
    parallel = build_dicebear(HOUSE_STYLE, 6, RenderSettings(size=48), seed=3, workers=2)
    assert np.array_equal(parallel.images, avatars.images)
    assert all(np.array_equal(parallel.labels[k], avatars.labels[k]) for k in avatars.labels)
