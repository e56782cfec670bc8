"""What tagloop does with each Label Studio webhook event, in one unit of work (one transaction).

``handle_event`` stores first and decides second: an annotation is committed with the task it labels and with the
suggestion the annotator was shown (for acceptance), the review queues are updated, and trainings are queued; a
worker is woken only after the commit. Errors are the typed ``backend.errors`` ones; ``backend.api`` maps them to
HTTP statuses.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from backend.errors import RequestError, UnprocessableRequest
from backend.labelstudio.label_config import LabelSpec, parse_label_config
from backend.labelstudio.payloads import WebhookEvent, annotation_record
from backend.services import Services
from backend.store.records import AnnotationRecord, ProjectRecord
from backend.training.jobs import request_push
from backend.training.policy import should_train


def handle_event(services: Services, event: WebhookEvent) -> dict[str, Any]:
    """Apply one event; returns the JSON answer. The caller flushes ``services.served`` first (routing reads what
    /predict recorded) and wraps this in ``store.unit_of_work()``."""
    for claim in services.hooks.event_received:  # e.g. a moderator's verdict from a review project
        if (claimed := claim(services, event)) is not None:
            return claimed
    store = services.store
    if event.action in ("ANNOTATION_CREATED", "ANNOTATION_UPDATED"):
        project, spec = project_for(services, event.project_id, event.label_config)
        record = annotation_record(event, spec)
        data = event.task.get("data") if event.task is not None else None
        if not isinstance(data, dict) and store.tasks.get(project.id, record.task_id) is None:
            raise UnprocessableRequest(f"task {record.task_id}: the event has no task data and tagloop never saw it")
        record = with_suggestion(services, spec, record)
        changed = store.annotations.upsert(record, task_data=data if isinstance(data, dict) else None)
        answer: dict[str, Any] = {"status": "stored", "changed": changed, "training": maybe_train(services, project)}
        for name, stored in services.hooks.annotation_stored:  # e.g. moderation: FP/FN review queues
            answer[name] = stored(services, project, spec, record) if changed else None
        return answer
    if event.action == "ANNOTATIONS_DELETED":
        if event.project_id is None:
            raise RequestError("ANNOTATIONS_DELETED: 'project' with an id is required")
        return {"status": "deleted", "changed": store.annotations.mark_deleted(event.project_id, event.deleted_ids)}
    if event.action == "TASKS_CREATED":
        project, _ = project_for(services, event.project_id, event.label_config)
        imported = store.tasks.upsert(project.id, event.tasks)
        push = None  # new tasks get ranked and their queue pushed before the first label, not after it
        if imported and (project.ls_url or services.settings.label_studio_url) and not project.detached:
            push = request_push(services, project.id, f"{imported} tasks imported")
        return {"status": "stored", "changed": imported, "push": push}
    if event.action == "START_TRAINING":
        if event.project_id is None:
            raise RequestError("START_TRAINING: 'project' with an id is required")
        project, _ = project_for(services, event.project_id, event.label_config)
        slow = services.settings.slow_tier
        return {"status": services.request_job(project.id, slow, "START_TRAINING"), "tier": slow}
    return {"status": "ignored", "note": f"event {event.action!r} is not used by tagloop"}


def with_suggestion(services: Services, spec: LabelSpec, record: AnnotationRecord) -> AnnotationRecord:
    """``record`` with the suggestion its annotator was shown (the prediction tagloop last served or pushed for the
    task) and whether the submitted choices equal it on every control (None for a skip or no suggestion)."""
    served = services.store.tasks.served(record.project_id, record.task_id)
    prediction = served[1] if served else None
    if not prediction or not isinstance(prediction.get("choices"), dict):
        return record
    shown = {c.name: list(prediction["choices"].get(c.name, [])) for c in spec.controls}
    suggested = {"model_version": str(prediction.get("model_version", "")), "choices": shown}
    accepted = None
    if not record.was_cancelled:
        accepted = all(sorted(record.choices.get(name, [])) == sorted(labels) for name, labels in shown.items())
    return replace(record, suggested=suggested, accepted=accepted)


def maybe_train(services: Services, project: ProjectRecord) -> dict[str, str] | None:
    """Queue the fast tier on every new label and the slow tier every ``train_every`` labels."""
    settings = services.settings
    usable = services.store.annotations.count(project.id, usable=True)
    if usable < settings.min_labels_to_train:
        return None
    queued: dict[str, str] = {}
    if settings.fast_tier:
        queued["fast"] = services.request_job(project.id, "fast", "new label")
    trained_on = services.store.versions.trained_on(project.id, settings.slow_tier)
    if should_train(usable, trained_on, train_every=settings.train_every, min_labels=settings.min_labels_to_train):
        reason = f"{usable - trained_on} new labels"
        queued[settings.slow_tier] = services.request_job(project.id, settings.slow_tier, reason)
    return queued or None


def register(
    services: Services, project_id: int, schema: str, hostname: Any = None, token: Any = None
) -> tuple[ProjectRecord, LabelSpec]:
    """Store a project's config and Label Studio address (``/setup``); a detached project is attached again."""
    spec = parse_label_config(schema)
    project = services.store.projects.upsert(
        project_id,
        schema,
        spec.config_hash,
        ls_url=hostname if isinstance(hostname, str) else "",
        ls_token=token if isinstance(token, str) else "",
    )
    return project, spec


def project_for(
    services: Services, project_id: int | None, label_config: str | None
) -> tuple[ProjectRecord, LabelSpec]:
    """The project and its parsed config; a config in the request updates the stored one. A request without a
    project but with a config gets an unsaved project 0 (nothing is recorded for it)."""
    stored = services.store.projects.get(project_id) if project_id is not None else None
    if label_config is not None and (stored is None or stored.label_config != label_config):
        if project_id is None:
            spec = parse_label_config(label_config)
            return ProjectRecord(id=0, label_config=label_config, config_hash=spec.config_hash), spec
        return register(services, project_id, label_config)
    if stored is None:
        raise UnprocessableRequest(
            f"project {project_id!r} is not set up in tagloop and the request has no label_config; "
            "connect the model in Label Studio (which calls /setup) or send label_config"
        )
    if stored.detached:  # Label Studio uses the project after all: it costs jobs again
        return register(services, stored.id, stored.label_config)
    return stored, parse_label_config(stored.label_config)
