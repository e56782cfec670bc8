"""The Label Studio ML backend protocol: ``GET /health``, ``POST /setup``, ``/predict``, ``/webhook``."""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, Response, jsonify

from backend.api.http import json_body
from backend.errors import RequestError, UnprocessableRequest
from backend.labelstudio.label_config import LabelSpec, parse_label_config
from backend.labelstudio.payloads import (
    annotation_record,
    control_text,
    parse_predict,
    parse_project_id,
    parse_webhook,
    require_object,
)
from backend.labelstudio.predictions import prediction, served_summary
from backend.review.routing import route_annotation, served_scores
from backend.review.verdicts import handle_review_event, review_project_of
from backend.services import Services, get_services
from backend.store.records import ProjectRecord
from backend.training.policy import should_train

log = logging.getLogger(__name__)
bp = Blueprint("labelstudio", __name__)
MODEL_CLASS = "tagloop.SetFit"


@bp.get("/health")
def health() -> Response:
    """Liveness for Label Studio (called often, with a 1 s timeout: no model work here)."""
    return jsonify({"status": "UP", "model_class": MODEL_CLASS})


@bp.post("/setup")
def setup() -> Response:
    """Register a project's config and Label Studio address; answer with the version that will serve."""
    body = require_object(json_body())
    project_id = parse_project_id(body.get("project"))
    if project_id is None:
        raise RequestError("'project': missing; expected the Label Studio project id")
    schema = body.get("schema")
    if not isinstance(schema, str):
        raise RequestError("'schema': expected the labeling config XML as a string")
    services = get_services()
    project, spec = _register(services, project_id, schema, body.get("hostname"), body.get("access_token"))
    services.catch_up_if_due(project)
    return jsonify(
        {
            "model_version": services.models.served_version(project, spec),
            "controls": [c.name for c in spec.controls],
            "ignored": list(spec.ignored),
        }
    )


@bp.post("/predict")
def predict() -> Response:
    """Pre-annotations for the given tasks, one entry per task, in request order."""
    services = get_services()
    services.activity.mark()  # training on this machine pauses between steps while requests come in
    settings = services.settings
    req = parse_predict(json_body(), max_tasks=settings.max_tasks_per_request)
    project, spec = _project_for(services, req.project_id, req.label_config)
    texts: dict[str, list[str]] = {c.name: [] for c in spec.controls}
    for i, task in enumerate(req.tasks):
        ref = f"tasks[{i}] (id {task.id})"
        for c in spec.controls:
            texts[c.name].append(control_text(c, task.data, task_ref=ref, max_chars=settings.max_text_chars))
    model = services.models.get(project, spec)
    served = services.models.predict(model, texts)  # batched with concurrent requests, embeddings cached
    probas, threshold = served.probas, settings.multi_label_threshold
    results = [
        prediction(spec, probas, row, model_version=model.version, threshold=threshold, truncated=served.truncated)
        for row in range(len(req.tasks))
    ]
    if project.id > 0:  # written behind the response: bookkeeping, not acknowledged data
        services.served.add(
            project.id,
            tasks={t.id: t.data for t in req.tasks if t.id is not None},
            predictions={t.id: served_summary(r) for t, r in zip(req.tasks, results, strict=True) if t.id},
            version=model.version,
            scores=served_scores(services, spec, probas),  # for PSI against the reference window
        )
    return jsonify({"results": results, "model_version": model.version})


@bp.post("/webhook")
def webhook() -> tuple[Response, int]:
    """Persist annotation events before answering; training is only queued here."""
    services = get_services()
    event = parse_webhook(json_body())
    services.served.flush()  # review routing and training read what /predict recorded
    if (review_project := review_project_of(services, event)) is not None:  # a moderator's verdict
        return jsonify(handle_review_event(services, event, review_project)), 200
    if event.action in ("ANNOTATION_CREATED", "ANNOTATION_UPDATED"):
        project, spec = _project_for(services, event.project_id, event.label_config)
        record = annotation_record(event, spec)
        data = event.task.get("data") if event.task is not None else None
        if not isinstance(data, dict) and services.store.get_task(record.task_id) is None:
            raise UnprocessableRequest(f"task {record.task_id}: the event has no task data and tagloop never saw it")
        changed = services.store.upsert_annotation(record, task_data=data if isinstance(data, dict) else None)
        routed = route_annotation(services, project, spec, record) if changed else None  # FP/FN review queues
        training = _maybe_train(services, project)
        return jsonify({"status": "stored", "changed": changed, "training": training, "review": routed}), 200
    if event.action == "ANNOTATIONS_DELETED":
        return jsonify({"status": "deleted", "changed": services.store.mark_deleted(event.deleted_ids)}), 200
    if event.action == "TASKS_CREATED":
        project, _ = _project_for(services, event.project_id, event.label_config)
        return jsonify({"status": "stored", "changed": services.store.upsert_tasks(project.id, event.tasks)}), 200
    if event.action == "START_TRAINING":
        if event.project_id is None:
            raise RequestError("START_TRAINING: 'project' with an id is required")
        project, _ = _project_for(services, event.project_id, event.label_config)
        slow = services.settings.slow_tier
        return jsonify({"status": services.request_training(project.id, slow, "START_TRAINING"), "tier": slow}), 201
    return jsonify({"status": "ignored", "note": f"event {event.action!r} is not used by tagloop"}), 200


def _maybe_train(services: Services, project: ProjectRecord) -> dict[str, str] | None:
    """Queue the fast tier on every new label and the slow tier every ``train_every`` labels."""
    settings = services.settings
    usable = services.store.count_usable(project.id)
    if usable < settings.min_labels_to_train:
        return None
    queued: dict[str, str] = {}
    if settings.fast_tier:
        queued["fast"] = services.request_training(project.id, "fast", "new label")
    slow = services.store.latest_version(project.id, settings.slow_tier)
    trained_on = slow.n_train if slow else 0
    if should_train(usable, trained_on, train_every=settings.train_every, min_labels=settings.min_labels_to_train):
        reason = f"{usable - trained_on} new labels"
        queued[settings.slow_tier] = services.request_training(project.id, settings.slow_tier, reason)
    return queued or None


def _register(
    services: Services, project_id: int, schema: str, hostname: Any = None, token: Any = None
) -> tuple[ProjectRecord, LabelSpec]:
    spec = parse_label_config(schema)
    project = services.store.upsert_project(
        project_id,
        schema,
        spec.config_hash,
        ls_url=hostname if isinstance(hostname, str) else "",
        ls_token=token if isinstance(token, str) else "",
    )
    return project, spec


def _project_for(
    services: Services, project_id: int | None, label_config: str | None
) -> tuple[ProjectRecord, LabelSpec]:
    """The project and its parsed config; a config in the request updates the stored one."""
    stored = services.store.get_project(project_id) if project_id is not None else None
    if label_config is not None and (stored is None or stored.label_config != label_config):
        if project_id is None:
            spec = parse_label_config(label_config)
            return ProjectRecord(id=0, label_config=label_config, config_hash=spec.config_hash), spec
        return _register(services, project_id, label_config)
    if stored is None:
        raise UnprocessableRequest(
            f"project {project_id!r} is not set up in tagloop and the request has no label_config; "
            "connect the model in Label Studio (which calls /setup) or send label_config"
        )
    return stored, parse_label_config(stored.label_config)
