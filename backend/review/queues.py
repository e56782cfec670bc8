"""Routing rules and ordering of the four review queues (pure; no I/O).

- ``false_positive``: the model flagged the text (some harmful label reached its threshold), the human's label
  is not harmful;
- ``false_negative``: the model flagged nothing, the human gives a harmful label;
- ``low_confidence``: a harmful label's probability lies within the band around its threshold;
- ``label_error``: a labeled text whose label the model contradicts surely under cross-validation.

Every item carries a ``margin``: for the first three queues the distance between the deciding probability and
its threshold, for label errors the out-of-fold probability against the given label. Order ``confident``
serves the largest margin first (the most confident wrong flag), ``uncertain`` the smallest.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from backend.review.moderation import Moderation

FALSE_POSITIVE, FALSE_NEGATIVE, LOW_CONFIDENCE, LABEL_ERROR = (
    "false_positive",
    "false_negative",
    "low_confidence",
    "label_error",
)
QUEUES = (FALSE_POSITIVE, FALSE_NEGATIVE, LOW_CONFIDENCE, LABEL_ERROR)
CONFIDENT, UNCERTAIN = "confident", "uncertain"
ORDERS = (CONFIDENT, UNCERTAIN)
DEFAULT_ORDER = {
    FALSE_POSITIVE: CONFIDENT,
    FALSE_NEGATIVE: CONFIDENT,
    LOW_CONFIDENCE: UNCERTAIN,
    LABEL_ERROR: CONFIDENT,
}
T = TypeVar("T")


@dataclass(frozen=True)
class Route:
    """Where a disagreement goes: the queue, the labels in question and the ordering margin."""

    queue: str
    labels: tuple[str, ...]
    """FP: the flagged labels; FN: the human's harmful labels; low confidence: the label near its threshold."""
    margin: float | None
    reason: str


def route_disagreement(
    mod: Moderation, flagged: Sequence[str], human: Sequence[str], by_label: Mapping[str, float] | None = None
) -> Route | None:
    """FP when the model flagged the text and the human gives no harmful label; FN when the model flagged nothing
    and the human gives one. Disagreements between harmful classes (flagged ``Violating``, human says
    ``Potentially Harmful``) are neither: the flag was right.

    ``by_label`` (harmful label → probability at the version that flagged) gives the margin; without it (an
    external report) the margin is None.
    """
    said = [h for h in human if h in mod.harmful]
    shown = list(human) or ["no label"]
    if flagged and not said:
        margin = max(by_label[h] - mod.threshold(h) for h in flagged) if by_label else None
        return Route(FALSE_POSITIVE, tuple(flagged), margin, f"model flagged {list(flagged)}, human said {shown}")
    if said and not flagged:
        margin = max(mod.threshold(h) - by_label[h] for h in said) if by_label else None
        return Route(FALSE_NEGATIVE, tuple(said), margin, f"model flagged nothing, human said {shown}")
    return None


def near_threshold(mod: Moderation, by_label: Mapping[str, float], band: float) -> Route | None:
    """The harmful label closest to its threshold, if within ``band`` of it (either side)."""
    if not mod.harmful:
        return None
    label = min(mod.harmful, key=lambda h: abs(by_label.get(h, 0.0) - mod.threshold(h)))
    p, t = float(by_label.get(label, 0.0)), mod.threshold(label)
    if abs(p - t) > band:
        return None
    side = "flagged" if p >= t else "not flagged"
    return Route(LOW_CONFIDENCE, (label,), abs(p - t), f"{label} {side} at {p:.3f}, threshold {t:.3f}")


def contradiction(labels: Sequence[str], multi_label: bool, given: Sequence[str], proba: np.ndarray) -> float:
    """How surely an out-of-fold probability row (label order) contradicts the ``given`` labels, in [0, 1]:
    single-label, the highest probability of another label; multi-label, the largest |p - y| over labels."""
    y = np.array([1.0 if label in given else 0.0 for label in labels])
    if multi_label:
        return float(np.max(np.abs(proba - y))) if len(y) else 0.0
    others = proba[y == 0]
    return float(others.max()) if len(others) else 0.0


def label_error(
    labels: Sequence[str], multi_label: bool, given: Sequence[str], proba: np.ndarray, confidence: float
) -> Route | None:
    """A label-error route when the out-of-fold row contradicts ``given`` with at least ``confidence``."""
    strength = contradiction(labels, multi_label, given, proba)
    if strength < confidence:
        return None
    if multi_label:
        suggested = tuple(label for label, p in zip(labels, proba, strict=True) if p >= 0.5)
    else:
        suggested = (labels[int(np.argmax(proba))],)
    reason = f"labeled {list(given) or ['no label']}, cross-validated model says {list(suggested) or ['no label']}"
    return Route(LABEL_ERROR, suggested, strength, f"{reason} ({strength:.3f})")


def order_items(items: Sequence[T], margin: Callable[[T], float | None], order: str) -> list[T]:
    """``items`` in queue order (stable; items with no margin last)."""
    if order not in ORDERS:
        raise ValueError(f"order: got {order!r}, expected one of {list(ORDERS)}")
    sign = -1.0 if order == CONFIDENT else 1.0

    def key(item: T) -> tuple[bool, float]:
        m = margin(item)
        return (m is None, sign * m if m is not None else 0.0)

    return sorted(items, key=key)
