import numpy as np
import pytest
import torch

from engine.convert import batch_to_images, image_to_tensor, tensor_to_image
from engine.errors import GanvasError
from engine.models.checkpoint import load_generator
from engine.ops.generate import class_vector, render, sample, seed_to_z
from tests.engine.models import STYLEGAN_FIXTURES

CHECKPOINTS = STYLEGAN_FIXTURES / "checkpoints"


@pytest.fixture(scope="module")
def G():
    return load_generator(CHECKPOINTS / "network-snapshot-sg2ada-uncond-p4.pkl")


def test_seed_maps_to_z_as_the_official_scripts_do(G):
    # The reference z of the fixture is RandomState(101).randn(4, 64); its first row is seed 101.
    reference = np.load(STYLEGAN_FIXTURES / "sg2ada_G.npz")
    np.testing.assert_array_equal(seed_to_z(101, 64)[0].numpy(), reference["z"][0])
    for psi, key in [(1.0, "img_psi1_const"), (0.7, "img_psi0.7_const")]:
        result = sample(G, 101, truncation_psi=psi)
        expected = tensor_to_image(torch.from_numpy(reference[key][:1]))
        assert np.abs(result.image.astype(int) - expected).max() <= 1
        assert result.ws.shape == (1, G.num_ws, G.w_dim)
        np.testing.assert_array_equal(render(G, result.ws), result.image)


def test_class_labels_and_bad_arguments(G):
    assert class_vector(None, 0).shape == (1, 0)
    assert class_vector(2, 4).tolist() == [[0, 0, 1, 0]]
    with pytest.raises(GanvasError, match="conditional"):
        class_vector(None, 4)
    with pytest.raises(GanvasError, match="Got: 4"):
        class_vector(4, 4)
    with pytest.raises(GanvasError, match="unconditional"):
        sample(G, 0, class_index=1)
    with pytest.raises(GanvasError, match="psi"):
        sample(G, 0, truncation_psi=-1)
    with pytest.raises(GanvasError, match="seed"):
        seed_to_z(-1, 8)
    with pytest.raises(GanvasError, match="ws must be"):
        render(G, torch.zeros(1, 3, G.w_dim))


def test_conditional_classes_differ():
    G = load_generator(CHECKPOINTS / "network-snapshot-sg2ada-cond-p3.pkl")
    images = [sample(G, 5, class_index=k).image for k in range(G.c_dim)]
    assert all(np.abs(images[0].astype(int) - im).max() > 0 for im in images[1:])


def test_image_tensor_round_trip():
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, size=(5, 7, 3), dtype=np.uint8)
    tensor = image_to_tensor(pixels)
    assert tensor.shape == (1, 3, 5, 7) and tensor.min() >= -1 and tensor.max() <= 1
    np.testing.assert_array_equal(tensor_to_image(tensor), pixels)
    np.testing.assert_array_equal(batch_to_images(tensor.repeat(2, 1, 1, 1))[1], pixels)
    grey = tensor_to_image(torch.zeros(1, 1, 2, 2))
    assert grey.shape == (2, 2, 3) and (grey == 128).all()
    with pytest.raises(GanvasError, match="one image"):
        tensor_to_image(torch.zeros(2, 3, 2, 2))
