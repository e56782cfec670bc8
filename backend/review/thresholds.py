"""Choose a flag threshold per harmful label from cross-validated scores (pure numpy).

A text is flagged for label ``h`` when its score ``p[h] >= threshold``. For a target precision the chooser takes
the lowest threshold whose precision on the scored rows reaches the target (so recall is as high as the target
allows); for a target FP rate, the lowest threshold whose FP rate (flagged negatives / negatives) stays at or
below it. Precision and FP rate are judged by their Wilson bounds (``z`` = 1.645: one-sided 95 %), not the
point estimates: otherwise the top few scores, all positive by luck, "reach" any precision, and on rare labels
that threshold flags almost nothing right on new data (measured on jigsaw_toxic, see
``tools/experiments/review_thresholds.py``).
The threshold is put halfway between the last flagged score and the next lower one. When no threshold meets the
target, the one with the best bound (ties: the lowest) is returned with ``met=False``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

MIN_POSITIVES = 5
"""Fewer positive (or negative) rows than this: no threshold is chosen (the default applies)."""
Z = 1.645
"""Wilson bound width: one-sided 95 %."""


@dataclass(frozen=True)
class ThresholdChoice:
    """A chosen threshold and what it achieves on the rows it was chosen on."""

    threshold: float | None
    target: str
    """``precision>=0.9`` or ``fp_rate<=0.05``."""
    met: bool
    precision: float
    recall: float
    fp_rate: float
    flagged: int
    bound: float
    """Wilson lower bound of the precision (precision target) or upper bound of the FP rate (FP-rate target)."""
    n_positive: int
    n_negative: int
    note: str = ""

    def as_json(self) -> dict[str, Any]:
        """Rounded for the version's metrics."""
        return {k: round(v, 4) if isinstance(v, float) else v for k, v in asdict(self).items()}


def rates_at(scores: np.ndarray, positive: np.ndarray, threshold: float) -> tuple[float, float, float, int]:
    """(precision, recall, FP rate, flagged count) of flagging ``scores >= threshold``; scores, positive: (n,)."""
    flag = scores >= threshold
    tp, fp = int((flag & positive).sum()), int((flag & ~positive).sum())
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    precision = tp / (tp + fp) if tp + fp else 1.0
    return precision, tp / n_pos if n_pos else 0.0, fp / n_neg if n_neg else 0.0, tp + fp


def wilson_bounds(successes: np.ndarray, trials: np.ndarray, z: float) -> tuple[np.ndarray, np.ndarray]:
    """(lower, upper) Wilson score bounds of the proportions ``successes / trials`` (elementwise)."""
    n = np.maximum(np.asarray(trials, dtype=float), 1.0)
    p = np.asarray(successes, dtype=float) / n
    centre = p + z * z / (2 * n)
    spread = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (centre - spread) / (1 + z * z / n), (centre + spread) / (1 + z * z / n)


def choose_threshold(
    scores: np.ndarray,
    positive: np.ndarray,
    *,
    target_precision: float | None = None,
    max_fp_rate: float | None = None,
    min_positives: int = MIN_POSITIVES,
    z: float = Z,
) -> ThresholdChoice:
    """The flag threshold for one label. ``scores``: (n,) out-of-fold probabilities of the label; ``positive``:
    (n,) bool, the label applies. Give exactly one of ``target_precision`` and ``max_fp_rate``; ``z = 0`` judges
    the point estimates."""
    if (target_precision is None) == (max_fp_rate is None):
        raise ValueError("give exactly one of target_precision and max_fp_rate")
    scores, positive = np.asarray(scores, dtype=float), np.asarray(positive, dtype=bool)
    if scores.shape != positive.shape or scores.ndim != 1:
        raise ValueError(f"scores {scores.shape} and positive {positive.shape} must be equal 1-d shapes")
    target = f"precision>={target_precision}" if target_precision is not None else f"fp_rate<={max_fp_rate}"
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos < min_positives or n_neg < min_positives:
        note = f"{n_pos} positive and {n_neg} negative rows; at least {min_positives} of each are needed"
        return ThresholdChoice(None, target, False, 0.0, 0.0, 0.0, 0, 0.0, n_pos, n_neg, note)
    cuts, tp, fp = _curve(scores, positive)
    if target_precision is not None:
        bound = wilson_bounds(tp, tp + fp, z)[0]
        ok, best_first = bound >= target_precision, np.flatnonzero(bound == bound.max())
    else:
        bound = wilson_bounds(fp, np.full(len(fp), n_neg), z)[1]
        ok, best_first = bound <= float(max_fp_rate or 0.0), np.flatnonzero(bound == bound.min())
    met = bool(ok.any())
    best = int(np.flatnonzero(ok).max()) if met else int(best_first.max())
    threshold = _between(cuts, best)
    p, r, f, flagged = rates_at(scores, positive, threshold)
    return ThresholdChoice(threshold, target, met, p, r, f, flagged, float(bound[best]), n_pos, n_neg)


def _curve(scores: np.ndarray, positive: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct scores high → low, and the true and false positives of flagging at or above each."""
    order = np.argsort(-scores, kind="stable")
    s, y = scores[order], positive[order]
    last = np.r_[np.flatnonzero(np.diff(s) != 0), len(s) - 1]  # last row of each run of equal scores
    return s[last], np.cumsum(y)[last], np.cumsum(~y)[last]


def _between(cuts: np.ndarray, i: int) -> float:
    """Halfway between distinct score ``cuts[i]`` and the next lower one (so a cut generalises to new scores)."""
    lower = cuts[i + 1] if i + 1 < len(cuts) else max(0.0, cuts[i] - 1e-6)
    return float((cuts[i] + lower) / 2)
