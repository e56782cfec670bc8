"""What both training tiers share: enough-data checks, a head per control, cross-validated metrics."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from backend.config import Settings
from backend.errors import TrainingError
from backend.labelstudio.label_config import LabelSpec
from backend.models.classifier import TextClassifier, zero_shot_heads
from backend.models.encoder import Encoder
from backend.models.heads import FittedHead, Head, fit_head
from backend.training.dataset import ControlData

CV_MAX_ROWS = 1000
Embed = Callable[[Sequence[str]], np.ndarray]
"""texts → (n, dim) embeddings (the encoder directly, or through the embedding cache)."""


@dataclass(frozen=True)
class TrainResult:
    """A trained classifier and what to record about it."""

    classifier: TextClassifier
    metrics: dict[str, Any]
    label_counts: dict[str, Any]
    n_train: int
    seconds: float


def primary_control(data: dict[str, ControlData], settings: Settings) -> ControlData:
    """The control with the most labeled rows; ``TrainingError`` if it has fewer than the minimum."""
    primary = max(data.values(), key=lambda d: len(d.texts))
    if len(primary.texts) < settings.min_labels_to_train:
        raise TrainingError(
            f"{len(primary.texts)} labeled rows for <Choices name={primary.control.name!r}>; "
            f"need at least {settings.min_labels_to_train} (min_labels_to_train)"
        )
    return primary


def label_counts(data: dict[str, ControlData]) -> dict[str, Any]:
    """Per control: label → count."""
    return {name: rows.label_counts() for name, rows in data.items()}


def fit_heads(
    spec: LabelSpec, data: dict[str, ControlData], encoder: Encoder, embed: Embed, settings: Settings
) -> tuple[dict[str, Head], dict[str, Any]]:
    """A logistic head per control with labels (zero-shot where a control cannot be fit) and CV metrics."""
    heads: dict[str, Head] = zero_shot_heads(encoder, spec, settings.zero_shot_temperature)
    metrics: dict[str, Any] = {}
    for name, rows in data.items():
        if not rows.texts:
            continue
        emb = embed(rows.texts)
        head = fit_head(rows.control.labels, rows.control.multi_label, emb, rows.targets, seed=settings.seed)
        if head is not None:
            heads[name] = head
            metrics[name] = cv_metrics(rows, emb, settings.seed)
    return heads, metrics


def train_fast(
    spec: LabelSpec, data: dict[str, ControlData], encoder: Encoder, embed: Embed, settings: Settings, version: str
) -> TrainResult:
    """Fast tier: refit the heads on (cached) embeddings of the served body; no body training."""
    started = time.perf_counter()
    primary = primary_control(data, settings)
    heads, metrics = fit_heads(spec, data, encoder, embed, settings)
    classifier = TextClassifier(version=version, encoder=encoder, heads=heads)
    return TrainResult(classifier, metrics, label_counts(data), len(primary.texts), time.perf_counter() - started)


def cv_metrics(rows: ControlData, emb: np.ndarray, seed: int) -> dict[str, Any]:
    """Cross-validated accuracy (single) or micro-F1 (multi) of the head on the labeled rows."""
    from sklearn.model_selection import StratifiedKFold

    if rows.control.multi_label or len(rows.texts) < 6:
        return {"n": len(rows.texts)}
    y = np.array([rows.control.labels.index(t[0]) for t in rows.targets])
    if len(y) > CV_MAX_ROWS:  # keep the fast tier fast: CV on a fixed random subsample
        keep = np.random.default_rng(seed).choice(len(y), CV_MAX_ROWS, replace=False)
        emb, y = emb[keep], y[keep]
        rows = ControlData(rows.control, [rows.texts[i] for i in keep], [rows.targets[i] for i in keep])
    folds = min(5, int(np.bincount(y).max(initial=0)), *(int(c) for c in np.bincount(y) if c > 0))
    if folds < 2:
        return {"n": len(rows.texts)}
    correct = 0
    for train, test in StratifiedKFold(folds, shuffle=True, random_state=seed).split(emb, y):
        head = fit_head(rows.control.labels, False, emb[train], [rows.targets[i] for i in train], seed=seed)
        if isinstance(head, FittedHead):
            correct += int((head.predict_proba(emb[test]).argmax(1) == y[test]).sum())
    return {"n": len(y), "cv_accuracy": round(correct / len(y), 4), "cv_folds": folds}
