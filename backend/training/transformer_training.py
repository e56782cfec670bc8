"""The transformer slow tier: full fine-tuning of a local checkpoint with ``AutoModelForSequenceClassification``.

One control (the one with the most labeled rows) is fine-tuned end to end: class-weighted cross-entropy for a
single choice (inverse label frequency, so a rare class is not drowned by a common one), BCE-with-logits for
multiple choices (positive weight neg/pos per label, clipped to [1, 10]). A stratified validation split of
``transformer_valid_fraction`` drives early stopping (``transformer_patience`` epochs without improvement) and
the best epoch's weights are restored. Other controls get logistic heads on the fine-tuned body's embeddings.
"""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from backend.config import Settings
from backend.jobs.yielding import Pause, pause_points
from backend.labelstudio.label_config import LabelSpec
from backend.models.classifier import TextClassifier
from backend.models.device import resolve_device
from backend.models.encoder import Encoder, offline
from backend.models.heads import fit_head
from backend.models.sequence import TransformerClassifier, mean_pooling_encoder
from backend.training.dataset import ControlData
from backend.training.fitting import Embed, TrainResult, fit_heads, label_counts, primary_control

log = logging.getLogger(__name__)
Progress = Callable[[float, str], None]
MAX_POS_WEIGHT = 10.0


@dataclass
class FineTuneReport:
    """What a fine-tuning run did (recorded in the version's metrics)."""

    epochs_run: int = 0
    best_epoch: int = 0
    stopped_early: bool = False
    n_train: int = 0
    n_valid: int = 0
    valid_metric: str = "valid_accuracy"
    valid_history: list[float] = field(default_factory=list)
    class_weights: dict[str, float] = field(default_factory=dict)
    note: str = ""

    def as_json(self) -> dict[str, Any]:
        """JSON-ready metrics."""
        out: dict[str, Any] = dict(self.__dict__)
        out[self.valid_metric] = self.valid_history[self.best_epoch - 1] if self.valid_history else None
        return out


def class_weights(y: np.ndarray, n_labels: int) -> np.ndarray:
    """Inverse-frequency weights n / (k · count) per label index (labels without rows get weight 1)."""
    counts = np.bincount(y, minlength=n_labels).astype(np.float64)
    present = counts > 0
    weights = np.ones(n_labels)
    weights[present] = len(y) / (present.sum() * counts[present])
    return weights


def validation_split(y: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Stratified (train, valid) row indices; valid is empty when every label cannot keep a training row."""
    rng = np.random.default_rng(seed)
    train: list[int] = []
    valid: list[int] = []
    for label in np.unique(y):
        rows = rng.permutation(np.flatnonzero(y == label))
        take = round(len(rows) * fraction) if len(rows) >= 3 else 0
        valid.extend(rows[:take])
        train.extend(rows[take:])
    return np.sort(np.array(train, dtype=np.int64)), np.sort(np.array(valid, dtype=np.int64))


def _score(probs: np.ndarray, targets: np.ndarray, multi_label: bool) -> float:
    """Accuracy (single choice) or micro-F1 at 0.5 (multiple choices)."""
    if not multi_label:
        return float((probs.argmax(1) == targets).mean())
    pred = probs >= 0.5
    truth = targets.astype(bool)
    tp = float((pred & truth).sum())
    denom = float(pred.sum() + truth.sum())
    return 2 * tp / denom if denom else 1.0


def fine_tune(
    base: Path,
    texts: list[str],
    targets: np.ndarray,
    labels: tuple[str, ...] | list[str],
    multi_label: bool,
    settings: Settings,
    progress: Progress | None = None,
    pause: Pause | None = None,
) -> tuple[Any, Any, FineTuneReport]:
    """Fine-tune ``AutoModelForSequenceClassification`` from ``base`` on (texts, targets).

    Args:
        targets: (n,) label indices for a single choice, or (n, len(labels)) 0/1 rows for multiple choices.

    Returns:
        (model at its best validation epoch, tokenizer, report).
    """
    offline()
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, get_linear_schedule_with_warmup

    torch.manual_seed(settings.seed)
    k = len(labels)
    tokenizer = AutoTokenizer.from_pretrained(str(base))
    model = AutoModelForSequenceClassification.from_pretrained(
        str(base),
        num_labels=k,
        id2label=dict(enumerate(labels)),
        label2id={label: i for i, label in enumerate(labels)},
        problem_type="multi_label_classification" if multi_label else "single_label_classification",
    )
    device = resolve_device(settings.device)
    model.to(device)
    report = FineTuneReport(valid_metric="valid_micro_f1" if multi_label else "valid_accuracy")
    strata = np.where(targets.any(1), targets.argmax(1), k) if multi_label else targets
    train_idx, valid_idx = validation_split(strata, settings.transformer_valid_fraction, settings.seed)
    if len(valid_idx) == 0:
        train_idx = np.arange(len(texts))
        report.note = "too few rows per label for a validation split: trained on all rows, no early stopping"
    report.n_train, report.n_valid = len(train_idx), len(valid_idx)

    if multi_label:
        positives = targets[train_idx].sum(0).astype(np.float64)
        negatives = len(train_idx) - positives
        pos_weight = np.clip(negatives / np.maximum(positives, 1.0), 1.0, MAX_POS_WEIGHT)
        loss_fn: Any = torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor(pos_weight, dtype=torch.float32).to(device))
        report.class_weights = {label: round(float(w), 4) for label, w in zip(labels, pos_weight, strict=True)}
    else:
        weights = class_weights(targets[train_idx], k)
        loss_fn = torch.nn.CrossEntropyLoss(weight=torch.tensor(weights, dtype=torch.float32).to(device))
        report.class_weights = {label: round(float(w), 4) for label, w in zip(labels, weights, strict=True)}

    batch = settings.transformer_batch_size
    steps_per_epoch = max(1, -(-len(train_idx) // batch))
    total = steps_per_epoch * settings.transformer_epochs
    optimizer = torch.optim.AdamW(model.parameters(), lr=settings.transformer_learning_rate, weight_decay=0.01)
    schedule = get_linear_schedule_with_warmup(optimizer, int(0.1 * total), total)
    generator = torch.Generator().manual_seed(settings.seed)

    def encode(rows: np.ndarray) -> Any:
        return tokenizer(
            [texts[i] for i in rows],
            padding=True,
            truncation=True,
            max_length=settings.max_seq_length,
            return_tensors="pt",
        ).to(device)

    def evaluate() -> float:
        model.eval()
        probs = []
        with torch.inference_mode():
            for start in range(0, len(valid_idx), 64):
                logits = model(**encode(valid_idx[start : start + 64])).logits
                probs.append((torch.sigmoid(logits) if multi_label else torch.softmax(logits, -1)).cpu().numpy())
        return _score(np.concatenate(probs), targets[valid_idx], multi_label)

    best_state: dict[str, Any] | None = None
    best, waited, step = -1.0, 0, 0
    with pause_points(model, pause):  # requests being served on this machine come first
        for epoch in range(1, settings.transformer_epochs + 1):
            model.train()
            order = train_idx[torch.randperm(len(train_idx), generator=generator).numpy()]
            for start in range(0, len(order), batch):
                rows = order[start : start + batch]
                logits = model(**encode(rows)).logits
                y = torch.tensor(targets[rows], dtype=torch.float32 if multi_label else torch.long).to(device)
                loss = loss_fn(logits, y)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                optimizer.step()
                schedule.step()
                optimizer.zero_grad()
                step += 1
                if progress is not None:
                    progress(0.85 * step / total, f"epoch {epoch}/{settings.transformer_epochs}, step {step}/{total}")
            report.epochs_run = epoch
            if not len(valid_idx):
                report.best_epoch = epoch
                continue
            score = evaluate()
            report.valid_history.append(round(score, 4))
            if score > best:
                best, waited, report.best_epoch = score, 0, epoch
                best_state = copy.deepcopy(model.state_dict())
            else:
                waited += 1
                if waited >= settings.transformer_patience:
                    report.stopped_early = epoch < settings.transformer_epochs
                    break
    if best_state is not None:
        model.load_state_dict(best_state)
    model.to("cpu")  # served, exported and distilled on the CPU
    model.eval()
    return model, tokenizer, report


def train_transformer(
    spec: LabelSpec,
    data: dict[str, ControlData],
    base: Path,
    settings: Settings,
    version: str,
    *,
    progress: Progress | None = None,
    pause: Pause | None = None,
) -> TrainResult:
    """Slow tier, transformer kind: fine-tune ``base`` on the primary control, heads for the others (``pause``: see
    ``yielding.pause_points``)."""
    started = time.perf_counter()
    primary = primary_control(data, settings)
    control = primary.control
    if control.multi_label:
        targets = np.array([[int(label in t) for label in control.labels] for t in primary.targets], dtype=np.int64)
    else:
        targets = np.array([control.labels.index(t[0]) for t in primary.targets], dtype=np.int64)
    model, tokenizer, report = fine_tune(
        base, primary.texts, targets, control.labels, control.multi_label, settings, progress, pause
    )
    encoder = mean_pooling_encoder(
        base,
        model.base_model,
        source=f"unsaved:{version}",
        max_seq_length=settings.max_seq_length,
        batch_size=settings.predict_batch_size,
    )
    if progress is not None:
        progress(0.87, "heads for the other controls")
    heads, metrics = fit_heads(spec, data, encoder, encoder.encode, settings)
    classifier = TransformerClassifier(
        version=version,
        encoder=encoder,
        heads=heads,
        model=model,
        tokenizer=tokenizer,
        control=control.name,
        multi_label=control.multi_label,
        max_seq_length=settings.max_seq_length,
        batch_size=settings.predict_batch_size,
    )
    metrics[control.name] = {**metrics.get(control.name, {}), **report.as_json(), "kind": "transformer"}
    log.info("%s: fine-tuned %s in %d epoch(s), %s", version, base, report.epochs_run, report.as_json())
    return TrainResult(classifier, metrics, label_counts(data), len(primary.texts), time.perf_counter() - started)


def distill(
    teacher: TransformerClassifier,
    student: Encoder,
    embed: Embed,
    spec: LabelSpec,
    data: dict[str, ControlData],
    unlabeled: list[str],
    settings: Settings,
    version: str,
) -> TrainResult:
    """Distil a fine-tuned transformer into logistic heads on the served small body (``student``).

    The teacher labels ``unlabeled`` texts (hard labels: argmax, or every label ≥ ``multi_label_threshold``); the
    student's head for the teacher's control is fit on the human-labeled rows plus 80 % of those, and
    ``agreement_with_teacher`` is measured on the other 20 %. Other controls keep heads on human labels only.
    """
    started = time.perf_counter()
    heads, metrics = fit_heads(spec, data, student, embed, settings)
    rows = data[teacher.control]
    control = rows.control
    labeled = set(rows.texts)
    pool = [t for t in dict.fromkeys(unlabeled) if t not in labeled]
    if not pool:
        metrics.setdefault(control.name, {})["distillation"] = {"note": "no unlabeled texts: human labels only"}
        return TrainResult(TextClassifier(version, student, heads), metrics, label_counts(data), len(rows.texts), 0.0)
    probs = teacher.proba(pool)
    if control.multi_label:
        pseudo = [[control.labels[j] for j in np.flatnonzero(p >= settings.multi_label_threshold)] for p in probs]
    else:
        pseudo = [[control.labels[int(p.argmax())]] for p in probs]
    order = np.random.default_rng(settings.seed).permutation(len(pool))
    held = order[: max(1, len(pool) // 5)] if len(pool) >= 5 else np.array([], dtype=np.int64)
    fit_rows = np.setdiff1d(order, held)
    texts = rows.texts + [pool[i] for i in fit_rows]
    targets = rows.targets + [pseudo[i] for i in fit_rows]
    head = fit_head(control.labels, control.multi_label, embed(texts), targets, seed=settings.seed)
    report: dict[str, Any] = {"teacher": teacher.version, "n_pseudo": len(fit_rows), "n_held": len(held)}
    if head is not None:
        heads[control.name] = head
        if len(held):
            student_probs = head.predict_proba(embed([pool[i] for i in held]))
            if control.multi_label:
                agree = (student_probs >= settings.multi_label_threshold) == (
                    probs[held] >= settings.multi_label_threshold
                )
            else:
                agree = student_probs.argmax(1) == probs[held].argmax(1)
            report["agreement_with_teacher"] = round(float(agree.mean()), 4)
    metrics.setdefault(control.name, {})["distillation"] = report
    classifier = TextClassifier(version, student, heads)
    return TrainResult(classifier, metrics, label_counts(data), len(rows.texts), time.perf_counter() - started)
