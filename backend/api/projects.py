"""tagloop's own API: project status, training requests and rollback."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, Response

from backend.api.http import answer, get_services, parse_body, parse_query
from backend.api.openapi import operation
from backend.api.schemas import (
    JobQueued,
    ProjectStatus,
    QueueAnswer,
    RollbackAnswer,
    RollbackBody,
    StrategyAnswer,
    StrategyBody,
    TrainQuery,
)
from backend.errors import NotFound, UnprocessableRequest
from backend.insights import insights
from backend.jobs.kinds import TRAINING_KINDS, JobKind, parse_kind
from backend.labelstudio.label_config import parse_label_config
from backend.ranking import queue_strategy, strategy_name
from backend.services import Services
from backend.store.records import ModelVersionRecord
from strategies import REGISTRY, StrategyError, get_strategy

bp = Blueprint("projects", __name__, url_prefix="/api/projects")


@bp.get("/<int:project_id>")
@bp.get("/<int:project_id>/status")
@operation("Labels, served version and metrics, versions, jobs and the last error of a project", {200: ProjectStatus})
def status(project_id: int) -> tuple[Response, int]:
    """Labels, served version with its metrics, versions, queued/running jobs with progress, last error."""
    return answer(ProjectStatus, project_status(get_services(), project_id))


def project_status(services: Services, project_id: int) -> dict[str, Any]:
    """The status document (shared by the API and ``tagloop status``)."""
    project = services.store.projects.get(project_id)
    if project is None:
        known = [p.id for p in services.store.projects.all()][:50]
        raise NotFound(f"project {project_id} is not known to tagloop; known: {known}")
    spec = parse_label_config(project.label_config)
    served = services.models.served_version(project, spec)
    versions = services.store.versions.of_project(project_id)
    current = next((v for v in versions if v.name == served), None)
    last = {kind.value: services.jobs.latest(project_id, kind) for kind in JobKind}
    errors = [j for j in last.values() if j is not None and j.error]
    usable = services.store.annotations.count(project_id, usable=True)
    return {
        "project": project_id,
        "controls": [{"name": c.name, "labels": list(c.labels), "multi_label": c.multi_label} for c in spec.controls],
        "labels_seen": services.store.annotations.count(project_id),
        "labels_usable": usable,
        "model_version": served,
        "strategy": strategy_name(services.settings, project, spec),
        "queue_strategy": queue_strategy(services.settings, project, spec, n_labeled=usable),
        "current": version_json(current) if current else None,
        "versions": [version_json(v) for v in versions],
        "jobs": [j.as_json() for j in services.jobs.active(project_id)],
        "training": {tier: (job.as_json() if job else None) for tier, job in last.items()},
        "last_error": max(errors, key=lambda j: j.id).error if errors else None,
        "label_studio": {
            "url": project.ls_url,
            "detached": project.detached,
            "detached_at": project.detached_at,
            "detached_reason": project.detached_reason or None,
            "failing_since": project.ls_failing_since,
        },
        **insights(services.store, project_id, services.settings),  # acceptance, stopping criteria
        **{k: v for hook in services.hooks.project_status for k, v in hook(services, project_id).items()},
    }


@bp.post("/<int:project_id>/train")
@operation("Queue a training of the project", {202: JobQueued}, query=TrainQuery, errors=(422,))
def train(project_id: int) -> tuple[Response, int]:
    """Queue a training of the project in the background (``?tier=fast|setfit|transformer``, default: the
    ``slow_tier`` setting)."""
    services = get_services()
    tier = parse_kind(parse_query(TrainQuery).tier or services.settings.slow_tier, TRAINING_KINDS).value
    if services.store.projects.get(project_id) is None:
        raise NotFound(f"project {project_id} is not known to tagloop")
    return answer(JobQueued, {"status": services.request_job(project_id, tier, "API request"), "tier": tier}, 202)


@bp.post("/<int:project_id>/rollback")
@operation("Serve a kept version again", {200: RollbackAnswer}, body=RollbackBody, errors=(422,))
def rollback(project_id: int) -> tuple[Response, int]:
    """Serve an earlier version again: body ``{"version": name}``; Label Studio is updated in the background."""
    body = parse_body(RollbackBody)
    return answer(RollbackAnswer, rollback_to(get_services(), project_id, body.version))


def rollback_to(services: Services, project_id: int, version: str) -> dict[str, Any]:
    """Make ``version`` current (shared by the API and ``tagloop rollback``)."""
    project = services.store.projects.get(project_id)
    if project is None:
        raise NotFound(f"project {project_id} is not known to tagloop")
    kept = {v.name: v for v in services.store.versions.of_project(project_id) if v.artifact_path}
    if version not in kept:
        raise UnprocessableRequest(f"version: got {version!r}, expected one of the kept versions {sorted(kept)}")
    services.store.projects.set_current_version(project_id, version)
    services.request_job(project_id, "push", f"rollback to {version}")
    return {"project": project_id, "model_version": version, "previous": project.current_version}


@bp.get("/<int:project_id>/queue")
@operation("Task ids pushed to Label Studio for the served version, in queue order", {200: QueueAnswer})
def queue(project_id: int) -> tuple[Response, int]:
    """The task ids tagloop pushed to Label Studio for the served version, in queue order (first = next), then the
    protected ones outside the head that keep an earlier version's prediction; ``protected``: the tasks an annotator
    may have open, whose predictions the pushes keep."""
    services = get_services()
    project = services.store.projects.get(project_id)
    if project is None:
        raise NotFound(f"project {project_id} is not known to tagloop")
    spec = parse_label_config(project.label_config)
    return answer(
        QueueAnswer,
        {
            "project": project_id,
            "model_version": services.models.served_version(project, spec),
            "strategy": strategy_name(services.settings, project, spec),
            "queue_strategy": queue_strategy(
                services.settings, project, spec, n_labeled=services.store.annotations.count(project_id, usable=True)
            ),
            "tasks": list(project.pushed_tasks),
            "protected": sorted(project.protected_tasks),
        },
    )


@bp.get("/<int:project_id>/strategy")
@operation("The project's query strategy and the registered names", {200: StrategyAnswer})
def get_strategy_setting(project_id: int) -> tuple[Response, int]:
    """The project's query strategy, whether it is its own or the default, and the registered names."""
    return answer(StrategyAnswer, strategy_json(get_services(), project_id))


@bp.put("/<int:project_id>/strategy")
@operation(
    "Set the project's query strategy (null: the default) and re-rank its queue",
    {200: StrategyAnswer},
    body=StrategyBody,
    errors=(422,),
)
def put_strategy_setting(project_id: int) -> tuple[Response, int]:
    """Set the strategy (``{"strategy": name}``; ``null`` for the default) and re-rank the queue in LS."""
    body = parse_body(StrategyBody)
    return answer(StrategyAnswer, set_strategy(get_services(), project_id, body.strategy or ""))


def strategy_json(services: Services, project_id: int) -> dict[str, Any]:
    """Shared by the API and ``tagloop strategy``."""
    project = services.store.projects.get(project_id)
    if project is None:
        raise NotFound(f"project {project_id} is not known to tagloop")
    spec = parse_label_config(project.label_config)
    return {
        "project": project_id,
        "strategy": strategy_name(services.settings, project, spec),
        "project_setting": project.strategy or None,
        "available": sorted(REGISTRY),
    }


def set_strategy(services: Services, project_id: int, name: str) -> dict[str, Any]:
    """Validate and store a project's strategy, then queue a re-push of the queue."""
    if services.store.projects.get(project_id) is None:
        raise NotFound(f"project {project_id} is not known to tagloop")
    if name:
        try:
            get_strategy(name)
        except StrategyError as exc:
            raise UnprocessableRequest(f"strategy: {exc}") from None
    services.store.projects.set_strategy(project_id, name)
    services.request_job(project_id, "push", f"strategy set to {name or 'default'}")
    return strategy_json(services, project_id)


def version_json(v: ModelVersionRecord) -> dict[str, Any]:
    """A version as JSON."""
    fields = ("name", "tier", "status", "n_train", "label_counts", "metrics", "train_seconds", "artifact_path")
    out: dict[str, Any] = {f: getattr(v, f) for f in fields}
    out["created_at"] = datetime.fromtimestamp(v.created_at, UTC).isoformat() if v.created_at else None
    return out
