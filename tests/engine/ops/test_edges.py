import cv2
import numpy as np
import pytest
import torch

from engine.errors import GanvasError
from engine.ops import edges as E


def _card(side: int = 32, shift: int = 0) -> np.ndarray:
    """A flat background with a darker square and a bright disc: step edges of known places."""
    img = np.full((side, side, 3), 200, np.uint8)
    img[8 + shift:20 + shift, 6:18] = (40, 60, 80)
    cv2.circle(img, (24, 22), 5, (140, 140, 140), -1)  # a 60-level step: 4 x 60 = 240 on the Sobel scale
    return img


def _square_outline(side: int = 32, top: int = 8, left: int = 8, size: int = 12) -> np.ndarray:
    e = np.zeros((side, side), bool)
    e[top, left:left + size] = e[top + size - 1, left:left + size] = True
    e[top:top + size, left] = e[top:top + size, left + size - 1] = True
    return e


def test_canny_agrees_with_opencv_at_controlnet_thresholds():
    img = _card()
    ours = E.canny_edges(img, 100, 200)
    theirs = cv2.Canny(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY), 100, 200) > 0
    assert ours.dtype == bool and ours.shape == (32, 32)
    assert E.edge_fscore(ours, theirs, tolerance=0).f > 0.9
    assert not ours[0:6].any() and ours[8:20, 6:18].any()  # edges on the shapes only
    # the disc (Sobel 240) passes 100/200 but not 300/600; the square (560) passes both
    strict = E.canny_edges(img, 300, 600)
    assert ours[16:29, 18:31].any() and not strict[16:29, 18:31].any() and strict[8:20, 6:18].any()


def test_hysteresis_by_components_matches_kornias_iterative_one():
    import kornia

    rng = np.random.default_rng(0)
    img = cv2.GaussianBlur(rng.integers(0, 256, (48, 48, 3)).astype(np.uint8), (0, 0), 1.5)  # long weak chains
    img = np.concatenate([img, _card(48)[:, :48]], axis=1)
    x = torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255
    _, expected = kornia.filters.canny(kornia.color.rgb_to_grayscale(x), 20 / 255, 40 / 255, kernel_size=1)
    ours = E.canny(x * 2 - 1, 20, 40)
    assert float(expected.sum()) > 100 and torch.equal(ours, expected.float())


def test_canny_on_tensors_and_grey_and_float_input():
    img = _card()
    x = torch.from_numpy(img).permute(2, 0, 1)[None].float() / 127.5 - 1
    edges = E.canny(x)
    assert edges.shape == (1, 1, 32, 32) and set(edges.unique().tolist()) <= {0.0, 1.0}
    grey = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
    assert E.edge_fscore(E.canny_edges(grey), E.canny_edges(img), 0).f > 0.9
    np.testing.assert_array_equal(E.canny_edges(img.astype(np.float32) / 255), E.canny_edges(img))
    assert E.canny_edges(img, sigma=1.0).sum() <= E.canny_edges(img).sum()  # blurring weakens the steps


def test_bad_thresholds_and_shapes_are_refused():
    with pytest.raises(GanvasError, match="low <= high.*Got: 200, 100"):
        E.canny_edges(_card(), 200, 100)
    with pytest.raises(GanvasError, match="Got"):
        E.canny_edges(np.zeros((4, 4, 2), np.uint8))


def test_fscore_tolerance():
    truth = _square_outline()
    assert E.edge_fscore(truth, truth).f == 1.0
    one_off = np.roll(truth, 1, axis=0)
    assert E.edge_fscore(one_off, truth, tolerance=2).f == 1.0
    assert E.edge_fscore(one_off, truth, tolerance=0).f < 0.7
    far = np.roll(truth, 5, axis=1)
    score = E.edge_fscore(far, truth, tolerance=2)
    assert score.f < 0.6 and 0 < score.precision < 1 and 0 < score.recall < 1
    half = truth.copy()
    half[:, 14:] = False
    partial = E.edge_fscore(half, truth)
    assert partial.precision == 1.0 and partial.recall < 0.8
    empty = np.zeros_like(truth)
    assert E.edge_fscore(empty, empty).f == 1.0 and E.edge_fscore(empty, truth).f == 0.0
    assert E.edge_fscore(truth, empty).f == 0.0


def test_distance_to_edges():
    e = np.zeros((9, 9), bool)
    e[4, 4] = True
    d = E.distance_to_edges(e)
    assert d[4, 4] == 0 and d[4, 7] == pytest.approx(3, abs=0.01) and d[0, 0] == pytest.approx(np.hypot(4, 4), abs=0.05)
    assert (E.distance_to_edges(np.zeros((5, 5), bool)) == 10).all()


def test_soft_edges_are_differentiable_and_mark_the_steps():
    img = _card()
    x = (torch.from_numpy(img).permute(2, 0, 1)[None].float() / 127.5 - 1).requires_grad_(True)
    soft = E.soft_edges(x)
    soft.sum().backward()
    soft = soft.detach()
    assert soft.shape == (1, 1, 32, 32) and float(soft.min()) >= 0 and float(soft.max()) <= 1
    canny = torch.from_numpy(E.canny_edges(img))
    assert float(soft[0, 0][canny].mean()) > 0.9 and float(soft[0, 0, 0:5].max()) < 0.05
    assert torch.isfinite(x.grad).all() and float(x.grad.abs().sum()) > 0
    flat = torch.zeros(1, 3, 8, 8, requires_grad=True)
    E.soft_edges(flat).sum().backward()
    assert torch.isfinite(flat.grad).all()  # eps inside the root: no NaN on a flat image


def test_edge_loss_tolerates_small_offsets_and_punishes_large_ones():
    truth = _square_outline()
    target = E.EdgeTarget.from_map(truth, tolerance=2, reach=8)
    as_soft = lambda e: torch.from_numpy(e.astype(np.float32))[None, None]
    exact = float(E.edge_loss(as_soft(truth), target))
    near = float(E.edge_loss(as_soft(np.roll(truth, 2, axis=1)), target))
    far = float(E.edge_loss(as_soft(np.roll(truth, 7, axis=1)), target))
    nothing = float(E.edge_loss(torch.zeros(1, 1, 32, 32), target))
    assert exact < 0.05 and near < exact + 0.15 < far and nothing == pytest.approx(1.0)
    batch = torch.cat([as_soft(truth), as_soft(np.roll(truth, 7, axis=1))])
    assert E.edge_loss(batch, target).shape == (2,)
    soft = torch.full((1, 1, 32, 32), 0.5, requires_grad=True)
    E.edge_loss(soft, target).sum().backward()
    assert float(soft.grad[0, 0, 0, 31]) > 0 > float(soft.grad[0, 0, 8, 8])  # fade strays, grow drawn
    with pytest.raises(GanvasError, match="soft edges must be"):
        E.edge_loss(torch.zeros(1, 1, 16, 16), target)


def test_edges_from_drawing_reads_both_polarities_and_alpha():
    truth = _square_outline()
    white_on_black = np.repeat((truth * 255).astype(np.uint8)[..., None], 3, axis=2)
    np.testing.assert_array_equal(E.edges_from_drawing(white_on_black), truth)
    np.testing.assert_array_equal(E.edges_from_drawing(255 - white_on_black), truth)
    rgba = np.zeros((32, 32, 4), np.uint8)
    rgba[..., 3] = truth * 255
    np.testing.assert_array_equal(E.edges_from_drawing(rgba), truth)
