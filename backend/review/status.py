"""What the API, ``tagloop status`` and ``tagloop review`` show: queue sizes and throughput, items in queue
order, the served version's thresholds and its PSI."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import numpy as np

from backend.errors import NotFound, UnprocessableRequest
from backend.labelstudio.label_config import parse_label_config
from backend.review.drift import drift_report
from backend.review.feedback import MAX_ID
from backend.review.moderation import harmful_labels, moderation_control, stored_thresholds
from backend.review.queues import DEFAULT_ORDER, ORDERS, QUEUES, order_items
from backend.review.routing import review_store
from backend.store.records import ReviewItemRecord
from backend.store.review import DISMISSED, OPEN, RESOLVED

if TYPE_CHECKING:
    from backend.services import Services

DAY = 86_400.0
STATES = (OPEN, RESOLVED, DISMISSED)


def review_summary(services: Services, project_id: int) -> dict[str, Any]:
    """Per queue: open items, resolved (total and in the last 24 h: throughput), dismissed, its Label Studio
    project and default order; plus the moderation control, the served version's thresholds and PSI."""
    project = services.store.projects.get(project_id) if project_id <= MAX_ID else None
    if project is None:
        raise NotFound(f"project {project_id} is not known to tagloop")
    spec = parse_label_config(project.label_config)
    named = services.settings.harmful_label_set
    control = moderation_control(spec, named)
    if control is None:
        return {"project": project_id, "moderated": False, "queues": {}}
    services.served.flush()  # the served scores PSI compares
    reviews = review_store(services)
    counts = reviews.queue_counts(project_id, since=time.time() - DAY)
    ls_projects = {p.queue: p.ls_project_id for p in reviews.review_projects(project_id)}
    served = services.models.served_version(project, spec)
    record = services.store.versions.get(served)
    return {
        "project": project_id,
        "moderated": True,
        "control": control.name,
        "harmful": list(harmful_labels(control, named)),
        "queues": {
            q: {
                "open": counts.get(q, {}).get(OPEN, 0),
                "resolved": counts.get(q, {}).get(RESOLVED, 0),
                "resolved_24h": counts.get(q, {}).get("resolved_recent", 0),
                "dismissed": counts.get(q, {}).get(DISMISSED, 0),
                "order": DEFAULT_ORDER[q],
                "label_studio_project": ls_projects.get(q),
            }
            for q in QUEUES
        },
        "model_version": served,
        "thresholds": ((record.metrics.get("review") or {}).get("thresholds") if record else None) or {},
        "thresholds_in_force": stored_thresholds(record.metrics if record else None),
        "drift": drift(services, project_id, served, services.settings.psi_thresholds),
    }


def drift(services: Services, project_id: int, version: str, bands: tuple[float, float]) -> dict[str, Any]:
    """PSI of the version's newest ``psi_window`` served scores against its reference window."""
    reviews = review_store(services)
    reference = np.array(reviews.scores(project_id, version, "reference", newest=1_000_000))
    current = np.array(reviews.scores(project_id, version, "served", newest=services.settings.psi_window))
    return {**drift_report(version, reference, current, bands).as_json(), "bands": list(bands)}


def queue_items(
    services: Services, project_id: int, queue: str, *, order: str | None = None, state: str = OPEN, limit: int = 100
) -> list[ReviewItemRecord]:
    """A queue's items in queue order (``order`` defaults to the queue's own)."""
    if queue not in QUEUES:
        raise UnprocessableRequest(f"queue: got {queue!r}, expected one of {list(QUEUES)}")
    order = order or DEFAULT_ORDER[queue]
    if order not in ORDERS:
        raise UnprocessableRequest(f"order: got {order!r}, expected one of {list(ORDERS)}")
    if state not in STATES:
        raise UnprocessableRequest(f"state: got {state!r}, expected one of {list(STATES)}")
    if project_id > MAX_ID or services.store.projects.get(project_id) is None:
        raise NotFound(f"project {project_id} is not known to tagloop")
    items = review_store(services).items(project_id, queue=queue, states=(state,))
    return order_items(items, lambda i: i.margin, order)[:limit]
