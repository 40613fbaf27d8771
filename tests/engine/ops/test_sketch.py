from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from engine.errors import Cancelled, GanvasError
from engine.jobs import CancelToken
from engine.models.checkpoint import load_discriminator, load_generator
from engine.ops import edges as E
from engine.ops.generate import sample
from engine.ops.invert import w_prior
from engine.ops.sketch import (Sketch, SketchConfig, SketchObjective, delta_e, prepare, sketch, stroke_agreement,
                               stroke_blur)

HOUSE = Path(__file__).resolve().parents[3] / "resources" / "models" / "house-gan.safetensors"
FAST = SketchConfig(steps=60, candidates=2, screen=8, preview_every=20)


@pytest.fixture(scope="module")
def G():
    torch.set_num_threads(1)  # small batches: a second thread only adds contention
    return load_generator(HOUSE)


@pytest.fixture(scope="module")
def prior(G):
    return w_prior(G, 1000)


@pytest.fixture(scope="module")
def target(G):
    return sample(G, 5, truncation_psi=0.7).image  # reachable by construction


@pytest.fixture(scope="module")
def stroked(target):
    return np.random.default_rng(0).random(target.shape[:2]) < 0.10


def test_colour_strokes_pull_the_render_to_their_colours(G, prior, target, stroked):
    previews = []
    result = sketch(G, Sketch(colour=target, alpha=stroked.astype(np.float32)), FAST, prior=prior,
                    progress=lambda step, total, msg, preview=None: previews.append((step, total, preview)))
    assert len(result.candidates) == 2 and result.steps == 60 and not result.warm
    losses = [c.loss for c in result.candidates]
    assert losses == sorted(losses) and set(result.best.terms) == {"colour"}
    best = result.best
    assert best.ws.shape == (1, G.num_ws, G.w_dim) and best.image.shape == (64, 64, 3) and best.image.dtype == np.uint8
    np.testing.assert_array_equal(best.image, best.render)  # nothing kept: the image is the render
    start = sample(G, 99, truncation_psi=0.7).image
    assert stroke_agreement(best.image, target, stroked) > max(0.6, stroke_agreement(start, target, stroked) + 0.3)
    assert [p[0] for p in previews] == list(range(1, 61)) and previews[-1][1] == 60
    assert sum(p[2] is not None for p in previews) == 3


def test_edges_pull_the_render_onto_the_drawn_lines(G, prior, target):
    drawn = E.canny_edges(target)
    result = sketch(G, Sketch(edges=drawn), FAST, prior=prior)
    assert set(result.best.terms) == {"edges"}
    found = E.edge_fscore(E.canny_edges(result.best.image), drawn).f
    unrelated = np.mean([E.edge_fscore(E.canny_edges(sample(G, s).image), drawn).f for s in (11, 12, 13)])
    assert found > unrelated + 0.2


def test_a_large_drawing_is_brought_to_the_model_size(G, target):
    big = np.kron(E.canny_edges(target), np.ones((4, 4), bool))  # a 256 px drawing of 4 px lines
    small = prepare(Sketch(edges=big), 64, FAST).edges.edges[0, 0].numpy() > 0.5
    assert E.edge_fscore(small, E.canny_edges(target), tolerance=1).f > 0.9


def test_kept_pixels_stay_and_the_rest_is_searched(G, prior, target):
    keep = np.zeros((64, 64), np.float32)
    keep[:, :32] = 1
    cfg = replace(FAST, steps=30, candidates=1)
    result = sketch(G, Sketch(keep=keep, source=target), cfg, prior=prior)
    best = result.best
    np.testing.assert_array_equal(best.image[:, :32], target[:, :32])
    assert not np.array_equal(best.render[:, :32], target[:, :32])  # the render itself is the generator's
    error = lambda a: np.abs(a[:, :32].astype(float) - target[:, :32]).mean()
    assert error(best.render) < 0.3 * error(sample(G, 99, truncation_psi=0.7).image)


def test_warm_start_continues_from_the_last_result(G, prior, target, stroked):
    drawing = Sketch(colour=target, alpha=stroked.astype(np.float32))
    first = sketch(G, drawing, replace(FAST, candidates=1), prior=prior)
    seen = []
    live = sketch(G, drawing, replace(FAST, warm_steps=5), warm_start=first.best.ws, prior=prior,
                  progress=lambda step, total, msg, preview=None: seen.append(step))
    assert live.warm and live.steps == 5 and len(live.candidates) == 1 and seen == [1, 2, 3, 4, 5]
    assert live.best.loss <= first.best.loss * 1.05
    assert float((live.best.ws - first.best.ws).abs().max()) < 0.5  # nearby, not a fresh search
    with pytest.raises(GanvasError, match="warm_start must be"):
        sketch(G, drawing, FAST, warm_start=torch.zeros(1, 3, G.w_dim), prior=prior)


def test_cancel_stops_within_a_step(G, prior, target):
    token, seen = CancelToken(), []

    def progress(step, total, message, preview=None):
        seen.append(step)
        if step == 4:
            token.cancel()

    with pytest.raises(Cancelled):
        sketch(G, Sketch(edges=E.canny_edges(target)), FAST, prior=prior, progress=progress, cancel=token)
    assert seen[-1] == 4


def test_bad_drawings_and_settings_are_refused(G, prior, target):
    with pytest.raises(GanvasError, match="nothing drawn"):
        sketch(G, Sketch(), FAST, prior=prior)
    with pytest.raises(GanvasError, match="one square size"):
        sketch(G, Sketch(colour=target, edges=np.zeros((32, 32), bool)), FAST, prior=prior)
    with pytest.raises(GanvasError, match="needs its source"):
        sketch(G, Sketch(keep=np.ones((64, 64))), FAST, prior=prior)
    with pytest.raises(GanvasError, match="stroke layer is empty"):
        sketch(G, Sketch(colour=target, alpha=np.zeros((64, 64))), FAST, prior=prior)
    with pytest.raises(GanvasError, match="candidates <= screen"):
        sketch(G, Sketch(colour=target), replace(FAST, candidates=9), prior=prior)
    with pytest.raises(GanvasError, match="mode must be"):
        sketch(G, Sketch(colour=target), replace(FAST, mode="pti"), prior=prior)


def test_realism_scores_each_candidate_on_its_own(G, target):
    D = load_discriminator(HOUSE)
    cfg = replace(FAST, realism=1.0)
    objective = SketchObjective(prepare(Sketch(edges=E.canny_edges(target)), 64, cfg), cfg, D)
    imgs = torch.stack([torch.from_numpy(sample(G, s).image).permute(2, 0, 1).float() / 127.5 - 1 for s in (1, 2, 3)])
    ab = objective.terms(imgs[[0, 1]])["realism"]
    ac = objective.terms(imgs[[0, 2]])["realism"]
    assert float(ab[0]) == pytest.approx(float(ac[0]), rel=1e-5)  # no minibatch-std mixing between candidates
    assert float(ab[1]) != pytest.approx(float(ac[1]), rel=1e-3)
    assert "realism" not in SketchObjective(objective.t, replace(cfg, realism=0.0), D).terms(imgs[:1])


def test_stroke_blur_keeps_flat_strokes_and_spreads_sparse_ones():
    x = torch.zeros(1, 3, 16, 16)
    x[:, 0] = 0.5
    alpha = torch.zeros(1, 1, 16, 16)
    alpha[..., ::4, ::4] = 1
    mean, coverage = stroke_blur(x, alpha, 1.0)
    torch.testing.assert_close(mean[:, :, 2:14, 2:14], x[:, :, 2:14, 2:14])  # a flat colour stays that colour
    assert float(coverage[0, 0, 2, 2]) > 0  # and reaches pixels between the dots


def test_delta_e_and_agreement():
    black, white = np.zeros((4, 4, 3), np.uint8), np.full((4, 4, 3), 255, np.uint8)
    assert delta_e(black, white) == pytest.approx(np.full((4, 4), 100.0), abs=0.05)
    near = white.copy()
    near[0, 0] = (250, 250, 250)  # ΔE about 2
    mask = np.ones((4, 4), bool)
    assert stroke_agreement(near, white, mask) == 1.0 and stroke_agreement(black, white, mask) == 0.0
    with pytest.raises(GanvasError, match="empty stroke mask"):
        stroke_agreement(white, white, np.zeros((4, 4), bool))
