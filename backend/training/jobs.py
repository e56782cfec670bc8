"""``train_project``: stored labels of a project → a new, published model version."""

from __future__ import annotations

import logging
import shutil

from backend.labelstudio.client import set_project_model_version
from backend.labelstudio.label_config import parse_label_config
from backend.services import Services
from backend.store.records import ModelVersionRecord
from backend.training.dataset import control_data
from backend.training.setfit_training import train_setfit

log = logging.getLogger(__name__)
TIER = "setfit"


def train_project(services: Services, project_id: int) -> str:
    """Train on the project's usable labels, save, record, publish; returns the new version name."""
    store, settings = services.store, services.settings
    project = store.get_project(project_id)
    if project is None:
        raise LookupError(f"project {project_id} is unknown to tagloop; connect it from Label Studio first")
    spec = parse_label_config(project.label_config)
    examples = store.training_set(project_id)
    data = control_data(spec, examples, max_chars=settings.max_text_chars)
    version = f"{project_id}-{TIER}-{store.count_versions(project_id, TIER) + 1}"
    log.info("training %s on %d labeled tasks", version, len(examples))
    result = train_setfit(spec, data, services.models.base_path, settings, version)
    path = settings.models_dir / str(project_id) / version
    if path.exists():
        shutil.rmtree(path)
    result.classifier.save(path)
    store.add_version(
        ModelVersionRecord(
            name=version,
            project_id=project_id,
            tier=TIER,
            n_train=result.n_train,
            label_counts=result.label_counts,
            metrics=result.metrics,
            train_seconds=round(result.seconds, 2),
            artifact_path=str(path.resolve()),
            config_hash=spec.config_hash,
        )
    )
    store.set_current_version(project_id, version)
    services.models.publish(project_id, result.classifier)
    log.info("published %s (%.1f s, metrics %s)", version, result.seconds, result.metrics)
    if project.ls_url and project.ls_token:
        set_project_model_version(project.ls_url, project.ls_token, project_id, version)
    return version
