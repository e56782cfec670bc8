"""SetFit training: contrastive fine-tuning of the body, then a logistic head per control.

The body is fine-tuned once, on the control with the most labeled rows (SetFit's pair sampling is defined
for one target); every control then gets its own logistic-regression head on the fine-tuned embeddings.
A control whose labels have fewer than two distinct values keeps its zero-shot head.
"""

from __future__ import annotations

import logging
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from backend.config import Settings
from backend.errors import TrainingError
from backend.labelstudio.label_config import LabelSpec
from backend.models.classifier import TextClassifier, zero_shot_heads
from backend.models.encoder import Encoder, offline
from backend.models.heads import FittedHead, Head, fit_head
from backend.training.dataset import ControlData

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainResult:
    """A trained classifier and what to record about it."""

    classifier: TextClassifier
    metrics: dict[str, Any]
    label_counts: dict[str, Any]
    n_train: int
    seconds: float


def train_setfit(
    spec: LabelSpec, data: dict[str, ControlData], base: Path, settings: Settings, version: str
) -> TrainResult:
    """Fine-tune a copy of the body at ``base`` and fit heads; raises ``TrainingError`` if nothing to learn."""
    started = time.perf_counter()
    primary = max(data.values(), key=lambda d: len(d.texts))
    if len(primary.texts) < settings.min_labels_to_train:
        raise TrainingError(
            f"{len(primary.texts)} labeled rows for <Choices name={primary.control.name!r}>; "
            f"need at least {settings.min_labels_to_train} (min_labels_to_train)"
        )
    encoder = Encoder.load(base, max_seq_length=settings.max_seq_length, batch_size=settings.predict_batch_size)
    if settings.setfit_num_iterations > 0 and settings.setfit_max_steps > 0:
        _fine_tune_body(encoder, primary, settings)
    heads: dict[str, Head] = zero_shot_heads(encoder, spec, settings.zero_shot_temperature)
    metrics: dict[str, Any] = {}
    for name, rows in data.items():
        if not rows.texts:
            continue
        emb = encoder.encode(rows.texts)
        head = fit_head(rows.control.labels, rows.control.multi_label, emb, rows.targets, seed=settings.seed)
        if head is not None:
            heads[name] = head
            metrics[name] = _cv_metrics(rows, emb, settings.seed)
    classifier = TextClassifier(version=version, encoder=encoder, heads=heads)
    counts = {name: rows.label_counts() for name, rows in data.items()}
    return TrainResult(classifier, metrics, counts, len(primary.texts), time.perf_counter() - started)


def _fine_tune_body(encoder: Encoder, rows: ControlData, settings: Settings) -> None:
    offline()
    from datasets import Dataset
    from setfit import SetFitModel, Trainer, TrainingArguments

    control = rows.control
    if control.multi_label:
        y: list[Any] = [[int(label in t) for label in control.labels] for t in rows.targets]
        model = SetFitModel(model_body=encoder.body, multi_target_strategy="one-vs-rest")
    else:
        y = [control.labels.index(t[0]) for t in rows.targets]
        if len(set(y)) < 2:
            log.info("body fine-tuning skipped: one distinct label in %s", control.name)
            return
        model = SetFitModel(model_body=encoder.body)
    with tempfile.TemporaryDirectory(prefix="tagloop-setfit-") as out:
        args = TrainingArguments(
            output_dir=out,
            batch_size=settings.setfit_batch_size,
            num_epochs=1,
            num_iterations=settings.setfit_num_iterations,
            max_steps=settings.setfit_max_steps,
            seed=settings.seed,
            report_to="none",
            show_progress_bar=False,
            save_strategy="no",
            end_to_end=False,
        )
        trainer = Trainer(model=model, args=args, train_dataset=Dataset.from_dict({"text": rows.texts, "label": y}))
        trainer.train_embeddings(*trainer.dataset_to_parameters(trainer.train_dataset), args=args)
    encoder.body = model.model_body


def _cv_metrics(rows: ControlData, emb: np.ndarray, seed: int) -> dict[str, Any]:
    """Cross-validated accuracy (single) or micro-F1 (multi) of the head on the labeled rows."""
    from sklearn.model_selection import StratifiedKFold

    if rows.control.multi_label or len(rows.texts) < 6:
        return {"n": len(rows.texts)}
    y = np.array([rows.control.labels.index(t[0]) for t in rows.targets])
    folds = min(5, int(np.bincount(y).max(initial=0)), *(int(c) for c in np.bincount(y) if c > 0))
    if folds < 2:
        return {"n": len(rows.texts)}
    correct = 0
    for train, test in StratifiedKFold(folds, shuffle=True, random_state=seed).split(emb, y):
        head = fit_head(rows.control.labels, False, emb[train], [rows.targets[i] for i in train], seed=seed)
        if isinstance(head, FittedHead):
            correct += int((head.predict_proba(emb[test]).argmax(1) == y[test]).sum())
    return {"n": len(rows.texts), "cv_accuracy": round(correct / len(y), 4), "cv_folds": folds}
