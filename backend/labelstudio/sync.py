"""After a promotion: push the new version's predictions for the top of the queue to Label Studio.

Label Studio's "Uncertainty sampling" serves tasks by prediction score ascending, counting only predictions
whose ``model_version`` equals the project's. So tagloop scores the unlabeled tasks it knows, imports the
``push_top_k`` least confident as predictions in one bulk request, removes what it pushed for the previous
version, and sets the project's ``model_version`` (which LS accepts only once such predictions exist).
Pushing only the top K keeps Label Studio's prediction table bounded; other tasks get a live ``/predict``
when opened. Every prediction of a task in the previous or the new push is deleted first (Label Studio's
delete action cannot filter by model version), so each pushed task carries exactly one prediction.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from backend.labelstudio.client import LabelStudioClient
from backend.labelstudio.label_config import LabelSpec
from backend.labelstudio.payloads import control_text
from backend.labelstudio.predictions import prediction
from backend.models.classifier import TextClassifier
from backend.store.records import ProjectRecord
from backend.store.sql_store import SqlStore

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PushResult:
    """What a push did."""

    pushed: int
    removed: int
    model_version_set: bool


def push_version(
    store: SqlStore,
    project: ProjectRecord,
    spec: LabelSpec,
    model: TextClassifier,
    *,
    top_k: int,
    pool_limit: int,
    max_chars: int,
    threshold: float,
    client: LabelStudioClient,
) -> PushResult:
    """Score known unlabeled tasks with ``model``, replace the previous push in LS, set the model_version."""
    pool = store.unlabeled_tasks(project.id, limit=pool_limit)
    rows: list[dict[str, Any]] = []
    if pool and top_k > 0:
        texts = {
            c.name: [control_text(c, data, task_ref=f"task {tid}", max_chars=max_chars) for tid, data in pool]
            for c in spec.controls
        }
        probas = model.predict(texts)
        preds = [
            prediction(spec, probas, i, model_version=model.version, threshold=threshold) for i in range(len(pool))
        ]
        order = sorted(range(len(pool)), key=lambda i: preds[i]["score"])[:top_k]
        rows = [{"task": pool[i][0], **preds[i]} for i in order]
    previous = list(project.pushed_tasks)
    # the previous push, and any older prediction of a task pushed now (e.g. a live /predict when it was
    # opened): one prediction per pushed task keeps LS's prediction table bounded
    client.delete_predictions(project.id, sorted(set(previous) | {r["task"] for r in rows}))
    client.import_predictions(project.id, rows)
    store.set_pushed_tasks(project.id, [r["task"] for r in rows])
    version_set = False
    if rows:
        client.set_model_version(project.id, model.version)
        version_set = True
    else:
        log.info("project %s: no known unlabeled task to push; LS model_version left as is", project.id)
    return PushResult(pushed=len(rows), removed=len(previous), model_version_set=version_set)
