import pytest
import torch

from engine.errors import GanvasError
from engine.training.augment import diff_augment, random_cutout, random_translation


def seeded(seed=0):
    return torch.Generator().manual_seed(seed)


def test_shape_and_gradient_flow():
    x = torch.randn(4, 3, 16, 16, requires_grad=True)
    y = diff_augment(x, generator=seeded())
    assert y.shape == x.shape
    y.square().sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_same_generator_state_gives_the_same_augmentation():
    x = torch.randn(3, 3, 16, 16)
    assert torch.equal(diff_augment(x, generator=seeded(5)), diff_augment(x, generator=seeded(5)))
    assert not torch.equal(diff_augment(x, generator=seeded(5)), diff_augment(x, generator=seeded(6)))


def test_empty_policy_is_identity():
    x = torch.randn(2, 3, 8, 8)
    assert torch.equal(diff_augment(x, ""), x)


def test_translation_is_an_integer_shift_with_zero_fill():
    x = torch.arange(1, 1 + 16 * 16, dtype=torch.float32).view(1, 1, 16, 16).repeat(8, 1, 1, 1)
    y = random_translation(x, generator=seeded(1))
    for image in y[:, 0]:
        nonzero = image[image != 0]
        # The kept values form a rectangle of the original whose rows step by 16.
        rows = torch.nonzero(image.sum(1)).flatten()
        cols = torch.nonzero(image.sum(0)).flatten()
        block = image[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
        assert block.numel() == nonzero.numel() and bool((block != 0).all())
        assert torch.all(block[:, 1:] - block[:, :-1] == 1) and torch.all(block[1:] - block[:-1] == 16)
        assert 14 * 14 <= nonzero.numel() <= 16 * 16  # shift of at most 2 = 16 / 8 pixels


def test_cutout_zeroes_one_square_of_half_the_side():
    x = torch.ones(16, 1, 16, 16)
    y = random_cutout(x, generator=seeded(2))
    zeros = (y == 0).sum(dim=(1, 2, 3))
    assert torch.all(zeros <= 64) and torch.all(zeros >= 16) and zeros.max() == 64


def test_rejects_unknown_policy_and_bad_shape():
    with pytest.raises(GanvasError, match="Got: 'color,zoom'"):
        diff_augment(torch.zeros(1, 3, 8, 8), "color,zoom")
    with pytest.raises(GanvasError, match=r"Got: shape \(3, 8, 8\)"):
        diff_augment(torch.zeros(3, 8, 8))
