"""The review package's hook for ``GET /metrics`` (``backend.api.metrics.psi_families``): the PSI of each moderated
project's served version, read from the store at scrape time (no model is loaded)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from sqlalchemy import inspect

from backend.errors import UnsupportedLabelConfig
from backend.labelstudio.label_config import parse_label_config
from backend.review.moderation import moderation_control
from backend.review.status import drift

if TYPE_CHECKING:
    from backend.services import Services


def psi_values(services: Services) -> Iterator[tuple[int, str, float]]:
    """``(project_id, model_version, psi)`` per moderated project whose served version has enough reference and
    served scores for a PSI (``drift.MIN_SAMPLES`` of each); nothing while the review tables do not exist."""
    if not inspect(services.store.engine).has_table("served_scores"):
        return
    named, bands = services.settings.harmful_label_set, services.settings.psi_thresholds
    for project in services.store.projects.all():
        try:
            spec = parse_label_config(project.label_config)
        except UnsupportedLabelConfig:
            continue
        if moderation_control(spec, named) is None:
            continue
        version = services.models.served_version(project, spec)
        value = drift(services, project.id, version, bands)["psi"]
        if value is not None:
            yield project.id, version, float(value)
