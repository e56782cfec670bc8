"""The review job (tier ``review``, run by any worker): scan for low-confidence flags and for labeled tasks whose
served prediction the label contradicts (labels that came without a webhook), score reported items,
mirror the queues into Label Studio's review projects, read back verdicts, prune served scores."""

from __future__ import annotations

import base64
import logging
from typing import TYPE_CHECKING, Any

from backend.errors import RequestError
from backend.labelstudio.label_config import LabelSpec
from backend.loop.jobs import client_for
from backend.review.labelstudio import ReviewProjects
from backend.review.moderation import moderation_control
from backend.review.queues import DEFAULT_ORDER, QUEUES, order_items, route_disagreement
from backend.review.routing import review_store, scan_disagreements, scan_low_confidence, version_moderation
from backend.review.verdicts import apply_verdict, moderator_of, source_control, verdict_labels
from backend.store.records import ProjectRecord
from backend.store.review import OPEN

if TYPE_CHECKING:
    from label_studio_sdk import LabelStudio

    from backend.services import Services

log = logging.getLogger(__name__)
KEEP_SERVED_WINDOWS = 2
"""Served scores kept per version, in ``psi_window`` units."""
PUSH_LIMIT = 200
"""Items pushed to a review project per run (the head of the queue; the rest follow in later runs)."""


def run_review_job(services: Services, project_id: int, spec: LabelSpec) -> dict[str, Any]:
    """One pass of the review loop for a project; returns the job's result."""
    project = services.store.projects.get(project_id)
    control = moderation_control(spec, services.settings.harmful_label_set)
    if project is None or control is None:
        return {"skipped": "project not moderated"}
    services.served.flush()  # the scans read what /predict recorded
    version = services.models.served_version(project, spec)
    low = scan_low_confidence(services, project, spec, version)
    missed = scan_disagreements(services, project, spec)
    scored = score_reported(services, project, spec)
    review_store(services).prune_served(project_id, version, keep=services.settings.psi_window * KEEP_SERVED_WINDOWS)
    return {
        "low_confidence_items": low,
        "disagreement_items": missed,
        "reported_items_scored": scored,
        "label_studio": sync_label_studio(services, project, spec),
    }


def score_reported(services: Services, project: ProjectRecord, spec: LabelSpec) -> int:
    """Give open items reported without a model score (``/api/feedback``) the served version's score."""
    reviews = review_store(services)
    todo = [i for i in reviews.items(project.id) if i.score is None]
    if not todo:
        return 0
    model = services.models.get(project, spec)
    mod = version_moderation(services, spec, model.version)
    if mod is None:
        return 0
    texts = [i.text for i in todo]
    proba = services.models.predict(model, {mod.control.name: texts}).probas[mod.control.name]
    for item, row in zip(todo, proba, strict=True):
        by_label = mod.row(row)
        route = route_disagreement(mod, mod.flags(by_label), list(item.human), by_label)
        margin = route.margin if route is not None and route.queue == item.queue else 0.0
        reviews.set_scored(
            item.id, score=mod.harm_score(by_label), margin=float(margin or 0.0), model_version=model.version
        )
    return len(todo)


def label_studio(services: Services, project: ProjectRecord) -> LabelStudio | None:
    """The SDK client of the project's Label Studio (``backend.loop.jobs.client_for``), or None."""
    client = client_for(services, project)
    return client.sdk if client is not None else None


def webhook_headers(services: Services) -> dict[str, str]:
    """Credentials Label Studio must send to tagloop's /webhook (Basic, when ``basic_auth_user`` is set)."""
    settings = services.settings
    if not settings.basic_auth_user:
        return {}
    pair = f"{settings.basic_auth_user}:{settings.basic_auth_password}".encode()
    return {"Authorization": "Basic " + base64.b64encode(pair).decode("ascii")}


def sync_label_studio(services: Services, project: ProjectRecord, spec: LabelSpec) -> dict[str, Any]:
    """Read verdicts back, remove dismissed items' tasks, push new items, per queue."""
    sdk = label_studio(services, project)
    control = moderation_control(spec, services.settings.harmful_label_set)
    if sdk is None or control is None:
        return {"skipped": "no Label Studio URL/token: queues not mirrored"}
    reviews = review_store(services)
    projects = ReviewProjects(sdk, reviews, webhook_headers=webhook_headers(services))
    verdicts = collect_verdicts(services, projects, project.id)
    removed = projects.remove(reviews.stale_ls_tasks(project.id))
    pushed = 0
    for queue in QUEUES:
        pending = [i for i in reviews.items(project.id, queue=queue) if i.ls_task_id is None]
        if pending:
            target = projects.ensure(project.id, control, queue)
            ordered = order_items(pending, lambda i: i.margin, DEFAULT_ORDER[queue])
            pushed += projects.push(target, ordered[:PUSH_LIMIT])
    return {"pushed": pushed, "removed": removed, "verdicts_read_back": verdicts}


def collect_verdicts(services: Services, projects: ReviewProjects, project_id: int) -> int:
    """Apply verdicts given in Label Studio whose webhook never reached tagloop (the newest annotation wins)."""
    reviews, applied = review_store(services), 0
    for target in reviews.review_projects(project_id):
        for task in projects.annotated_tasks(target):
            item = reviews.item_by_ls_task(target.ls_project_id, int(task["id"]))
            done = [a for a in task["annotations"] if not a.get("was_cancelled")]
            if item is None or item.state != OPEN or not done:
                continue
            latest = max(done, key=lambda a: (str(a.get("updated_at") or ""), int(a.get("id") or 0)))
            try:
                labels = verdict_labels(latest.get("result"), source_control(services, item))
            except RequestError as exc:
                log.warning("review item %s: verdict in Label Studio skipped: %s", item.id, exc.reason)
                continue
            apply_verdict(services, item, labels, moderator_of(latest))
            applied += 1
    return applied
