"""The Label Studio ML backend protocol: ``GET /health``, ``POST /setup``, ``/predict``, ``/webhook``."""

from __future__ import annotations

import logging

from flask import Blueprint, Response

from backend.api.http import answer, get_services, json_body, parse_body
from backend.api.openapi import operation
from backend.api.schemas import EventAnswer, Health, PredictAnswer, SetupAnswer
from backend.labelstudio.payloads import WEBHOOK_BODIES, PredictBody, SetupBody, parse_webhook
from backend.labelstudio.predictions import prediction, served_summary
from backend.labelstudio.texts import control_text
from backend.loop.events import handle_event, project_for, register
from backend.ranking import certainty, strategy_name
from strategies import describe

log = logging.getLogger(__name__)
bp = Blueprint("labelstudio", __name__)
MODEL_CLASS = "tagloop.SetFit"


@bp.get("/health")
@operation("Liveness for Label Studio (no model work; never authenticated)", {200: Health})
def health() -> tuple[Response, int]:
    """Liveness for Label Studio (called often, with a 1 s timeout: no model work here)."""
    return answer(Health, {"status": "UP", "model_class": MODEL_CLASS})


@bp.post("/setup")
@operation(
    "Register a project's labeling config and Label Studio address", {200: SetupAnswer}, body=SetupBody, errors=(422,)
)
def setup() -> tuple[Response, int]:
    """Register a project's config and Label Studio address; answer with the version that will serve."""
    body = parse_body(SetupBody)
    services = get_services()
    project, spec = register(services, body.project, body.schema_, body.hostname, body.access_token)
    services.catch_up_if_due(project)
    version = services.models.served_version(project, spec)
    return answer(
        SetupAnswer,
        {"model_version": version, "controls": [c.name for c in spec.controls], "ignored": list(spec.ignored)},
    )


@bp.post("/predict")
@operation(
    "Pre-annotations for the given tasks, one per task, in request order",
    {200: PredictAnswer},
    body=PredictBody,
    errors=(422,),
)
def predict() -> tuple[Response, int]:
    """Pre-annotations for the given tasks, one entry per task, in request order."""
    services = get_services()
    services.activity.mark()  # training on this machine pauses between steps while requests come in
    settings = services.settings
    req = parse_body(PredictBody, max_tasks=settings.max_tasks_per_request)
    project, spec = project_for(services, req.project, req.label_config)
    texts: dict[str, list[str]] = {c.name: [] for c in spec.controls}
    for i, task in enumerate(req.tasks):
        ref = f"tasks[{i}] (id {task.id})"
        for c in spec.controls:
            texts[c.name].append(control_text(c, task.data, task_ref=ref, max_chars=settings.max_text_chars))
    model = services.models.get(project, spec)
    served = services.models.predict(model, texts)  # batched with concurrent requests, embeddings cached
    probas, threshold = served.probas, settings.multi_label_threshold
    scores = certainty(describe(strategy_name(settings, project, spec)), spec, probas)
    results = [
        prediction(
            spec,
            probas,
            row,
            model_version=model.version,
            threshold=threshold,
            score=float(scores[row]),
            truncated=served.truncated,
        )
        for row in range(len(req.tasks))
    ]
    if project.id > 0:  # written behind the response: bookkeeping, not acknowledged data
        hooks = services.hooks.prediction_served  # e.g. moderation: the scores PSI compares
        psi_scores = [x for hook in hooks for x in hook(services, project, spec, probas, model.version)]
        services.served.add(
            project.id,
            tasks={t.id: t.data for t in req.tasks if t.id is not None},
            predictions={t.id: served_summary(r) for t, r in zip(req.tasks, results, strict=True) if t.id},
            version=model.version,
            scores=psi_scores,
        )
    return answer(PredictAnswer, {"results": results, "model_version": model.version})


@bp.post("/webhook")
@operation(
    "Label Studio events: annotations are stored before the answer; training is only queued",
    {200: EventAnswer, 201: EventAnswer},
    body=WEBHOOK_BODIES,
    errors=(422,),
)
def webhook() -> tuple[Response, int]:
    """Persist annotation events before answering (one transaction); training is only queued here."""
    services = get_services()
    services.activity.mark()  # an annotator's submit is serving too: local training pauses while they come in
    event = parse_webhook(json_body())
    services.served.flush()  # review routing and acceptance read what /predict recorded
    with services.store.unit_of_work():
        done = handle_event(services, event)
    return answer(EventAnswer, done, 201 if event.action == "START_TRAINING" else 200)
