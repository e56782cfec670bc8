"""The served probabilities: a zero-shot prior blended with a fitted head, then temperature-scaled (numpy only).

Shapes: ``prior`` and ``fitted`` are (n, k) probabilities, column j = label j of the control. ``seen`` is a bool
mask of the labels the fitted model can predict, shape (k,) or (n, k) (out-of-fold rows each have their own).

Single choice: the fitted model only *redistributes* the prior's mass among the labels it has seen, so a label it
has not seen yet keeps its prior probability (a logistic head gives it 0), and the blend is
``(1 - w) * prior + w * fitted'``. Multiple choice: per label, ``(1 - w) * prior_j + w * fitted_j`` where the fitted
model has both classes of label j, else ``prior_j``. Calibration is temperature scaling of the log-probabilities
(single choice: one temperature, softmax) or of each label's logit (multiple choice: one temperature per label).
How ``w`` and the temperatures are chosen (out-of-fold, never below zero-shot in CV) is in
``backend.training.evaluation``.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

import numpy as np

EPS = 1e-7
RELIABILITY_BINS = 10


@dataclass(frozen=True)
class Calibration:
    """How a control's served probabilities are made from its prior and its fitted head.

    ``prior_temperature`` rescales the zero-shot prior before blending; ``temperature`` rescales the blend: a
    scalar for a single choice, one per label (shape (k,)) for multiple choices. 1.0 changes nothing.
    """

    weight: float = 0.0
    prior_temperature: float = 1.0
    temperature: np.ndarray = field(default_factory=lambda: np.ones(1))

    def as_json(self) -> dict[str, Any]:
        """Weight and temperatures, rounded, for a version's metrics."""
        temps = np.atleast_1d(self.temperature)
        return {
            "blend_weight": round(float(self.weight), 3),
            "prior_temperature": round(float(self.prior_temperature), 4),
            "temperature": round(float(temps[0]), 4) if temps.size == 1 else [round(float(t), 4) for t in temps],
        }


IDENTITY = Calibration()


def clip(p: np.ndarray) -> np.ndarray:
    """Probabilities kept away from 0 and 1 (logs and logits stay finite)."""
    return np.clip(np.asarray(p, dtype=np.float64), EPS, 1.0 - EPS)


def scale(p: np.ndarray, temperature: float | np.ndarray, multi_label: bool) -> np.ndarray:
    """Temperature scaling: softmax(log p / T) per row, or sigmoid(logit p / T_j) per label. (n, k) → (n, k)."""
    q = clip(p)
    t = np.maximum(np.asarray(temperature, dtype=np.float64), 1e-3)
    if multi_label:
        return 1.0 / (1.0 + np.exp(-(np.log(q) - np.log1p(-q)) / t))
    z = np.log(q) / (t if t.size == 1 else t[0])
    z -= z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def mix(prior: np.ndarray, fitted: np.ndarray, seen: np.ndarray, weight: float, multi_label: bool) -> np.ndarray:
    """``(1 - weight) * prior + weight * fitted`` where labels the fitted model has not seen keep the prior (see the
    module docstring). (n, k) → (n, k)."""
    prior = np.asarray(prior, dtype=np.float64)
    fitted = np.asarray(fitted, dtype=np.float64)
    seen = np.broadcast_to(np.asarray(seen, dtype=bool), prior.shape)
    if multi_label:
        informed = np.where(seen, fitted, prior)
    else:
        mass = np.where(seen, prior, 0.0).sum(axis=1, keepdims=True)  # the prior's mass on the seen labels
        total = np.where(seen, fitted, 0.0).sum(axis=1, keepdims=True)
        share = np.divide(fitted, total, out=np.zeros_like(fitted), where=total > 0)
        informed = np.where(seen, share * mass, prior)
        informed = np.where(total > 0, informed, prior)  # rows with no fitted mass: the prior
    return (1.0 - weight) * prior + weight * informed


def served(
    prior: np.ndarray, fitted: np.ndarray | None, seen: np.ndarray | None, cal: Calibration, multi_label: bool
) -> np.ndarray:
    """The served probabilities (n, k): prior rescaled, blended with the fitted head, rescaled."""
    p0 = scale(prior, cal.prior_temperature, multi_label) if cal.prior_temperature != 1.0 else np.asarray(prior)
    if fitted is None or seen is None or cal.weight == 0.0:
        blended = p0
    else:
        blended = mix(p0, fitted, seen, cal.weight, multi_label)
    return scale(blended, cal.temperature, multi_label)


def nll(p: np.ndarray, y: np.ndarray, multi_label: bool) -> float:
    """Mean negative log-likelihood of the (n, k) indicator ``y`` under ``p`` (per row; summed over labels when
    ``multi_label``)."""
    q = clip(p)
    if multi_label:
        return float(-(y * np.log(q) + (1 - y) * np.log1p(-q)).sum(axis=1).mean())
    return float(-np.log(q[y.astype(bool)]).mean()) if len(q) else 0.0


def accuracy(p: np.ndarray, y: np.ndarray, multi_label: bool, threshold: float = 0.5) -> float:
    """Single choice: share of rows whose arg-max is the true label. Multiple choice: micro-F1 at ``threshold``."""
    if len(p) == 0:
        return 0.0
    if not multi_label:
        return float((p.argmax(axis=1) == y.argmax(axis=1)).mean())
    pred, truth = p >= threshold, y.astype(bool)
    tp = float((pred & truth).sum())
    wrong = float((pred ^ truth).sum())
    return 2 * tp / (2 * tp + wrong) if tp + wrong else 1.0


def reliability(p: np.ndarray, y: np.ndarray, multi_label: bool, bins: int = RELIABILITY_BINS) -> dict[str, Any]:
    """Expected calibration error and its reliability bins.

    Single choice: confidence = top probability, correct = arg-max is the label. Multiple choice: every (row, label)
    probability against whether the label applies. ``y`` is the (n, k) 0/1 indicator.
    """
    if multi_label:
        confidence, correct = np.ravel(p), np.ravel(y).astype(float)
    else:
        confidence, correct = p.max(axis=1), (p.argmax(axis=1) == y.argmax(axis=1)).astype(float)
    edges = np.linspace(0.0, 1.0, bins + 1)
    out, ece = [], 0.0
    for lo, hi in itertools.pairwise(edges):
        inside = (confidence > lo) & (confidence <= hi) if lo > 0 else (confidence >= lo) & (confidence <= hi)
        if inside.any():
            gap = abs(correct[inside].mean() - confidence[inside].mean())
            ece += inside.mean() * gap
            out.append(
                {
                    "lo": round(float(lo), 2),
                    "hi": round(float(hi), 2),
                    "n": int(inside.sum()),
                    "confidence": round(float(confidence[inside].mean()), 4),
                    "accuracy": round(float(correct[inside].mean()), 4),
                }
            )
    return {"ece": round(float(ece), 4), "bins": out}
