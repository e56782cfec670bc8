"""The served probabilities: blend of the zero-shot prior with the fitted head, weight chosen out of fold, calibrated."""

from __future__ import annotations

import numpy as np
import pytest

from backend.models import calibration as cal
from backend.models.calibration import Calibration
from backend.training.evaluation import OutOfFold, choose_calibration, out_of_fold, weight_cap

PRIOR = np.array([[0.5, 0.3, 0.2], [0.1, 0.1, 0.8]])
FITTED = np.array([[0.0, 0.9, 0.1], [0.0, 0.2, 0.8]])  # a head that has seen labels 1 and 2 only


def test_a_label_the_head_has_not_seen_keeps_its_prior_mass() -> None:
    seen = np.array([False, True, True])
    mixed = cal.mix(PRIOR, FITTED, seen, 1.0, False)
    np.testing.assert_allclose(mixed[:, 0], PRIOR[:, 0])  # unseen label 0: its prior probability, not 0
    np.testing.assert_allclose(mixed[0, 1:], [0.5 * 0.9, 0.5 * 0.1])  # the seen labels share the prior's 0.5
    np.testing.assert_allclose(mixed.sum(axis=1), 1.0)
    np.testing.assert_allclose(cal.mix(PRIOR, FITTED, seen, 0.0, False), PRIOR)


def test_multi_label_blend_is_per_label_and_unseen_labels_keep_the_prior() -> None:
    prior, fitted = np.array([[0.2, 0.9]]), np.array([[0.8, 0.0]])
    mixed = cal.mix(prior, fitted, np.array([True, False]), 0.5, True)
    np.testing.assert_allclose(mixed, [[0.5, 0.9]])


def test_temperature_keeps_the_arg_max_and_sharpens_or_flattens() -> None:
    sharp, flat = cal.scale(PRIOR, 0.5, False), cal.scale(PRIOR, 2.0, False)
    assert (sharp.argmax(1) == PRIOR.argmax(1)).all() and (flat.argmax(1) == PRIOR.argmax(1)).all()
    assert sharp.max() > PRIOR.max() > flat.max()
    np.testing.assert_allclose(cal.scale(PRIOR, 1.0, False), PRIOR, atol=1e-6)
    per_label = cal.scale(np.array([[0.9, 0.9]]), np.array([1.0, 4.0]), True)
    assert per_label[0, 0] == pytest.approx(0.9, abs=1e-6) and 0.5 < per_label[0, 1] < 0.9


def test_weight_cap_counts_the_prior_as_labels() -> None:
    assert weight_cap(0, 20) == 0 and weight_cap(20, 20) == 0.5 and weight_cap(180, 20) == 0.9
    assert weight_cap(5, 0) == 1.0


def _two_clusters(n: int, rng: np.random.Generator) -> tuple[np.ndarray, list[list[str]]]:
    emb = np.vstack([rng.normal(1, 0.5, (n, 8)), rng.normal(-1, 0.5, (n, 8))])
    return emb, [["a"]] * n + [["b"]] * n


def test_a_good_head_gets_weight_and_the_choice_is_never_below_zero_shot_in_cv() -> None:
    rng = np.random.default_rng(0)
    emb, targets = _two_clusters(40, rng)
    oof = out_of_fold(("a", "b"), False, emb, targets, seed=0)
    useless_prior = np.full((80, 2), 0.5) + rng.normal(0, 0.01, (80, 2))
    chosen, report = choose_calibration(useless_prior, oof, False, prior_strength=20)
    assert chosen.weight == pytest.approx(0.8)  # the cap at 80 labels
    assert report["cv_accuracy"] >= report["zero_shot_cv_accuracy"] and report["cv_accuracy"] > 0.9
    assert report["weight_cap"] == pytest.approx(0.8) and 0 <= report["ece"] <= 1


def test_a_useless_head_gets_no_weight() -> None:
    rng = np.random.default_rng(1)
    n = 40
    truth = np.eye(2)[rng.integers(0, 2, n)]
    good_prior = np.clip(truth * 0.8 + 0.1, 0, 1)  # always right, moderately sure
    noise = rng.random((n, 2))
    oof = OutOfFold(noise / noise.sum(1, keepdims=True), np.ones((n, 2), dtype=bool), truth)
    chosen, report = choose_calibration(good_prior, oof, False, prior_strength=0)
    assert report["cv_accuracy"] == report["zero_shot_cv_accuracy"] == 1.0
    assert chosen.weight <= 0.4  # any weight that keeps every row right; the lowest log-loss among them


def test_served_probabilities_use_the_prior_temperature_then_the_blend() -> None:
    chosen = Calibration(weight=0.5, prior_temperature=2.0, temperature=np.array([1.0]))
    seen = np.array([True, True, True])
    expected = cal.mix(cal.scale(PRIOR, 2.0, False), FITTED, seen, 0.5, False)
    np.testing.assert_allclose(cal.served(PRIOR, FITTED, seen, chosen, False), expected, atol=1e-6)


def test_reliability_is_zero_for_a_calibrated_model_and_large_for_an_overconfident_one() -> None:
    truth = np.eye(2)[[0, 1, 0, 1]]
    assert cal.reliability(truth, truth, False)["ece"] == 0.0
    wrong = np.eye(2)[[1, 0, 1, 0]] * 0.98 + 0.01
    assert cal.reliability(wrong, truth, False)["ece"] == pytest.approx(0.99)
