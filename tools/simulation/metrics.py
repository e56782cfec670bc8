"""Scores of one model on the eval set, and the area under a learning curve (numpy only).

Shapes: ``truth`` and ``pred`` are (n_eval, n_labels) bool, ``proba`` (n_eval, n_labels); column j = label j.
"""

from __future__ import annotations

import numpy as np

from backend.models.calibration import reliability

THRESHOLD = 0.5
"""Multi-label: a label is predicted when its probability is ≥ this (as the served model does)."""


def predictions(proba: np.ndarray, multi_label: bool) -> np.ndarray:
    """(n, n_labels) probabilities → (n, n_labels) bool predictions: arg-max row, or p ≥ THRESHOLD."""
    if multi_label:
        return proba >= THRESHOLD
    out = np.zeros(proba.shape, dtype=bool)
    out[np.arange(len(proba)), proba.argmax(axis=1)] = True
    return out


def f1_scores(truth: np.ndarray, pred: np.ndarray) -> tuple[float, float]:
    """(micro-F1, macro-F1) of (n, n_labels) bool matrices; macro over labels true or predicted at least once.

    0/0 counts as 0 (scikit-learn's ``zero_division=0``). For single-label rows micro-F1 equals accuracy.
    """
    tp = (truth & pred).sum(axis=0)
    wrong = (truth ^ pred).sum(axis=0)
    present = (tp + wrong) > 0
    micro_den = 2 * tp.sum() + wrong.sum()
    micro = float(2 * tp.sum() / micro_den) if micro_den else 0.0
    macro = float((2 * tp[present] / (2 * tp[present] + wrong[present])).mean()) if present.any() else 0.0
    return micro, macro


def scores(proba: np.ndarray, truth: np.ndarray, multi_label: bool) -> tuple[float, float, float]:
    """(main metric, macro-F1, ECE) of ``proba`` against ``truth``; main = accuracy (single) or micro-F1 (multi).

    ECE as tagloop reports it (``backend.models.calibration.reliability``, 10 bins).
    """
    main, macro = f1_scores(truth, predictions(proba, multi_label))
    return main, macro, float(reliability(proba, truth.astype(np.float64), multi_label)["ece"])


def trapezoid_auc(x: list[int], y: list[float]) -> float:
    """Area under y(x) by the trapezoid rule divided by the x range (the value itself for one point)."""
    if len(x) == 1:
        return float(y[0])
    return float(np.trapezoid(y, x) / (x[-1] - x[0]))
