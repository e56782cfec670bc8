"""Prune old model artifacts: keep the newest ``keep_versions`` per project, the served one, and every body
a kept version still uses."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

from backend.store.sql_store import SqlStore

log = logging.getLogger(__name__)


def prune_versions(store: SqlStore, project_id: int, keep: int) -> list[str]:
    """Delete artifacts of versions beyond the newest ``keep`` (never the current one); returns their names."""
    project = store.projects.get(project_id)
    with_artifacts = [v for v in store.versions.of_project(project_id) if v.artifact_path]
    kept = {v.name for v in with_artifacts[-keep:]} | {project.current_version if project else None}
    bodies = {_body_path(Path(v.artifact_path)) for v in with_artifacts if v.name in kept}
    pruned = []
    for version in with_artifacts:
        if version.name in kept:
            continue
        path = Path(version.artifact_path).resolve()
        if any(body is not None and body.is_relative_to(path) for body in bodies):
            for name in ("heads.joblib", "meta.json"):  # its body still serves a kept version
                (path / name).unlink(missing_ok=True)
        else:
            shutil.rmtree(path, ignore_errors=True)
        store.versions.mark_pruned(version.name)
        pruned.append(version.name)
    if pruned:
        log.info("project %s: pruned %s", project_id, pruned)
    return pruned


def _body_path(artifact: Path) -> Path | None:
    try:
        meta = json.loads((artifact / "meta.json").read_text())
    except (OSError, ValueError):
        return None
    return Path(meta.get("body_path") or artifact / "body").resolve()
