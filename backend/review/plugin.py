"""Moderation review as a plug-in: ``install`` subscribes the review queues to the core's hooks
(``backend.hooks``) and registers the ``review`` job. The core never imports this package; ``backend.bootstrap``
installs it when ``TAGLOOP_PLUGINS`` names ``review`` (the default). It acts only on moderated projects (a
``<Choices>`` with harmful labels, see ``moderation``).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from backend.jobs.kinds import JobKind
from backend.labelstudio.label_config import LabelSpec, parse_label_config
from backend.store.records import Example, ProjectRecord

if TYPE_CHECKING:
    from flask import Blueprint

    from backend.labelstudio.payloads import WebhookEvent
    from backend.services import Services

NAME = "review"


def install(services: Services) -> None:
    """Subscribe to the core's hooks and register the review job."""
    hooks = services.hooks
    hooks.event_received.append(_verdict)
    hooks.annotation_stored.append((NAME, _route))
    hooks.prediction_served.append(_served_scores)
    hooks.version_trained.append(_version_trained)
    hooks.training_labels.append(_moderator_labels)
    hooks.project_status.append(_status)
    hooks.upkeep.append(review_scan_if_due)
    hooks.metric_families.append(_metric_families)
    services.handlers.register(JobKind.REVIEW, _run)


def blueprints() -> list[Blueprint]:
    """The plug-in's HTTP endpoints: ``POST /api/feedback``, ``GET /api/projects/<id>/review``."""
    from backend.review.api import bp

    return [bp]


def _verdict(services: Services, event: WebhookEvent) -> dict[str, Any] | None:
    from backend.review.verdicts import handle_review_event, review_project_of

    target = review_project_of(services, event)
    return handle_review_event(services, event, target) if target is not None else None


def _route(services: Services, project: ProjectRecord, spec: LabelSpec, record: Any) -> dict[str, Any] | None:
    from backend.review.routing import route_annotation

    return route_annotation(services, project, spec, record)


def _served_scores(
    services: Services, project: ProjectRecord, spec: LabelSpec, probas: Mapping[str, np.ndarray], version: str
) -> list[float]:
    from backend.review.routing import served_scores

    return served_scores(services, spec, probas)


def _version_trained(services: Services, project: ProjectRecord, spec: LabelSpec, classifier: Any) -> dict[str, Any]:
    from backend.review.training import review_metrics

    return review_metrics(services, project.id, spec, classifier)


def _moderator_labels(services: Services, project_id: int, examples: list[Example]) -> list[Example]:
    return services.store.review.merge_moderator_labels(project_id, examples)


def _status(services: Services, project_id: int) -> dict[str, Any]:
    from backend.review.status import review_summary

    return {"review": review_summary(services, project_id)}


def _metric_families(services: Services) -> Iterable[Any]:
    from backend.review.metrics import metric_families

    return metric_families(services)


def _run(services: Services, context: Any) -> dict[str, Any]:
    from backend.review.job import run_review_job

    project = services.store.projects.get(context.job.project_id)
    if project is None:
        raise LookupError(f"project {context.job.project_id} is unknown to tagloop")
    return run_review_job(services, project.id, parse_label_config(project.label_config))


def review_scan_if_due(services: Services, project: ProjectRecord) -> bool:
    """Queue the review job of a moderated project when its last one is older than ``review_scan_every_s``
    (the periodic scan of served predictions, on top of the event-driven runs)."""
    from backend.review.moderation import moderation_control

    every = services.settings.review_scan_every_s
    if every <= 0 or project.detached:
        return False
    last = services.jobs.latest(project.id, JobKind.REVIEW)
    if last is not None and (last.state in ("queued", "running") or (last.finished_at or 0) > time.time() - every):
        return False
    if last is None and project.current_version is None:
        return False  # nothing served yet: the first version's training queues the first review job
    if moderation_control(parse_label_config(project.label_config), services.settings.harmful_label_set) is None:
        return False
    services.request_job(project.id, JobKind.REVIEW, "periodic review scan")
    return True
