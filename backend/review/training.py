"""After a version is trained: flag thresholds from cross-validated scores, label-error suspects, and the
version's PSI reference window. ``review_metrics`` is called by ``train_project`` right after the metrics are
computed; what it returns is merged into the version's metrics (``{"review": {...}}``, or ``{}`` when the
project is not moderated)."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from backend.labelstudio.label_config import ControlSpec, LabelSpec
from backend.labelstudio.texts import control_text
from backend.models.classifier import TextClassifier
from backend.review.moderation import Moderation, harmful_labels, moderation_control
from backend.review.queues import LABEL_ERROR, label_error
from backend.review.routing import REVIEW, review_store
from backend.review.thresholds import ThresholdChoice, choose_threshold
from backend.store.records import NewItem
from backend.training.evaluation import MAX_ROWS, subsample
from backend.training.fitting import control_out_of_fold

if TYPE_CHECKING:
    from backend.services import Services

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LabeledRows:
    """The labeled texts of the moderation control: task ids (negative: a moderator-only text), texts, labels."""

    task_ids: list[int]
    texts: list[str]
    targets: list[list[str]]
    moderated: list[bool]
    """Row i's label is a moderator's verdict (never a label-error suspect)."""


def labeled_rows(services: Services, project_id: int, control: ControlSpec) -> LabeledRows:
    """Rows of the training set that label ``control`` (single-label: exactly one label)."""
    reviews = review_store(services)
    verdicts = {(m.value_key, m.text) for m in reviews.moderator_labels(project_id) if m.control == control.name}
    rows = LabeledRows([], [], [], [])
    for ex in services.labeled_examples(project_id):
        labels = [c for c in ex.choices.get(control.name, []) if c in control.labels]
        if control.name not in ex.choices or control.value_key not in ex.data:
            continue
        if not control.multi_label and len(labels) != 1:
            continue
        text = control_text(control, ex.data, task_ref=f"task {ex.task_id}", max_chars=services.settings.max_text_chars)
        rows.task_ids.append(ex.task_id)
        rows.texts.append(text)
        rows.targets.append(labels)
        rows.moderated.append(ex.task_id < 0 or (control.value_key, ex.data.get(control.value_key)) in verdicts)
    return rows


def choose_thresholds(services: Services, mod: Moderation, proba: np.ndarray, targets: list[list[str]]) -> dict:
    """Per harmful label, the threshold reaching the configured target on out-of-fold ``proba`` (n, n_labels)."""
    settings = services.settings
    out: dict[str, ThresholdChoice] = {}
    for label in mod.harmful:
        j = mod.control.labels.index(label)
        positive = np.array([label in t for t in targets], dtype=bool)
        if settings.review_max_fp_rate > 0:
            out[label] = choose_threshold(proba[:, j], positive, max_fp_rate=settings.review_max_fp_rate)
        else:
            out[label] = choose_threshold(proba[:, j], positive, target_precision=settings.review_target_precision)
    return {label: choice.as_json() for label, choice in out.items()}


def review_metrics(services: Services, project_id: int, spec: LabelSpec, classifier: TextClassifier) -> dict[str, Any]:
    """Thresholds, label-error suspects and the reference window of a new version; ``{}`` if not moderated.

    A failure here is logged and recorded in the returned metrics; it never fails the training.
    """
    control = moderation_control(spec, services.settings.harmful_label_set)
    if control is None:
        return {}
    started = time.perf_counter()
    try:
        review = _review(services, project_id, control, classifier)
    except Exception as exc:  # recorded on the version; the version itself is fine
        log.exception("project %s: review metrics of %s failed", project_id, classifier.version)
        return {"review": {"control": control.name, "error": f"{type(exc).__name__}: {exc}"}}
    review["seconds"] = round(time.perf_counter() - started, 3)
    services.request_job(project_id, REVIEW, f"after training {classifier.version}")
    return {"review": review}


def _review(services: Services, project_id: int, control: ControlSpec, classifier: TextClassifier) -> dict[str, Any]:
    settings = services.settings
    harmful = harmful_labels(control, settings.harmful_label_set)
    mod = Moderation(control, harmful, {})
    rows = labeled_rows(services, project_id, control)
    review: dict[str, Any] = {"control": control.name, "harmful": list(harmful), "thresholds": {}}
    review["moderator_labels"] = sum(rows.moderated)
    keep = subsample(len(rows.texts), MAX_ROWS, settings.seed)
    if len(keep) >= 4:
        emb = services.embeddings.encode(classifier.encoder, [rows.texts[i] for i in keep])
        targets = [rows.targets[i] for i in keep]
        proba = control_out_of_fold(classifier.heads[control.name], control, emb, targets, settings)
        review["thresholds"] = choose_thresholds(services, mod, proba, targets)
        review["cv_rows"] = len(keep)
        review["label_error_suspects"] = _suspects(services, project_id, control, rows, keep, proba, classifier.version)
    review["reference_scores"] = _reference(services, project_id, control, mod, classifier)
    return review


def _suspects(
    services: Services,
    project_id: int,
    control: ControlSpec,
    rows: LabeledRows,
    keep: np.ndarray,
    proba: np.ndarray,
    version: str,
) -> int:
    """Open a label-error item for each cross-validated row whose label the model contradicts surely."""
    reviews, found = review_store(services), 0
    confidence = services.settings.review_suspect_confidence
    for pos, i in enumerate(keep):
        if rows.moderated[i]:
            continue
        route = label_error(control.labels, control.multi_label, rows.targets[i], proba[pos], confidence)
        if route is None:
            continue
        reviews.upsert_open_item(
            NewItem(
                project_id=project_id,
                queue=LABEL_ERROR,
                control=control.name,
                value_key=control.value_key,
                text=rows.texts[i],
                source="scan",
                predicted=route.labels,
                human=rows.targets[i],
                score=float(proba[pos].max()),
                margin=route.margin,
                model_version=version,
                reason=route.reason,
                task_id=rows.task_ids[i] if rows.task_ids[i] > 0 else None,
            )
        )
        found += 1
    return found


def _reference(
    services: Services, project_id: int, control: ControlSpec, mod: Moderation, classifier: TextClassifier
) -> int:
    """Score a random sample of the project's known tasks with the new version: its PSI reference window."""
    settings = services.settings
    sample = services.store.tasks.sample(project_id, settings.psi_reference_size, settings.seed)
    texts = [
        control_text(control, d, task_ref="reference", max_chars=settings.max_text_chars)
        for d in sample
        if control.value_key in d
    ]
    if not texts:
        return 0
    proba = services.models.predict(classifier, {control.name: texts}, flag_truncated=False).probas[control.name]
    review_store(services).replace_scores(project_id, classifier.version, "reference", mod.harm_scores(proba).tolist())
    return len(texts)
