"""After a promotion: push the new version's predictions for the top of the queue to Label Studio.

Label Studio's "Uncertainty sampling" serves tasks by prediction score ascending, counting only predictions
whose ``model_version`` equals the project's. So tagloop ranks the unlabeled tasks it knows with the project's
query strategy, imports the top ``push_top_k`` as predictions in one bulk request (score = queue position),
removes what it pushed for the previous version, and sets the project's ``model_version`` (which LS accepts
only once such predictions exist).
Pushing only the top K keeps Label Studio's prediction table bounded; other tasks get a live ``/predict``
when opened. Every prediction of a task in the previous or the new push is deleted first (Label Studio's
delete action cannot filter by model version), so each pushed task carries exactly one prediction, except
*protected* tasks: the first ``push_protect_head`` unlabeled tasks of the previous push are the ones Label Studio
has been serving, so an annotator may have one open, and Label Studio refuses the submit (400 on
``parent_prediction``) if the prediction it pre-filled from was deleted. Their predictions are kept until they are
labeled or ``push_protect_s`` has passed since they were first protected; a protected task gets the new version's
prediction too only while it is in the new push's head or bridges a switch (below; so a push adds a prediction to
at most 2 × ``push_protect_head`` protected tasks), and otherwise leaves Label Studio's ranked queue until it is
released.

A push that changes the version *bridges* the switch: Label Studio's ``/next`` picks its task under the project's
``model_version`` as it read it when the request began, but sends the task's predictions of the ``model_version`` it
reads afterwards, when it serializes the task. A ``/next`` that straddles the PATCH therefore serves a task the old
version ranked (after the delete, a protected one of the previous head) with the new version's prediction, or with
none: the page then pre-fills nothing (seen in 0-2 of 100 labels, ``tagloop bench loop``'s ``not_prefilled``). So
each protected task of the previous push's head that the new head leaves out gets the new version's prediction
too, scored ``BRIDGE_SCORE`` (Label Studio serves it after every ranked task), and every new prediction is imported
before the PATCH. An import locks the tasks it writes for that statement (PostgreSQL) and ``/next`` skips locked
tasks: importing all the old version's candidates in one request could leave it none to serve (a 404 "There are no
tasks", once in 300 labels when they shared the bulk request; once in 150 with the first imported apart, as it had
just been labeled), so the second gets a request of its own: one import more than the bulk, as few writes as can
be (on SQLite every write makes the annotators' requests wait).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from backend.config import Settings
from backend.labelstudio.client import LabelStudioClient
from backend.labelstudio.label_config import LabelSpec
from backend.labelstudio.predictions import prediction, served_summary
from backend.labelstudio.texts import control_text
from backend.models.classifier import TextClassifier
from backend.models.registry import ModelRegistry
from backend.ranking import RankInput, primary, queue_strategy, rank
from backend.store.records import Example, ProjectRecord
from backend.store.sql_store import SqlStore
from strategies import describe, queue_scores

log = logging.getLogger(__name__)
BRIDGE_SCORE = 1.0
"""The score of a bridging prediction: no ranked task scores above it, so Label Studio serves it last."""


@dataclass(frozen=True)
class PushResult:
    """What a push did."""

    pushed: int
    removed: int
    model_version_set: bool
    protected: int = 0
    bridged: int = 0


def push_version(
    store: SqlStore,
    project: ProjectRecord,
    spec: LabelSpec,
    model: TextClassifier,
    *,
    settings: Settings,
    client: LabelStudioClient,
    models: ModelRegistry,
    labeled: Sequence[Example],
) -> PushResult:
    """Rank known unlabeled tasks with the project's strategy under ``model``, replace the previous push in LS
    with the top ``push_top_k`` (pushed ``score`` = queue position / K, so LS serves them in that order), and
    set the project's model_version. ``labeled``: the training examples (diversity strategies look at them).
    Probabilities come through the one inference path (``models.predict``), embeddings through the one cache: the
    pool's embeddings under
    the model's body are computed once and kept."""
    pool = store.tasks.unlabeled(project.id, limit=settings.push_pool_limit)
    rows: list[dict[str, Any]] = []
    strategy = queue_strategy(settings, project, spec, n_labeled=len(labeled))
    if pool and settings.push_top_k > 0:
        rows = _ranked_rows(project, spec, model, pool, settings, models, labeled, strategy)
    previous = list(project.pushed_tasks)
    # ranking under a new body embeds the whole pool (seconds): the annotator kept labeling meanwhile, so what is
    # unlabeled is read again now, or the protection would go to tasks already done and miss the one open
    ranked = {r["task"] for r in rows}
    done = store.tasks.labeled_among(project.id, set(previous) | set(project.protected_tasks) | ranked)
    rows = [r for r in rows if r["task"] not in done]
    unlabeled = {tid for tid, _ in pool} - done
    protected = protected_tasks(project, unlabeled, settings, now=time.time())
    if previous and project.pushed_version == model.version and project.pushed_strategy != strategy:
        # the same version re-ranked by another strategy: kept predictions would carry the current model_version
        # with the old ranking's scores, and Label Studio would serve them ahead of the new queue. (The same version
        # and strategy again, e.g. after more tasks were imported, keeps its protection: the kept scores are what
        # this ranking gives those tasks, and an annotator may have one open.)
        protected = {}
    # the previous push, and any older prediction of a task pushed now (e.g. a live /predict when it was
    # opened): one prediction per pushed task keeps LS's prediction table bounded; protected tasks keep theirs
    cleared = sorted((set(previous) | {r["task"] for r in rows}) - set(protected))
    client.delete_predictions(project.id, cleared)
    rows = rows_to_import(rows, protected, settings.push_protect_head)
    bridges: list[dict[str, Any]] = []
    if rows and project.pushed_version != model.version:
        left_out = to_bridge(project, protected, {r["task"] for r in rows}, settings.push_protect_head)
        bridges = _bridge_rows(spec, model, [(tid, data) for tid, data in pool if tid in left_out], settings, models)
    log.info(
        "project %s: push %s: head %s, protected %s, bridged %s, predictions of %d tasks deleted, "
        "%d labeled while ranking",
        project.id,
        model.version,
        [r["task"] for r in rows[:5]],
        sorted(protected),
        [r["task"] for r in bridges],
        len(cleared),
        len(done & {tid for tid, _ in pool}),
    )
    # Label Studio's /next serves the lowest-scored task with a prediction of the project's model_version that no
    # transaction has locked (on PostgreSQL, ``select_for_update(skip_locked=True)``), else answers 404 "There are
    # no tasks". An import locks every task it writes for that statement: while the old version is current, the
    # protected tasks are its only candidates, so the second (the first is usually the one being labeled) gets its new
    # prediction in a request of its own, after the bulk (module docstring), both before the switch
    imported = rows + bridges
    apart = imported_apart(project, protected, {r["task"] for r in imported}, settings.push_protect_head)
    client.import_predictions(project.id, [r for r in imported if r["task"] not in apart])
    for row in [r for r in imported if r["task"] in apart]:
        client.import_predictions(project.id, [row])
    pushed = [r["task"] for r in imported]
    pushed_set = set(pushed)
    kept = [t for t in protected if t not in pushed_set]  # still carry predictions: deleted once released
    ranking = (model.version, strategy) if rows else None
    store.projects.set_pushed_tasks(project.id, pushed + kept, protected, ranking=ranking)
    store.tasks.record_predictions(project.id, {r["task"]: served_summary(r) for r in imported})  # what annotators see
    version_set = False
    if rows:
        client.set_model_version(project.id, model.version)
        version_set = True
    else:
        log.info("project %s: no known unlabeled task to push; LS model_version left as is", project.id)
    return PushResult(
        pushed=len(rows),
        removed=len(previous),
        model_version_set=version_set,
        protected=len(protected),
        bridged=len(bridges),
    )


def old_candidates(project: ProjectRecord, protected: Mapping[int, float], head: int) -> list[int]:
    """The protected tasks of the previous push's head, in its order: the old version's lowest scores, so the tasks
    its ``/next`` serves while the version switches."""
    return [t for t in project.pushed_tasks if t in protected][:head]


def to_bridge(project: ProjectRecord, protected: Mapping[int, float], imported: set[int], head: int) -> set[int]:
    """The old version's candidates that get no prediction of the new version from its ranking."""
    return {t for t in old_candidates(project, protected, head) if t not in imported}


def imported_apart(project: ProjectRecord, protected: Mapping[int, float], imported: set[int], head: int) -> list[int]:
    """The task whose new prediction a push imports in a request of its own, after the bulk: the old version's second
    candidate (the first is usually the one an annotator is labeling). While the bulk runs it is the old version's
    free candidate, and while it is imported the others are."""
    return [t for t in old_candidates(project, protected, head)[1:2] if t in imported]


def rows_to_import(rows: list[dict[str, Any]], protected: Mapping[int, float], head: int) -> list[dict[str, Any]]:
    """The ranked rows to import: all but protected tasks ranked below the first ``head`` (they keep the prediction
    they have; a fresh one each push would pile up in Label Studio)."""
    return [r for position, r in enumerate(rows) if position < head or r["task"] not in protected]


def protected_tasks(project: ProjectRecord, unlabeled: set[int], settings: Settings, *, now: float) -> dict[int, float]:
    """Tasks whose Label Studio predictions this push keeps (task id → since when): the still protected ones of
    earlier pushes and the first ``push_protect_head`` of the previous push, while unlabeled and younger than
    ``push_protect_s``."""
    kept: dict[int, float] = {}
    expired: set[int] = set()
    for t, since in project.protected_tasks.items():
        if t in unlabeled and now - since < settings.push_protect_s:
            kept[t] = since
        elif t in unlabeled:
            expired.add(t)
    for t in [t for t in project.pushed_tasks if t in unlabeled][: settings.push_protect_head]:
        if t not in expired:  # an expired task is released once: its predictions are replaced by one fresh one
            kept.setdefault(t, now)
    return kept


def _texts(spec: LabelSpec, tasks: Sequence[tuple[int, dict[str, Any]]], settings: Settings) -> dict[str, list[str]]:
    limit = settings.max_text_chars
    return {
        c.name: [control_text(c, data, task_ref=f"task {t}", max_chars=limit) for t, data in tasks]
        for c in spec.controls
    }


def _bridge_rows(
    spec: LabelSpec,
    model: TextClassifier,
    tasks: Sequence[tuple[int, dict[str, Any]]],
    settings: Settings,
    models: ModelRegistry,
) -> list[dict[str, Any]]:
    """The new version's prediction of each task, scored ``BRIDGE_SCORE``."""
    if not tasks:
        return []
    probas = models.predict(model, _texts(spec, tasks, settings), flag_truncated=False).probas
    threshold, version = settings.multi_label_threshold, model.version
    return [
        {"task": tid, **prediction(spec, probas, i, model_version=version, threshold=threshold, score=BRIDGE_SCORE)}
        for i, (tid, _) in enumerate(tasks)
    ]


def _ranked_rows(
    project: ProjectRecord,
    spec: LabelSpec,
    model: TextClassifier,
    pool: list[tuple[int, dict[str, Any]]],
    settings: Settings,
    models: ModelRegistry,
    labeled: Sequence[Example],
    name: str,
) -> list[dict[str, Any]]:
    texts = _texts(spec, pool, settings)
    probas = models.predict(model, texts, flag_truncated=False).probas
    embed = lambda batch: models.embeddings.encode(model.encoder, batch)  # noqa: E731
    head = primary(spec)
    labeled = [ex for ex in labeled if head.value_key in ex.data]
    labeled_texts = [control_text(head, ex.data, task_ref="", max_chars=settings.max_text_chars) for ex in labeled]
    counts = [len(ex.choices.get(head.name, [])) for ex in labeled]
    data = RankInput(
        proba=probas[head.name],
        pool_texts=texts[head.name],
        labeled_texts=labeled_texts,
        label_cardinality=float(np.mean(counts)) if counts and head.multi_label else None,
    )
    selection = rank(name, data, settings.push_top_k, embed, seed=settings.seed, max_pool=settings.strategy_max_pool)
    picked = [int(i) for i in selection.indices]
    scores = queue_scores(describe(name).certainty, probas[head.name][picked], multi_label=head.multi_label)
    threshold = settings.multi_label_threshold
    return [
        {"task": pool[i][0], **prediction(spec, probas, i, model_version=model.version, threshold=threshold, score=s)}
        for i, s in zip(picked, scores, strict=True)
    ]
