"""What both training tiers share: enough-data checks, a head per control, cross-validated metrics."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from backend.config import Settings
from backend.errors import TrainingError
from backend.labelstudio.label_config import ControlSpec, LabelSpec
from backend.models.classifier import TextClassifier, zero_shot_heads
from backend.models.encoder import Encoder
from backend.models.heads import BlendedHead, Head, fit_head
from backend.training.dataset import ControlData
from backend.training.evaluation import (
    MAX_ROWS,
    choose_calibration,
    indicator,
    out_of_fold,
    prior_only_calibration,
    served_out_of_fold,
    subsample,
)

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


def served_head(
    control: ControlSpec, prior: Head, emb: np.ndarray, targets: list[list[str]], *, seed: int, prior_strength: float
) -> tuple[Head, dict[str, Any]]:
    """The head served for one control from its labeled rows (embeddings ``emb`` (n, dim), ``targets[i]`` the labels
    of row i): the ``prior`` blended with a logistic head and calibrated (``evaluation.choose_calibration``), with
    the report recorded in the version's metrics (cross-validated accuracy, blend weight, temperatures, ECE).

    Out-of-fold scores come from at most ``evaluation.MAX_ROWS`` rows (a fixed random subsample); the head from all
    rows.
    """
    labels, multi = control.labels, control.multi_label
    fitted = fit_head(labels, multi, emb, targets, seed=seed) if targets else None
    keep = subsample(len(targets), MAX_ROWS, seed)  # keep the fast tier fast
    cv_emb, cv_targets = emb[keep], [targets[i] for i in keep]
    prior_p = prior.predict_proba(cv_emb)
    if fitted is None or len(cv_targets) < 2:
        calibration, report = prior_only_calibration(prior_p, indicator(labels, cv_targets), multi)
    else:
        oof = out_of_fold(labels, multi, cv_emb, cv_targets, seed=seed)
        calibration, report = choose_calibration(prior_p, oof, multi, prior_strength=prior_strength)
    return BlendedHead(labels, multi, prior, fitted, calibration), report


def fit_heads(
    spec: LabelSpec, data: dict[str, ControlData], encoder: Encoder, embed: Embed, settings: Settings
) -> tuple[dict[str, Head], dict[str, Any]]:
    """Per control, the served head: the zero-shot prior alone where a control has no labels, else
    ``served_head``; with the metrics of each."""
    heads: dict[str, Head] = zero_shot_heads(encoder, spec, settings.zero_shot_temperature)
    metrics: dict[str, Any] = {}
    for name, rows in data.items():
        if not rows.texts:
            continue
        heads[name], metrics[name] = served_head(
            rows.control,
            heads[name],
            embed(rows.texts),
            rows.targets,
            seed=settings.seed,
            prior_strength=settings.prior_strength,
        )
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


def served_cv_accuracy(
    spec: LabelSpec, data: dict[str, ControlData], encoder: Encoder, embed: Embed, settings: Settings
) -> float | None:
    """Mean cross-validated accuracy of the heads ``encoder`` would serve on these labels (single-choice controls;
    None when none can be cross-validated): what the promotion guard compares a new body with."""
    _, metrics = fit_heads(spec, {n: d for n, d in data.items() if not d.control.multi_label}, encoder, embed, settings)
    return mean_cv_accuracy(metrics)


def mean_cv_accuracy(metrics: dict[str, Any]) -> float | None:
    """Mean of the controls' ``cv_accuracy`` (None when no control has one)."""
    values = [m["cv_accuracy"] for m in metrics.values() if isinstance(m, dict) and "cv_accuracy" in m]
    return sum(values) / len(values) if values else None


def control_out_of_fold(
    head: Head, control: ControlSpec, emb: np.ndarray, targets: Sequence[Sequence[str]], settings: Settings
) -> np.ndarray:
    """(n, k) out-of-fold probabilities of ``head``'s procedure on these labeled rows (``emb`` (n, dim)): with the
    served head's zero-shot prior when it has one (``BlendedHead``), so what is judged is what is served."""
    prior = head.prior.predict_proba(emb) if isinstance(head, BlendedHead) else None
    return served_out_of_fold(
        control.labels,
        control.multi_label,
        emb,
        targets,
        prior,
        seed=settings.seed,
        prior_strength=settings.prior_strength,
    )
