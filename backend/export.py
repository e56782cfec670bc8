"""``tagloop export``: labels with provenance, and a version's model as directories SetFit loads as is."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from backend.errors import NotFound
from backend.labelstudio.label_config import parse_label_config
from backend.models.classifier import TextClassifier
from backend.models.heads import BlendedHead, FittedHead, Head
from backend.models.sequence import MODEL_DIR, TransformerClassifier, load_classifier
from backend.services import Services

FORMATS = ("csv", "jsonl")


def export_labels(services: Services, project_id: int, out: Path, fmt: str) -> Path:
    """One row per stored annotation (``provenance`` ``annotator``: task, text, choices, who, when, status, what
    tagloop had predicted), then one per moderator verdict (``moderator``: it overrides the annotator's choices of
    its control for that text in training)."""

    if fmt not in FORMATS:
        raise NotFound(f"format: got {fmt!r}, expected one of {list(FORMATS)}")
    store = services.store
    services.served.flush()
    served = store.tasks.predictions(project_id)
    rows: list[dict[str, Any]] = []
    texts = store.tasks.data(project_id, sorted({a.task_id for a in store.annotations.of_project(project_id)}))
    for ann in store.annotations.of_project(project_id):
        data = texts.get(ann.task_id) or {}
        pred = ann.suggested or served.get(ann.task_id) or {}  # what the annotator was shown, else the last served
        rows.append(
            {
                "provenance": "annotator",
                "annotation_id": ann.id,
                "task_id": ann.task_id,
                "data": data,
                "choices": ann.choices,
                "author": ann.author,
                "created_at": ann.ls_created_at,
                "updated_at": ann.ls_updated_at,
                "was_cancelled": ann.was_cancelled,
                "deleted": ann.deleted,
                "predicted_by": pred.get("model_version"),
                "predicted": pred.get("choices"),
                "predicted_score": pred.get("score"),
                "accepted": ann.accepted,
            }
        )
    for verdict in store.review.moderator_labels(project_id):
        pred = (served.get(verdict.task_id) if verdict.task_id is not None else None) or {}
        rows.append(
            {
                "provenance": "moderator",
                "annotation_id": None,
                "task_id": verdict.task_id,
                "data": (store.tasks.get(project_id, verdict.task_id) if verdict.task_id is not None else None)
                or {verdict.value_key: verdict.text},
                "choices": {verdict.control: list(verdict.labels)},
                "author": verdict.moderator,
                "created_at": None,
                "updated_at": None,
                "was_cancelled": False,
                "deleted": False,
                "predicted_by": pred.get("model_version"),
                "predicted": pred.get("choices"),
                "predicted_score": pred.get("score"),
            }
        )
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"project-{project_id}-labels.{fmt}"
    if fmt == "jsonl":
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    else:
        with path.open("w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]) if rows else ["annotation_id"])
            writer.writeheader()
            for r in rows:
                writer.writerow(  # nested values as JSON
                    {k: json.dumps(v, ensure_ascii=False) if isinstance(v, dict) else v for k, v in r.items()}
                )
    return path


def export_model(services: Services, project_id: int, out: Path, version: str | None) -> dict[str, Path]:
    """Per ``<Choices>`` control, a model directory loadable as is: ``SetFitModel.from_pretrained(dir)``, or, for
    the control a transformer version was fine-tuned on, ``AutoModelForSequenceClassification.from_pretrained(dir)``
    (and ``pipeline("text-classification", model=dir)``)."""
    project = services.store.projects.get(project_id)
    if project is None:
        raise NotFound(f"project {project_id} is not known to tagloop")
    spec = parse_label_config(project.label_config)
    name = version or services.models.served_version(project, spec)
    record = services.store.versions.get(name)
    if record is None or not record.artifact_path:
        kept = [v.name for v in services.store.versions.of_project(project_id)]
        raise NotFound(f"version {name!r} has no saved model; kept versions: {kept}")
    classifier = load_classifier(Path(record.artifact_path), load_encoder=services.models.encoder_for)
    paths: dict[str, Path] = {}
    for control in spec.controls:
        if isinstance(classifier, TransformerClassifier) and control.name == classifier.control:
            target = out / f"{name}-{control.name}"
            shutil.copytree(Path(record.artifact_path) / MODEL_DIR, target, dirs_exist_ok=True)
            paths[control.name] = target
            continue
        served = classifier.heads[control.name]
        # a SetFit model holds the fitted head; the blend with the zero-shot prior is tagloop's serving
        head = served.fitted if isinstance(served, BlendedHead) else served
        if not isinstance(head, FittedHead):
            continue
        target = out / f"{name}-{control.name}"
        _setfit_model(classifier, head).save_pretrained(str(target))
        paths[control.name] = target
    return paths


def _setfit_model(classifier: TextClassifier, head: Head) -> Any:
    from setfit import SetFitModel

    assert isinstance(head, FittedHead)
    if not head.multi_label:
        return SetFitModel(
            model_body=classifier.encoder.body,
            model_head=head.estimator,
            labels=[head.labels[int(c)] for c in head.estimator.classes_],
            normalize_embeddings=True,
        )
    return SetFitModel(
        model_body=classifier.encoder.body,
        model_head=_multi_output(head),
        multi_target_strategy="multi-output",
        labels=list(head.labels),
        normalize_embeddings=True,
    )


def _multi_output(head: FittedHead) -> Any:
    """A fitted sklearn ``MultiOutputClassifier`` with one estimator per label (constant where unlearnable)."""
    from sklearn.dummy import DummyClassifier
    from sklearn.multioutput import MultiOutputClassifier

    estimators = []
    fitted = dict(zip(head.columns, head.estimator, strict=True))
    for j in range(len(head.labels)):
        if j in fitted:
            estimators.append(fitted[j])
        else:
            estimators.append(DummyClassifier(strategy="constant", constant=0).fit(np.zeros((2, 1)), [0, 1]))
    model = MultiOutputClassifier(estimators[0])
    model.estimators_ = estimators
    return model
