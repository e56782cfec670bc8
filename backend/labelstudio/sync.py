"""After a promotion: push the new version's predictions for the top of the queue to Label Studio.

Label Studio's "Uncertainty sampling" serves tasks by prediction score ascending, counting only predictions
whose ``model_version`` equals the project's. So tagloop ranks the unlabeled tasks it knows with the project's
query strategy, imports the top ``push_top_k`` as predictions in one bulk request (score = queue position),
removes what it pushed for the previous version, and sets the project's ``model_version`` (which LS accepts
only once such predictions exist).
Pushing only the top K keeps Label Studio's prediction table bounded; other tasks get a live ``/predict``
when opened. Every prediction of a task in the previous or the new push is deleted first (Label Studio's
delete action cannot filter by model version), so each pushed task carries exactly one prediction.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from backend.config import Settings
from backend.labelstudio.client import LabelStudioClient
from backend.labelstudio.label_config import LabelSpec
from backend.labelstudio.payloads import control_text
from backend.labelstudio.predictions import prediction, served_summary
from backend.models.classifier import TextClassifier
from backend.ranking import Embed, RankInput, primary, rank, strategy_name
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
    settings: Settings,
    client: LabelStudioClient,
    embed: Embed,
) -> PushResult:
    """Rank known unlabeled tasks with the project's strategy under ``model``, replace the previous push in LS
    with the top ``push_top_k`` (pushed ``score`` = queue position / K, so LS serves them in that order), and
    set the project's model_version. ``embed`` goes through the embedding cache: the pool's embeddings under
    the model's body are computed once and kept."""
    pool = store.unlabeled_tasks(project.id, limit=settings.push_pool_limit)
    rows: list[dict[str, Any]] = []
    if pool and settings.push_top_k > 0:
        rows = _ranked_rows(store, project, spec, model, pool, settings, embed)
    previous = list(project.pushed_tasks)
    # the previous push, and any older prediction of a task pushed now (e.g. a live /predict when it was
    # opened): one prediction per pushed task keeps LS's prediction table bounded
    client.delete_predictions(project.id, sorted(set(previous) | {r["task"] for r in rows}))
    client.import_predictions(project.id, rows)
    store.set_pushed_tasks(project.id, [r["task"] for r in rows])
    store.record_predictions({r["task"]: served_summary(r) for r in rows})  # what annotators will see
    version_set = False
    if rows:
        client.set_model_version(project.id, model.version)
        version_set = True
    else:
        log.info("project %s: no known unlabeled task to push; LS model_version left as is", project.id)
    return PushResult(pushed=len(rows), removed=len(previous), model_version_set=version_set)


def _ranked_rows(
    store: SqlStore,
    project: ProjectRecord,
    spec: LabelSpec,
    model: TextClassifier,
    pool: list[tuple[int, dict[str, Any]]],
    settings: Settings,
    embed: Embed,
) -> list[dict[str, Any]]:
    texts = {
        c.name: [control_text(c, data, task_ref=f"task {tid}", max_chars=settings.max_text_chars) for tid, data in pool]
        for c in spec.controls
    }
    probas = {c.name: model.heads[c.name].predict_proba(embed(texts[c.name])) for c in spec.controls}
    preds = [
        prediction(spec, probas, i, model_version=model.version, threshold=settings.multi_label_threshold)
        for i in range(len(pool))
    ]
    head = primary(spec)
    labeled = [ex for ex in store.training_set(project.id) if head.value_key in ex.data]
    labeled_texts = [control_text(head, ex.data, task_ref="", max_chars=settings.max_text_chars) for ex in labeled]
    counts = [len(ex.choices.get(head.name, [])) for ex in labeled]
    data = RankInput(
        proba=probas[head.name],
        pool_texts=texts[head.name],
        labeled_texts=labeled_texts,
        label_cardinality=float(np.mean(counts)) if counts and head.multi_label else None,
    )
    selection = rank(strategy_name(settings, project, spec), data, settings.push_top_k, embed, seed=settings.seed)
    k = max(1, len(selection.indices))
    return [
        {"task": pool[int(i)][0], **preds[int(i)], "score": round(position / k, 6)}
        for position, i in enumerate(selection.indices)
    ]
