"""Stopping criteria: when more labels stop paying.

References: stabilizing predictions (Bloodgood & Vijay-Shanker 2009, "A Method for Stopping Active Learning
Based on Stabilizing Predictions", CoNLL: stop when Cohen's κ between successive models' predictions on a fixed
stop set stays above 0.99 for k checks); overall uncertainty (Zhu, Wang & Hovy 2008, "Multi-criteria-based
strategy to stop active learning", EMNLP-IJCNLP: stop when the pool's uncertainty falls below a threshold).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray

from strategies import scores
from strategies.base import FloatArray


class StopDecision(NamedTuple):
    """Whether to stop, the value the criterion measured, and the threshold it compared against."""

    stop: bool
    value: float
    threshold: float


def cohens_kappa(a: NDArray[np.int64], b: NDArray[np.int64]) -> float:
    """Cohen's κ between two label vectors of equal length (1.0 when both are constant and equal)."""
    if len(a) != len(b):
        raise ValueError(f"label vectors differ in length: {len(a)} vs {len(b)}")
    if len(a) == 0:
        return 1.0
    labels = np.union1d(a, b)
    observed = float(np.mean(a == b))
    expected = float(sum(np.mean(a == k) * np.mean(b == k) for k in labels))
    if expected >= 1.0:
        return 1.0 if observed == 1.0 else 0.0
    return (observed - expected) / (1.0 - expected)


def stabilizing_predictions(
    history: Sequence[NDArray[np.int64]], *, threshold: float = 0.99, window: int = 3
) -> StopDecision:
    """Stop when κ between each of the last ``window`` pairs of successive predictions is ≥ ``threshold``.

    ``history``: predicted labels on the same stop set, one array per model version, oldest first.
    """
    if len(history) < window + 1:
        return StopDecision(False, float("nan"), threshold)
    kappas = [cohens_kappa(history[i - 1], history[i]) for i in range(len(history) - window, len(history))]
    value = min(kappas)
    return StopDecision(value >= threshold, value, threshold)


def overall_uncertainty(proba: FloatArray, *, threshold: float = 0.1, multi_label: bool = False) -> StopDecision:
    """Stop when the mean uncertainty of the unlabeled pool falls below ``threshold``."""
    pool = np.asarray(proba, dtype=np.float64)
    per_row = scores.mean_label_uncertainty(pool) if multi_label else scores.least_confidence(pool)
    value = float(per_row.mean()) if len(per_row) else 0.0
    return StopDecision(value < threshold, value, threshold)
