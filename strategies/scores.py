"""Pure scores over probabilities: (n, k) → (n,), higher = more informative.

Single-label rows sum to 1. Multi-label columns are independent per-label probabilities.
References: least confidence and margin (Settles, "Active Learning Literature Survey", 2009, §3.1);
entropy (Shannon; Settles 2009 eq. 3.3); mean/min label confidence for multi-label (e.g. Esuli & Sebastiani
2009, "Active learning strategies for multi-label text classification"); label cardinality inconsistency
(Li & Guo 2013, "Active learning with multi-label SVM classification", the "LCI" measure).
"""

from __future__ import annotations

import numpy as np

from strategies.base import FloatArray

EPS = 1e-12


def least_confidence(proba: FloatArray) -> FloatArray:
    """1 − max probability."""
    return np.asarray(1.0 - proba.max(axis=1), dtype=np.float64)


def margin(proba: FloatArray) -> FloatArray:
    """1 − (top probability − second probability): small margins score high (breaking ties)."""
    if proba.shape[1] < 2:
        return 1.0 - proba[:, 0]
    part = np.partition(proba, -2, axis=1)
    return 1.0 - (part[:, -1] - part[:, -2])


def entropy(proba: FloatArray) -> FloatArray:
    """Shannon entropy (nats) of each row."""
    p = np.clip(proba, EPS, 1.0)
    return np.asarray(-(p * np.log(p)).sum(axis=1), dtype=np.float64)


def label_certainty(proba: FloatArray) -> FloatArray:
    """Multi-label, per label: |2p − 1| in [0, 1], 1 = certain. Shape (n, k)."""
    return np.asarray(np.abs(2.0 * proba - 1.0), dtype=np.float64)


def mean_label_uncertainty(proba: FloatArray) -> FloatArray:
    """Multi-label: 1 − mean over labels of |2p − 1|."""
    return np.asarray(1.0 - label_certainty(proba).mean(axis=1), dtype=np.float64)


def max_label_uncertainty(proba: FloatArray) -> FloatArray:
    """Multi-label: 1 − min over labels of |2p − 1| (the least certain label decides)."""
    return np.asarray(1.0 - label_certainty(proba).min(axis=1), dtype=np.float64)


def cardinality_inconsistency(proba: FloatArray, mean_cardinality: float, threshold: float = 0.5) -> FloatArray:
    """Multi-label: |predicted label count − mean label count of the labeled set| (Li & Guo's LCI)."""
    return np.asarray(np.abs((proba >= threshold).sum(axis=1) - mean_cardinality), dtype=np.float64)


# --- certainties: what Label Studio shows as a prediction's score (higher = more certain, in [0, 1]) ----------


def top_probability(proba: FloatArray) -> FloatArray:
    """Single-label certainty of least confidence: the top probability."""
    return np.asarray(proba.max(axis=1), dtype=np.float64)


def margin_certainty(proba: FloatArray) -> FloatArray:
    """Certainty of margin sampling: top probability − second probability."""
    if proba.shape[1] < 2:
        return np.asarray(proba[:, 0], dtype=np.float64)
    part = np.partition(proba, -2, axis=1)
    return np.asarray(part[:, -1] - part[:, -2], dtype=np.float64)


def entropy_certainty(proba: FloatArray) -> FloatArray:
    """Certainty of entropy sampling: 1 − entropy / log(k) (1 for a one-hot row, 0 for a uniform one)."""
    k = proba.shape[1]
    if k < 2:
        return np.ones(proba.shape[0])
    return np.asarray(np.clip(1.0 - entropy(proba) / np.log(k), 0.0, 1.0), dtype=np.float64)


def mean_label_certainty(proba: FloatArray) -> FloatArray:
    """Multi-label certainty: mean over labels of |2p − 1|."""
    return np.asarray(label_certainty(proba).mean(axis=1), dtype=np.float64)


def min_label_certainty(proba: FloatArray) -> FloatArray:
    """Multi-label certainty of the least certain label: min over labels of |2p − 1|."""
    return np.asarray(label_certainty(proba).min(axis=1), dtype=np.float64)
