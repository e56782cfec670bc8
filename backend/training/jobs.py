"""``train_project``: stored labels of a project → a new, published model version."""

from __future__ import annotations

import logging
import shutil

from backend.labelstudio.client import LabelStudioClient
from backend.labelstudio.label_config import LabelSpec, parse_label_config
from backend.labelstudio.sync import push_version
from backend.models.classifier import TextClassifier
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
    sync_label_studio(services, project_id, spec, result.classifier)
    return version


def sync_label_studio(services: Services, project_id: int, spec: LabelSpec, model: TextClassifier) -> None:
    """Push the new version's top-K predictions to Label Studio; failures are logged, never raised."""
    settings = services.settings
    project = services.store.get_project(project_id)
    if project is None:
        return
    url = settings.label_studio_url or project.ls_url
    token = settings.label_studio_token or project.ls_token
    if not (url and token):
        log.info("project %s: no Label Studio URL/token (from /setup or settings); nothing pushed", project_id)
        return
    try:
        result = push_version(
            services.store,
            project,
            spec,
            model,
            top_k=settings.push_top_k,
            pool_limit=settings.push_pool_limit,
            max_chars=settings.max_text_chars,
            threshold=settings.multi_label_threshold,
            client=LabelStudioClient(url, token),
        )
    except Exception as exc:  # Label Studio down or refusing: the new version serves anyway
        log.warning("project %s: pushing %s to Label Studio at %s failed: %s", project_id, model.version, url, exc)
        return
    log.info("project %s: pushed %s (%s)", project_id, model.version, result)
