"""Out-of-fold evaluation of a control's head on labeled embeddings, and the choice of its calibration.

Every labeled row is scored by a head fitted without it: scikit-learn's ``cross_val_predict`` over
``StratifiedKFold`` / ``KFold`` splits, with the logistic head of ``backend.models.heads.fit_head`` wrapped as an
estimator (``HeadEstimator``) whose predictions are NaN for the labels its fold has not seen; a fold whose training
part lacks a label therefore leaves that label *unseen* for its test rows, exactly as serving treats a label the
head has not seen yet. From these out-of-fold
probabilities ``choose_calibration`` picks the blend weight with the zero-shot prior (highest out-of-fold accuracy,
ties to the lower log-loss; weight 0 is the prior alone, so the choice is never below zero-shot in CV) and the
temperatures (lowest log-loss). The same numbers serve the version's metrics, the review thresholds, label-error
suspects and ``tagloop report``.

Shapes: ``emb`` (n, dim); ``targets[i]`` the labels of row i; probabilities and masks (n, k), column j = label j.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator

from backend.models import calibration as cal
from backend.models.calibration import Calibration
from backend.models.heads import FittedHead, fit_head

FOLDS = 5
MAX_ROWS = 1000
"""Cross-validate on at most this many rows (a fixed random subsample): keeps training-time work bounded."""
WEIGHTS = tuple(round(0.1 * i, 1) for i in range(11))
MIN_ROWS_FOR_TEMPERATURE = 10
"""Fewer labeled rows than this: temperatures stay 1 (a fit on a handful of rows is noise)."""
TEMPERATURE_RANGE = (0.25, 4.0)
MIN_ROWS_PER_LABEL_TEMPERATURE = 5
"""Multiple choice: a label gets its own temperature once it has this many positive and negative rows."""


@dataclass(frozen=True)
class OutOfFold:
    """Out-of-fold probabilities of the fitted head (n, k), which labels each row's head had seen (n, k), and the
    (n, k) 0/1 indicator of the true labels."""

    proba: np.ndarray
    seen: np.ndarray
    truth: np.ndarray


def subsample(n: int, max_rows: int, seed: int) -> np.ndarray:
    """Row positions to cross-validate: all, or ``max_rows`` of them at random (sorted)."""
    if n <= max_rows:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, max_rows, replace=False))


def indicator(labels: Sequence[str], targets: Sequence[Sequence[str]]) -> np.ndarray:
    """(n, k) 0/1 float matrix, column j = ``labels[j]``."""
    index = {label: j for j, label in enumerate(labels)}
    out = np.zeros((len(targets), len(labels)))
    for i, row in enumerate(targets):
        for label in row:
            out[i, index[label]] = 1.0
    return out


def folds(truth: np.ndarray, multi_label: bool, seed: int, n_folds: int = FOLDS) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train, test) row positions: stratified on the label for a single choice when a class can fill the folds."""
    from sklearn.model_selection import KFold, StratifiedKFold

    n = len(truth)
    k = min(n_folds, n)
    if not multi_label:
        y = truth.argmax(axis=1)
        largest = int(np.bincount(y).max())
        if largest >= 2:
            with warnings.catch_warnings():  # small classes are expected with a few labels
                warnings.simplefilter("ignore", UserWarning)
                splitter = StratifiedKFold(min(k, largest), shuffle=True, random_state=seed)
                return list(splitter.split(np.zeros(n), y))
    return list(KFold(k, shuffle=True, random_state=seed).split(np.zeros(n)))


def fresh_fold_accuracy(
    labels: tuple[str, ...],
    train: tuple[np.ndarray, Sequence[Sequence[str]]],
    fresh: tuple[np.ndarray, Sequence[Sequence[str]]],
    *,
    seed: int,
) -> float:
    """Single-choice accuracy on the ``fresh`` rows (embeddings (n, dim), one label each), each row scored by a
    logistic head fitted on every ``train`` row plus the fresh rows of the other folds.

    How the promotion guard compares two bodies on labels that came in while one of them trained. The fresh rows
    were picked by the served model's uncertainty, so a head fitted on ``train`` alone would be near chance on them
    for the served body by construction; letting each body's head learn from the other folds of the same rows
    weakens that selection effect for both alike.
    """
    emb, targets = fresh
    truth = indicator(labels, targets)
    train_emb, train_targets = train
    right = 0
    for fit_rows, test_rows in folds(truth, False, seed):
        head = fit_head(
            labels,
            False,
            np.vstack([train_emb, emb[fit_rows]]),
            [list(t) for t in train_targets] + [list(targets[i]) for i in fit_rows],
            seed=seed,
        )
        if head is not None:
            right += int((head.predict_proba(emb[test_rows]).argmax(axis=1) == truth[test_rows].argmax(axis=1)).sum())
    return right / len(targets)


class HeadEstimator(BaseEstimator):  # type: ignore[misc]
    """``fit_head`` as a scikit-learn estimator over (n, k) 0/1 label indicators, for ``cross_val_predict``.

    ``predict`` gives (n, k) probabilities in the order of ``labels``, NaN for every label the fitted head has not
    seen (all NaN when its rows held fewer than two classes): the fold's head as serving would hold it.
    """

    def __init__(self, labels: tuple[str, ...] = (), multi_label: bool = False, seed: int = 0) -> None:
        self.labels = labels
        self.multi_label = multi_label
        self.seed = seed

    def fit(self, emb: np.ndarray, truth: np.ndarray) -> HeadEstimator:
        """Fit on embeddings and their (n, k) indicator rows."""
        targets = [[self.labels[j] for j in np.flatnonzero(row)] for row in truth]
        self.head_: FittedHead | None = fit_head(self.labels, self.multi_label, emb, targets, seed=self.seed)
        return self

    def predict(self, emb: np.ndarray) -> np.ndarray:
        """(n, k) probabilities, NaN where the head has not seen the label."""
        out = np.full((len(emb), len(self.labels)), np.nan)
        if self.head_ is not None:
            columns = list(self.head_.columns)
            out[:, columns] = self.head_.predict_proba(emb)[:, columns]
        return out


def out_of_fold(
    labels: tuple[str, ...], multi_label: bool, emb: np.ndarray, targets: Sequence[Sequence[str]], *, seed: int
) -> OutOfFold:
    """Each row scored by a logistic head fitted on the other folds (``ValueError`` below 2 rows)."""
    from sklearn.model_selection import cross_val_predict

    n = len(targets)
    if n < 2:
        raise ValueError(f"out_of_fold needs at least 2 labeled rows, got {n}")
    truth = indicator(labels, targets)
    estimator = HeadEstimator(labels, multi_label, seed)
    scored = cross_val_predict(estimator, emb, truth, cv=folds(truth, multi_label, seed))
    seen = ~np.isnan(scored)
    return OutOfFold(np.where(seen, scored, 0.0), seen, truth)


def _fit_temperature(p: np.ndarray, y: np.ndarray, multi_label: bool) -> float:
    """The temperature in ``TEMPERATURE_RANGE`` with the lowest log-loss of ``scale(p, T)`` (1 for few rows)."""
    from scipy.optimize import minimize_scalar

    if len(p) < MIN_ROWS_FOR_TEMPERATURE:
        return 1.0
    lo, hi = np.log(TEMPERATURE_RANGE[0]), np.log(TEMPERATURE_RANGE[1])
    found = minimize_scalar(
        lambda log_t: cal.nll(cal.scale(p, float(np.exp(log_t)), multi_label), y, multi_label),
        bounds=(lo, hi),
        method="bounded",
        options={"xatol": 1e-3},
    )
    return float(np.exp(found.x))


def _label_temperatures(p: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Multiple choice: one temperature per label (a shared one for labels with too few positives or negatives)."""
    shared = _fit_temperature(p, y, True)
    out = np.full(p.shape[1], shared)
    for j in range(p.shape[1]):
        positives = int(y[:, j].sum())
        if min(positives, len(y) - positives) >= MIN_ROWS_PER_LABEL_TEMPERATURE:
            out[j] = _fit_temperature(p[:, [j]], y[:, [j]], True)
    return out


def weight_cap(n: int, prior_strength: float) -> float:
    """The largest blend weight ``n`` labeled rows may give the fitted head: n / (n + prior_strength).

    The zero-shot prior counts as ``prior_strength`` labels. Out-of-fold accuracy alone over-trusts a handful of
    labels, and more so under uncertainty sampling, whose labeled rows are exactly those the prior is unsure of
    (measured in ``docs/benchmarks.md``, "Served model at small label counts").
    """
    return 1.0 if prior_strength <= 0 else n / (n + prior_strength)


def choose_calibration(
    prior: np.ndarray, oof: OutOfFold, multi_label: bool, *, prior_strength: float
) -> tuple[Calibration, dict[str, Any]]:
    """Blend weight and temperatures from out-of-fold scores; the report records them with CV accuracy and ECE.

    ``prior``: (n, k) zero-shot probabilities of the labeled rows; ``oof``: the fitted head's out-of-fold scores.
    The weight is the one of ``WEIGHTS`` up to ``weight_cap`` with the best out-of-fold accuracy (ties: the lower
    log-loss, then the lower weight); 0 (the prior alone) is always a candidate.
    """
    y = oof.truth
    t0 = _fit_temperature(prior, y, multi_label)
    p0 = cal.scale(prior, t0, multi_label)
    cap = weight_cap(len(y), prior_strength)
    scored = []
    for w in (w for w in WEIGHTS if w <= cap + 1e-9):
        blended = cal.mix(p0, oof.proba, oof.seen, w, multi_label)
        scored.append((cal.accuracy(blended, y, multi_label), -cal.nll(blended, y, multi_label), -w))
    weight = -max(scored)[2]
    blended = cal.mix(p0, oof.proba, oof.seen, weight, multi_label)
    temperature = _label_temperatures(blended, y) if multi_label else np.array([_fit_temperature(blended, y, False)])
    chosen = Calibration(weight=weight, prior_temperature=t0, temperature=temperature)
    served = cal.scale(blended, temperature, multi_label)
    uncalibrated = cal.mix(prior, oof.proba, oof.seen, weight, multi_label)
    report = {
        **_report(served, uncalibrated, prior, y, multi_label, chosen),
        "fitted_cv_accuracy": round(cal.accuracy(np.where(oof.seen, oof.proba, 0.0), y, multi_label), 4),
        "weight_cap": round(cap, 3),
    }
    return chosen, report


def _report(
    served: np.ndarray, uncalibrated: np.ndarray, prior: np.ndarray, y: np.ndarray, multi: bool, chosen: Calibration
) -> dict[str, Any]:
    return {
        "n": len(y),
        "metric": "micro_f1" if multi else "accuracy",
        "cv_accuracy": round(cal.accuracy(served, y, multi), 4),
        "zero_shot_cv_accuracy": round(cal.accuracy(prior, y, multi), 4),
        **chosen.as_json(),
        "ece_uncalibrated": cal.reliability(uncalibrated, y, multi)["ece"],
        "ece": cal.reliability(served, y, multi)["ece"],
    }


def prior_only_calibration(prior: np.ndarray, truth: np.ndarray, multi_label: bool) -> tuple[Calibration, dict]:
    """Labels too few for a head (fewer than two classes): the prior alone, rescaled once enough rows exist."""
    t0 = _fit_temperature(prior, truth, multi_label)
    chosen = Calibration(weight=0.0, prior_temperature=t0)
    return chosen, _report(cal.scale(prior, t0, multi_label), prior, prior, truth, multi_label, chosen)


def served_out_of_fold(
    labels: tuple[str, ...],
    multi_label: bool,
    emb: np.ndarray,
    targets: Sequence[Sequence[str]],
    prior: np.ndarray | None,
    *,
    seed: int,
    prior_strength: float,
) -> np.ndarray:
    """(n, k) out-of-fold probabilities of the *served* head: each row's fitted head (trained without it) blended
    with the ``prior`` (n, k) probabilities of the rows and calibrated the way serving does. What thresholds,
    label-error suspects, slice audits and ``tagloop report`` judge. Without a prior: the fitted head's alone."""
    oof = out_of_fold(labels, multi_label, emb, targets, seed=seed)
    if prior is None:
        return np.where(oof.seen, oof.proba, 0.0)
    chosen, _ = choose_calibration(prior, oof, multi_label, prior_strength=prior_strength)
    return cal.served(prior, oof.proba, oof.seen, chosen, multi_label)
