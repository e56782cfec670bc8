"""The review plug-in's families for ``GET /metrics``, read from the store at scrape time (no model is loaded):
``tagloop_psi{project, version}`` (PSI of each moderated project's served version) and
``tagloop_review_queue_items{project, queue, state}``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
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


def metric_families(services: Services) -> list[Metric]:
    """PSI per moderated project and review items by (project, queue, state)."""
    psi = GaugeMetricFamily(
        "tagloop_psi",
        "Population stability index of served scores vs the version's reference.",
        labels=["project", "version"],
    )
    for pid, version, value in psi_values(services):
        psi.add_metric([str(pid), str(version)], float(value))
    items = GaugeMetricFamily(
        "tagloop_review_queue_items",
        "Moderation review items by project, queue and state.",
        labels=["project", "queue", "state"],
    )
    for project in services.store.projects.all():
        for queue, states in services.store.review.queue_counts(project.id, since=0.0).items():
            for state, n in states.items():
                if state != "resolved_recent":
                    items.add_metric([str(project.id), str(queue), str(state)], float(n))
    return [psi, items]
