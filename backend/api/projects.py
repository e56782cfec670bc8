"""tagloop's own API: project status and training requests."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from backend.errors import NotFound, UnprocessableRequest
from backend.labelstudio.label_config import parse_label_config
from backend.services import get_services

bp = Blueprint("projects", __name__, url_prefix="/api/projects")


@bp.get("/<int:project_id>")
def status(project_id: int) -> Response:
    """Labels, served version with its metrics, versions and the training job's state."""
    services = get_services()
    project = services.store.get_project(project_id)
    if project is None:
        raise NotFound(
            f"project {project_id} is not known to tagloop; known: "
            f"{[p.id for p in services.store.list_projects()][:50]}"
        )
    spec = parse_label_config(project.label_config)
    served = services.models.served_version(project, spec)
    versions = services.store.list_versions(project_id)
    current = next((v for v in versions if v.name == served), None)
    return jsonify(
        {
            "project": project_id,
            "controls": [
                {"name": c.name, "labels": list(c.labels), "multi_label": c.multi_label} for c in spec.controls
            ],
            "labels_usable": services.store.count_usable(project_id),
            "model_version": served,
            "current": _version_json(current) if current else None,
            "versions": [_version_json(v) for v in versions],
            "training": {tier: services.trainer.status(project_id, tier) for tier in ("fast", "setfit")},
        }
    )


@bp.post("/<int:project_id>/train")
def train(project_id: int) -> tuple[Response, int]:
    """Queue a training of the project in the background (``?tier=fast|setfit``, default setfit)."""
    services = get_services()
    tier = request.args.get("tier", "setfit")
    if tier not in ("fast", "setfit"):
        raise UnprocessableRequest(f"tier: got {tier!r}, expected one of ['fast', 'setfit']")
    if services.store.get_project(project_id) is None:
        raise NotFound(f"project {project_id} is not known to tagloop")
    return jsonify({"status": services.trainer.request(project_id, "API request", tier), "tier": tier}), 202


def _version_json(v: object) -> dict[str, object]:
    fields = ("name", "tier", "status", "n_train", "label_counts", "metrics", "train_seconds", "created_at")
    out = {f: getattr(v, f) for f in fields}
    out["created_at"] = str(out["created_at"])
    return out
