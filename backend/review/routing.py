"""Items entering the queues from Label Studio: annotations (webhook), served scores (/predict), scans (job).

Called from request handlers, so each function does a few short queries and never loads a model.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from backend.labelstudio.label_config import LabelSpec
from backend.labelstudio.texts import control_text
from backend.review.moderation import Moderation, moderation_control, moderation_for
from backend.review.queues import (
    FALSE_NEGATIVE,
    FALSE_POSITIVE,
    LOW_CONFIDENCE,
    Route,
    near_threshold,
    route_disagreement,
)
from backend.store.records import AnnotationRecord, NewItem, ProjectRecord
from backend.store.review import ReviewRepository

if TYPE_CHECKING:
    from backend.services import Services

log = logging.getLogger(__name__)
REVIEW = "review"
"""Job tier of the review job (scan, scoring of reported items, Label Studio sync)."""


def review_store(services: Services) -> ReviewRepository:
    """The review tables on the services' database. Callers that read what /predict recorded (served predictions
    and scores) flush ``services.served`` first, outside any unit of work."""
    return services.store.review


def version_moderation(services: Services, spec: LabelSpec, model_version: str) -> Moderation | None:
    """The moderation control with the thresholds stored for ``model_version`` (defaults if it has none)."""
    record = services.store.versions.get(model_version) if model_version else None
    return moderation_for(spec, services.settings.harmful_label_set, record.metrics if record else None)


@dataclass(frozen=True)
class _Judged:
    """A served prediction judged against a human label."""

    mod: Moderation
    version: str
    by_label: dict[str, float]
    flagged: list[str]
    route: Route | None


def _judge(
    services: Services,
    spec: LabelSpec,
    control: str,
    pred: Mapping[str, Any],
    human: list[str],
    mods: dict[str, Moderation | None] | None = None,
) -> _Judged | None:
    """``mods``: a cache of ``version_moderation`` by version (scans judge many predictions of few versions)."""
    probs = pred.get("probabilities", {}).get(control)
    if not isinstance(probs, dict) or not probs:
        return None  # served before tagloop kept probabilities
    version = str(pred.get("model_version", ""))
    mods = {} if mods is None else mods
    if version not in mods:
        mods[version] = version_moderation(services, spec, version)
    mod = mods[version]
    if mod is None:
        return None
    by_label = {h: float(probs.get(h, 0.0)) for h in mod.harmful}
    flagged = mod.flags(by_label)
    return _Judged(mod, version, by_label, flagged, route_disagreement(mod, flagged, human, by_label))


def route_annotation(
    services: Services, project: ProjectRecord, spec: LabelSpec, record: AnnotationRecord
) -> dict[str, Any] | None:
    """Compare a human label with the prediction tagloop served for the task (at the version that served it):
    a disagreement on a harmful label opens a false-positive or false-negative item. An open FP/FN item of the
    task that no longer applies, and a low-confidence item (the human has now decided), are dismissed."""
    control = moderation_control(spec, services.settings.harmful_label_set)
    if control is None or record.was_cancelled or control.name not in record.choices:
        return None
    reviews = review_store(services)
    served = services.store.tasks.served(project.id, record.task_id)
    if served is None:
        return None
    data, pred = served
    human = list(record.choices[control.name])
    judged = _judge(services, spec, control.name, pred, human) if pred else None
    route = judged.route if judged else None
    keep = route.queue if route else None
    stale = [
        i.id
        for i in reviews.open_task_items(project.id, record.task_id)
        if i.queue == LOW_CONFIDENCE or (i.queue in (FALSE_POSITIVE, FALSE_NEGATIVE) and i.queue != keep)
    ]
    reviews.dismiss(stale, f"annotation {record.id} by {record.author or 'an annotator'} changed the task's label")
    if judged is None or route is None:
        return None
    text = control_text(control, data, task_ref=f"task {record.task_id}", max_chars=services.settings.max_text_chars)
    new = _disagreement(project.id, judged, route, text, human, record.task_id, "webhook")
    reason = f"{route.reason} (annotation {record.id})"
    item, created = reviews.upsert_open_item(replace(new, reason=reason, reporter=record.author))
    services.request_job(project.id, REVIEW, f"{route.queue} item {item.id}")
    return {"queue": route.queue, "item": item.id, "created": created}


def _disagreement(
    project_id: int, judged: _Judged, route: Route, text: str, human: list[str], task_id: int, source: str
) -> NewItem:
    """The FP/FN item of a served prediction a human label contradicts."""
    control = judged.mod.control
    return NewItem(
        project_id=project_id,
        queue=route.queue,
        control=control.name,
        value_key=control.value_key,
        text=text,
        source=source,
        predicted=judged.flagged,
        human=human,
        score=judged.mod.harm_score(judged.by_label),
        margin=route.margin,
        model_version=judged.version,
        reason=route.reason,
        task_id=task_id,
    )


def scan_disagreements(services: Services, project: ProjectRecord, spec: LabelSpec) -> int:
    """Open FP/FN items for labeled tasks whose served prediction the label contradicts and that never had an
    FP/FN item: labels that reached tagloop without a webhook (catch-up, or a webhook Label Studio dropped).
    Texts a moderator has decided are skipped. Returns how many items were opened."""
    control = moderation_control(spec, services.settings.harmful_label_set)
    if control is None:
        return 0
    reviews = review_store(services)
    decided = {(m.value_key, m.text) for m in reviews.moderator_labels(project.id) if m.control == control.name}
    seen = reviews.tasks_with_items(project.id, (FALSE_POSITIVE, FALSE_NEGATIVE))
    todo = [
        ex
        for ex in services.labeled_examples(project.id)
        if ex.task_id > 0
        and ex.task_id not in seen
        and control.name in ex.choices
        and control.value_key in ex.data
        and (control.value_key, ex.data[control.value_key]) not in decided
    ]
    served, created = services.store.tasks.predictions(project.id, [ex.task_id for ex in todo]), 0
    mods: dict[str, Moderation | None] = {}
    for ex in todo:
        human = list(ex.choices[control.name])
        pred = served.get(ex.task_id)
        judged = _judge(services, spec, control.name, pred, human, mods) if pred else None
        if judged is None or judged.route is None:
            continue
        text = control_text(control, ex.data, task_ref=f"task {ex.task_id}", max_chars=services.settings.max_text_chars)
        new = _disagreement(project.id, judged, judged.route, text, human, ex.task_id, "scan")
        created += int(reviews.upsert_open_item(replace(new, reason=f"{new.reason} (scan of labeled tasks)"))[1])
    return created


def served_scores(services: Services, spec: LabelSpec, probas: Mapping[str, np.ndarray]) -> list[float]:
    """The score of each served prediction kept for PSI: the harm score on a moderated project, else the top
    probability of the first control."""
    control = moderation_control(spec, services.settings.harmful_label_set)
    if control is not None:
        mod = moderation_for(spec, services.settings.harmful_label_set)
        scores = mod.harm_scores(probas[control.name]) if mod is not None else np.zeros(0)
    else:
        scores = probas[spec.controls[0].name].max(axis=1)
    return [float(x) for x in scores]


def scan_low_confidence(services: Services, project: ProjectRecord, spec: LabelSpec, version: str) -> int:
    """Open a low-confidence item for every unlabeled task whose prediction by ``version`` has a harmful label
    within ``review_low_confidence_band`` of its threshold; returns how many items are new."""
    mod = version_moderation(services, spec, version)
    if mod is None:
        return 0
    reviews = review_store(services)
    band, created = services.settings.review_low_confidence_band, 0
    for task_id, data, pred in services.store.tasks.unlabeled_predictions(project.id, version):
        probs = pred.get("probabilities", {}).get(mod.control.name)
        if not isinstance(probs, dict) or not probs:
            continue
        by_label = {h: float(probs.get(h, 0.0)) for h in mod.harmful}
        route = near_threshold(mod, by_label, band)
        if route is None or mod.control.value_key not in data:
            continue
        text = control_text(mod.control, data, task_ref=f"task {task_id}", max_chars=services.settings.max_text_chars)
        _, new = reviews.upsert_open_item(
            NewItem(
                project_id=project.id,
                queue=LOW_CONFIDENCE,
                control=mod.control.name,
                value_key=mod.control.value_key,
                text=text,
                source="scan",
                predicted=mod.flags(by_label),
                score=mod.harm_score(by_label),
                margin=route.margin,
                model_version=version,
                reason=route.reason,
                task_id=task_id,
            )
        )
        created += int(new)
    return created
