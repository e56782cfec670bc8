"""Which classes are harmful, and when a model's probabilities flag a text (pure; no I/O).

A project is moderated when one of its ``<Choices>`` controls has harmful classes: marked in the labeling
config (``harmful="A,B"`` on ``<Choices>``, or ``harmful="true"`` on a ``<Choice>``) or named in the
``harmful_labels`` setting. The first such control is the *moderation control*; its harmful label ``h`` flags
a text when ``p[h] >= threshold[h]``. Thresholds are chosen per version from cross-validated scores
(``thresholds.py``) and stored in the version's metrics under ``review.thresholds``; a label without one
flags at ``DEFAULT_THRESHOLD``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from backend.labelstudio.label_config import ControlSpec, LabelSpec

DEFAULT_THRESHOLD = 0.5


def harmful_labels(control: ControlSpec, named: frozenset[str] = frozenset()) -> tuple[str, ...]:
    """The control's harmful labels (marked in its config or ``named`` in settings), in label order."""
    return tuple(label for label in control.labels if label in control.harmful or label in named)


def moderation_control(spec: LabelSpec, named: frozenset[str] = frozenset()) -> ControlSpec | None:
    """The first control with a harmful label, or None (the project is not moderated)."""
    return next((c for c in spec.controls if harmful_labels(c, named)), None)


def stored_thresholds(metrics: Mapping[str, Any] | None) -> dict[str, float]:
    """``{label: threshold}`` from a version's metrics (labels whose chooser found none are left out)."""
    review = (metrics or {}).get("review")
    table = review.get("thresholds", {}) if isinstance(review, dict) else {}
    return {
        label: float(row["threshold"])
        for label, row in table.items()
        if isinstance(row, dict) and isinstance(row.get("threshold"), int | float)
    }


@dataclass(frozen=True)
class Moderation:
    """A moderation control with the flag thresholds of one version."""

    control: ControlSpec
    harmful: tuple[str, ...]
    thresholds: Mapping[str, float]
    """Per harmful label; missing labels use ``DEFAULT_THRESHOLD``."""

    def threshold(self, label: str) -> float:
        """The flag threshold of a harmful label."""
        return float(self.thresholds.get(label, DEFAULT_THRESHOLD))

    def row(self, proba: Sequence[float] | np.ndarray) -> dict[str, float]:
        """One probability row (control label order) → ``{harmful label: probability}``."""
        return {label: float(proba[self.control.labels.index(label)]) for label in self.harmful}

    def flags(self, by_label: Mapping[str, float]) -> list[str]:
        """Harmful labels whose probability reaches their threshold."""
        return [h for h in self.harmful if float(by_label.get(h, 0.0)) >= self.threshold(h)]

    def harm_score(self, by_label: Mapping[str, float]) -> float:
        """The highest harmful-label probability (what PSI and ``score`` report)."""
        return max((float(by_label.get(h, 0.0)) for h in self.harmful), default=0.0)

    def flag_matrix(self, proba: np.ndarray) -> np.ndarray:
        """(n, n_labels) probabilities → (n,) bool: any harmful label flagged."""
        cols = [self.control.labels.index(h) for h in self.harmful]
        cut = np.array([self.threshold(h) for h in self.harmful])
        return np.asarray((proba[:, cols] >= cut).any(axis=1)) if len(proba) else np.zeros(0, dtype=bool)

    def harm_scores(self, proba: np.ndarray) -> np.ndarray:
        """(n, n_labels) probabilities → (n,) harm scores."""
        cols = [self.control.labels.index(h) for h in self.harmful]
        return proba[:, cols].max(axis=1) if len(proba) else np.zeros(0)


def moderation_for(
    spec: LabelSpec, named: frozenset[str], metrics: Mapping[str, Any] | None = None
) -> Moderation | None:
    """The project's moderation control with the thresholds stored in ``metrics`` (None: not moderated)."""
    control = moderation_control(spec, named)
    if control is None:
        return None
    harmful = harmful_labels(control, named)
    table = stored_thresholds(metrics)
    return Moderation(control, harmful, {h: table[h] for h in harmful if h in table})
