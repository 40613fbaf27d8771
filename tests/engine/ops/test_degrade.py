import cv2
import numpy as np
import pytest
import torch

from engine.errors import GanvasError
from engine.ops import degrade


def _image(r: int = 16, seed: int = 0, dtype=torch.float32) -> torch.Tensor:
    return (torch.rand(1, 3, r, r, generator=torch.Generator().manual_seed(seed)) * 2 - 1).to(dtype)


def _hole(r: int = 16) -> torch.Tensor:
    mask = torch.ones(r, r)
    mask[4:10, 3:12] = 0
    return mask


def test_shapes_of_every_operator():
    x = _image()
    ops = [degrade.identity(16), degrade.masked(_hole()), degrade.greyscale(16), degrade.downsampling(16, 4)]
    for op in ops:
        y = op(x)
        assert tuple(y.shape[1:]) == degrade.observation_shape(op, 16), op.kind
        assert degrade.to_image_space(y, op, 16).shape == (1, 3, 16, 16)
    assert [op.kind for op in ops] == list(degrade.KINDS)


def test_operators_compute_what_they_claim():
    x = _image()
    torch.testing.assert_close(degrade.identity(16)(x), x)
    hidden = degrade.masked(_hole())(x)
    assert float(hidden[..., 4:10, 3:12].abs().max()) == 0
    torch.testing.assert_close(hidden[..., 0, :], x[..., 0, :])
    grey = degrade.greyscale(16)(x)
    torch.testing.assert_close(grey, 0.299 * x[:, :1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:], atol=1e-3, rtol=0)
    # area down-sampling agrees with OpenCV's INTER_AREA, which the command line uses
    pixels = x[0].permute(1, 2, 0).numpy()
    expected = cv2.resize(pixels, (4, 4), interpolation=cv2.INTER_AREA)
    np.testing.assert_allclose(degrade.downsampling(16, 4)(x)[0].permute(1, 2, 0).numpy(), expected, atol=1e-5)


def test_weights_follow_the_operator():
    weight = torch.rand(16, 16) + 0.5
    op = degrade.masked(_hole(), weight=weight)
    w = op.observation_weight()
    assert w.shape == (1, 1, 16, 16) and float(w[..., 5, 5]) == 0 and float(w[..., 0, 0]) == pytest.approx(float(weight[0, 0]))
    assert float(op.unseen().sum()) == 6 * 9
    down = degrade.downsampling(16, 4, weight=weight).observation_weight()
    assert down.shape == (1, 1, 4, 4)
    assert float(down[0, 0, 0, 0]) == pytest.approx(float(weight[:4, :4].mean()), rel=1e-5)
    assert degrade.identity(16).observation_weight() is None and degrade.identity(16).unseen() is None
    zero_weight = torch.ones(16, 16)
    zero_weight[0, 0] = 0
    assert float(degrade.greyscale(16, weight=zero_weight).unseen().sum()) == 1


def test_observe_accepts_full_images_and_observations():
    x = _image()
    op = degrade.downsampling(16, 2)
    assert degrade.observe(op, x, 16).shape == (1, 3, 8, 8)
    assert degrade.observe(op, op(x), 16).shape == (1, 3, 8, 8)
    grey = degrade.greyscale(16)
    assert degrade.observe(grey, x, 16).shape == (1, 1, 16, 16)
    assert degrade.observe(grey, grey(x), 16).shape == (1, 1, 16, 16)
    with pytest.raises(GanvasError, match="Got: \\(3, 4, 4\\)"):
        degrade.observe(op, x[..., :4, :4], 16)


def test_projection_makes_the_render_consistent():
    x, y_full = _image(seed=1), _image(seed=2)
    for op in [degrade.masked(_hole()), degrade.greyscale(16), degrade.downsampling(16, 4)]:
        y = op(y_full)
        p = degrade.project(op, x, y)
        assert (op(p) - y).abs().max() < 2e-3, op.kind
        assert (p - x).abs().max() > 0.05  # it did move
    assert degrade.project(degrade.masked(_hole()), x, y_full)[..., 5, 5].equal(x[..., 5, 5])  # hole stays ours
    assert degrade.project(degrade.identity(16), x, y_full).equal(x)


def test_bad_arguments():
    with pytest.raises(GanvasError, match="factor"):
        degrade.downsampling(16, 3)
    with pytest.raises(GanvasError, match="factor"):
        degrade.downsampling(16, 1)
    with pytest.raises(GanvasError, match="hides every pixel"):
        degrade.masked(torch.zeros(8, 8))
    with pytest.raises(GanvasError, match="weight must be \\(16, 16\\)"):
        degrade.identity(16, weight=torch.ones(8, 8))
    with pytest.raises(GanvasError, match=">= 0"):
        degrade.greyscale(16, weight=-torch.ones(16, 16))
    with pytest.raises(GanvasError, match="\\(N, 3, H, W\\)"):
        degrade.greyscale(16)(torch.zeros(1, 1, 16, 16))


@pytest.mark.parametrize("kind", ["mask", "grey", "down"])
def test_gradients(kind):
    x = _image(8, dtype=torch.float64).requires_grad_(True)
    mask = torch.ones(8, 8)
    mask[2:5, 2:6] = 0
    op = {"mask": degrade.masked(mask), "grey": degrade.greyscale(8), "down": degrade.downsampling(8, 2)}[kind]
    assert torch.autograd.gradcheck(lambda t: op(t), (x,), eps=1e-6, atol=1e-4)
