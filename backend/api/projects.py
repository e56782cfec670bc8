"""tagloop's own API: project status, training requests and rollback."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, Response, jsonify, request

from backend.api.http import get_services, json_body
from backend.errors import NotFound, RequestError, UnprocessableRequest
from backend.insights import insights
from backend.jobs.kinds import TRAINING_KINDS, JobKind, parse_kind
from backend.labelstudio.label_config import parse_label_config
from backend.ranking import strategy_name
from backend.services import Services
from backend.store.records import ModelVersionRecord
from strategies import REGISTRY, StrategyError, get_strategy

bp = Blueprint("projects", __name__, url_prefix="/api/projects")


@bp.get("/<int:project_id>")
@bp.get("/<int:project_id>/status")
def status(project_id: int) -> Response:
    """Labels, served version with its metrics, versions, queued/running jobs with progress, last error."""
    return jsonify(project_status(get_services(), project_id))


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
    return {
        "project": project_id,
        "controls": [{"name": c.name, "labels": list(c.labels), "multi_label": c.multi_label} for c in spec.controls],
        "labels_seen": services.store.annotations.count(project_id),
        "labels_usable": services.store.annotations.count(project_id, usable=True),
        "model_version": served,
        "strategy": strategy_name(services.settings, project, spec),
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
def train(project_id: int) -> tuple[Response, int]:
    """Queue a training of the project in the background (``?tier=fast|setfit|transformer``, default: the
    ``slow_tier`` setting)."""
    services = get_services()
    tier = parse_kind(request.args.get("tier", services.settings.slow_tier), TRAINING_KINDS).value
    if services.store.projects.get(project_id) is None:
        raise NotFound(f"project {project_id} is not known to tagloop")
    return jsonify({"status": services.request_job(project_id, tier, "API request"), "tier": tier}), 202


@bp.post("/<int:project_id>/rollback")
def rollback(project_id: int) -> Response:
    """Serve an earlier version again: body ``{"version": name}``; Label Studio is updated in the background."""
    body = json_body()
    version = body.get("version") if isinstance(body, dict) else None
    if not isinstance(version, str) or not version:
        raise RequestError("'version': expected the name of a kept version")
    return jsonify(rollback_to(get_services(), project_id, version))


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
def queue(project_id: int) -> Response:
    """The task ids tagloop pushed to Label Studio for the served version, in queue order (first = next), then the
    protected ones outside the head that keep an earlier version's prediction; ``protected``: the tasks an annotator
    may have open, whose predictions the pushes keep."""
    services = get_services()
    project = services.store.projects.get(project_id)
    if project is None:
        raise NotFound(f"project {project_id} is not known to tagloop")
    spec = parse_label_config(project.label_config)
    return jsonify(
        {
            "project": project_id,
            "model_version": services.models.served_version(project, spec),
            "strategy": strategy_name(services.settings, project, spec),
            "tasks": list(project.pushed_tasks),
            "protected": sorted(project.protected_tasks),
        }
    )


@bp.get("/<int:project_id>/strategy")
def get_strategy_setting(project_id: int) -> Response:
    """The project's query strategy, whether it is its own or the default, and the registered names."""
    return jsonify(strategy_json(get_services(), project_id))


@bp.put("/<int:project_id>/strategy")
def put_strategy_setting(project_id: int) -> Response:
    """Set the strategy (``{"strategy": name}``; ``null`` for the default) and re-rank the queue in LS."""
    body = json_body()
    name = body.get("strategy") if isinstance(body, dict) else None
    if name is not None and not isinstance(name, str):
        raise RequestError("'strategy': expected a strategy name or null")
    return jsonify(set_strategy(get_services(), project_id, name or ""))


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
