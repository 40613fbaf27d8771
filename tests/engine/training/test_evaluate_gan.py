import json

import numpy as np
import pytest
import torch
from PIL import Image

from engine.errors import CheckpointError, GanvasError
from engine.models.checkpoint import save_generator
from engine.training.evaluate_gan import (
    ClassifierConfig,
    check_classifier_fits,
    contact_sheet,
    feature_statistics,
    frechet_distance,
    frechet_distance_features,
    load_classifier,
    main,
    parametric_data,
    prediction_statistics,
    save_classifier,
    train_classifier,
)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def random_covariance(rng, dim):
    a = rng.normal(size=(dim, dim))
    return a @ a.T / dim + 0.1 * np.eye(dim)


# ---------------------------------------------------------------- Fréchet distance


def test_fd_of_a_set_with_itself_is_zero_and_a_shift_adds_its_square():
    x = np.random.default_rng(0).normal(size=(3000, 32)) @ np.random.default_rng(1).normal(size=(32, 32))
    assert abs(frechet_distance_features(x, x)) < 1e-6 * np.trace(np.cov(x, rowvar=False))
    shift = np.linspace(-1, 1, 32)
    assert frechet_distance_features(x, x + shift) == pytest.approx(np.square(shift).sum(), rel=1e-6)


def test_fd_matches_the_closed_form_for_non_commuting_2x2_covariances():
    # For 2 x 2 PSD matrices tr(sqrt(M)) = sqrt(tr M + 2 sqrt(det M)), with M similar to S1 S2.
    s1 = np.array([[2.0, 0.8], [0.8, 1.0]])
    s2 = np.array([[0.5, -0.3], [-0.3, 1.5]])
    assert not np.allclose(s1 @ s2, s2 @ s1)
    mu1, mu2 = np.array([0.0, 1.0]), np.array([1.0, -1.0])
    trace_root = np.sqrt(np.trace(s1 @ s2) + 2 * np.sqrt(np.linalg.det(s1) * np.linalg.det(s2)))
    expected = 1.0 + 4.0 + np.trace(s1) + np.trace(s2) - 2 * trace_root
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-10)


def test_fd_matches_the_closed_form_for_diagonal_gaussians_and_their_samples():
    a, b = np.array([1.0, 4.0, 0.25, 2.25]), np.array([4.0, 1.0, 1.0, 2.25])
    mu = np.array([0.5, 0.0, -0.5, 2.0])
    expected = np.square(mu).sum() + np.square(np.sqrt(a) - np.sqrt(b)).sum()  # 4.5 + (1 + 1 + 0.25 + 0)
    assert expected == pytest.approx(6.75)
    assert frechet_distance(np.zeros(4), np.diag(a), mu, np.diag(b)) == pytest.approx(expected, rel=1e-10)
    rng = np.random.default_rng(2)
    x = rng.normal(size=(40000, 4)) * np.sqrt(a)
    y = rng.normal(size=(40000, 4)) * np.sqrt(b) + mu
    assert frechet_distance_features(x, y) == pytest.approx(expected, abs=0.1)


def test_fd_is_symmetric_and_positive():
    rng = np.random.default_rng(3)
    s1, s2 = random_covariance(rng, 12), random_covariance(rng, 12)
    mu1, mu2 = rng.normal(size=12), rng.normal(size=12)
    forward, backward = frechet_distance(mu1, s1, mu2, s2), frechet_distance(mu2, s2, mu1, s1)
    assert forward > 0.5 and forward == pytest.approx(backward, rel=1e-9)


def test_fd_rejects_mismatched_shapes():
    with pytest.raises(GanvasError, match="Got:"):
        frechet_distance_features(np.zeros((10, 3)), np.zeros((10, 4)))
    with pytest.raises(GanvasError, match="Got:"):
        feature_statistics(np.zeros((1, 3)))


# ---------------------------------------------------------------- per-attribute statistics


def test_prediction_statistics_by_hand():
    probs = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.5, 0.5, 0.0], [0.25, 0.25, 0.5]])
    # argmax predictions: 0, 1, 0 (first of a tie), 2 -> shares (1/2, 1/4, 1/4); labels: (1/4, 1/4, 1/2)
    stats = prediction_statistics(probs, np.array([0, 1, 2, 2]))
    assert stats["confidence"] == pytest.approx((1 + 1 + 0.5 + 0.5) / 4)
    assert stats["entropy_bits"] == pytest.approx((0 + 0 + 1 + 1.5) / 4)
    assert stats["tv"] == pytest.approx(0.25)


def test_contact_sheet_tiles_row_by_row():
    images = np.arange(5, dtype=np.uint8)[:, None, None, None] * np.ones((1, 2, 3, 3), np.uint8)
    sheet = contact_sheet(images, columns=3)
    assert sheet.shape == (4, 9, 3)
    assert sheet[0, 3, 0] == 1 and sheet[2, 0, 0] == 3 and sheet[2, 6, 0] == 255  # blank cell is white


# ---------------------------------------------------------------- classifier


@pytest.fixture(scope="module")
def faces():
    torch.manual_seed(0)
    return parametric_data(900, 32, seed=1)


def test_classifier_learns_parametric_faces_better_than_chance(faces, tmp_path):
    cfg = ClassifierConfig(width=8, features=32, epochs=4, batch=32, lr=4e-3, holdout=300, train_count=None, shift=1)
    trained = train_classifier(faces, cfg)
    assert set(trained.accuracy) == {"glasses", "smile", "skin_tone", "hair_colour", "hair_length", "background_hue"}
    held = np.sort(trained.heldout)
    for name in ("glasses", "skin_tone", "background_hue"):
        chance = np.bincount(faces.labels[name][held]).max() / len(held)
        assert trained.accuracy[name] > chance + 0.15, (name, trained.accuracy[name], chance)
    # A saved classifier reloads to the same predictions and refuses another data set.
    path = save_classifier(trained, tmp_path / "classifier.pt")
    again = load_classifier(path)
    x = torch.from_numpy(faces.images[:8]).permute(0, 3, 1, 2).float() / 127.5 - 1
    assert torch.allclose(trained.net(x)["smile"], again.net(x)["smile"])
    assert np.array_equal(again.heldout, trained.heldout) and again.accuracy == trained.accuracy
    with pytest.raises(CheckpointError, match="--train-classifier"):
        check_classifier_fits(again, parametric_data(50, 32), str(path))


def test_load_classifier_rejects_other_files(tmp_path):
    path = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(3)}, path)
    with pytest.raises(CheckpointError, match="not a GANvas attribute classifier"):
        load_classifier(path)


# ---------------------------------------------------------------- end to end


def flat(tree, prefix=""):
    if isinstance(tree, dict):
        return {k: v for key, sub in tree.items() for k, v in flat(sub, f"{prefix}/{key}").items()}
    return {prefix: tree}


def tiny_generator_file(tmp_path):
    from engine.models.stylegan2 import Generator

    torch.manual_seed(0)
    G = Generator(z_dim=16, c_dim=0, w_dim=16, img_resolution=16, img_channels=3, mapping_kwargs={"num_layers": 1},
                  synthesis_kwargs={"channel_base": 128, "channel_max": 16, "num_fp16_res": 0, "conv_clamp": None})
    with torch.no_grad():
        G.mapping.w_avg.normal_()  # a truncation centre away from 0, so psi 0.7 changes the samples
    path = tmp_path / "tiny.safetensors"
    save_generator(G, path, extra_metadata={"training": {"kimg": 0.1}})
    return path


def test_smoke_end_to_end_writes_report_and_sheets_then_reuses_the_classifier(tmp_path):
    model = tiny_generator_file(tmp_path)
    args = ["--smoke", "--model", str(model), "--classifier", str(tmp_path / "cls.pt"), "--psi", "1", "0.7"]
    assert main([*args, "--out", str(tmp_path / "q.json"), "--sheets", str(tmp_path / "sheets")]) == 0
    report = json.loads((tmp_path / "q.json").read_text())
    assert report["count"] == 16 and report["model_training"]["kimg"] == 0.1
    fd = report["fd"]
    assert fd["real_vs_real"] >= 0 and set(fd["generated_vs_real"]) == {"1", "0.7"}
    assert all(np.isfinite(v) and v >= 0 for v in fd["generated_vs_real"].values())
    glasses = report["attributes"]["glasses"]
    assert 0 <= glasses["accuracy_real"] <= 1 and 0.5 <= glasses["generated"]["0.7"]["confidence"] <= 1
    assert "| generated (psi=0.7) vs real A |" in (tmp_path / "q.md").read_text()
    sheets = [np.asarray(Image.open(tmp_path / "sheets" / f"house-gan-samples-psi{p}.png")) for p in ("1", "0.7")]
    assert sheets[0].shape == sheets[1].shape == (8 * 16, 8 * 16, 3)
    assert not np.array_equal(sheets[0], sheets[1])
    # The second run loads the saved classifier (no retraining) and reproduces the figures.
    assert main([*args, "--out", str(tmp_path / "again.json")]) == 0
    again = json.loads((tmp_path / "again.json").read_text())
    assert "train_classifier" not in again["seconds"] and "train_classifier" in report["seconds"]
    assert flat(again["fd"]) == pytest.approx(flat(report["fd"]))
    assert flat(again["attributes"]) == pytest.approx(flat(report["attributes"]))
    # Another seed trains another classifier (the ones that fit directions are not the judge).
    assert main([*args, "--train-classifier", "--classifier-seed", "1", "--out", str(tmp_path / "other.json")]) == 0
    other = json.loads((tmp_path / "other.json").read_text())
    assert other["classifier"]["config"]["seed"] == 1 and report["classifier"]["config"]["seed"] == 0
    assert flat(other["fd"]) != pytest.approx(flat(report["fd"]))


def test_command_line_reports_a_count_too_large_for_the_held_out_set(tmp_path):
    model = tiny_generator_file(tmp_path)
    assert main(["--smoke", "--model", str(model), "--classifier", str(tmp_path / "c.pt"),
                 "--out", str(tmp_path / "q.json")]) == 0
    assert main(["--smoke", "--model", str(model), "--classifier", str(tmp_path / "c.pt"), "--count", "40",
                 "--out", str(tmp_path / "big.json")]) == 1
    assert not (tmp_path / "big.json").exists()
