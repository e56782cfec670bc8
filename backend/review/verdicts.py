"""Moderators' verdicts: a review project's annotation becomes a training label with provenance ``moderator``
that overrides the annotator's label for the same text; the item (and every open item of that text) leaves its
queue, and a training of the project is queued."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from backend.errors import RequestError, UnprocessableRequest
from backend.labelstudio.label_config import ControlSpec, LabelSpec, parse_label_config
from backend.labelstudio.payloads import WebhookEvent, result_choices
from backend.review.routing import review_store
from backend.store.records import ReviewItemRecord, ReviewProjectRecord

if TYPE_CHECKING:
    from backend.services import Services


def review_project_of(services: Services, event: WebhookEvent) -> ReviewProjectRecord | None:
    """The review project the event comes from, or None (an ordinary project)."""
    if event.project_id is None or not 0 < event.project_id < 2**63:
        return None
    return review_store(services).review_project_by_ls(event.project_id)


def verdict_labels(result: Any, control: ControlSpec) -> list[str]:
    """The moderator's labels from a review annotation's ``result``, checked against the source control."""
    choices = result_choices(result, LabelSpec(controls=(control,), config_hash="")).get(control.name, [])
    if not control.multi_label and len(choices) != 1:
        raise UnprocessableRequest(
            f"verdict: got {choices} for single-choice control {control.name!r}; expected one of {list(control.labels)}"
        )
    return choices


def moderator_of(annotation: dict[str, Any]) -> str:
    """Who gave a verdict: the annotation's ``completed_by`` (email when Label Studio sends the user)."""
    author = annotation.get("completed_by")
    if isinstance(author, dict):
        author = author.get("email") or author.get("id")
    return str(author or "")


def handle_review_event(services: Services, event: WebhookEvent, target: ReviewProjectRecord) -> dict[str, Any]:
    """A webhook from a review project: apply the verdict of an annotation, ignore everything else."""
    if event.action not in ("ANNOTATION_CREATED", "ANNOTATION_UPDATED"):
        return {"status": "ignored", "note": f"event {event.action!r} of review project {target.ls_project_id}"}
    ann = event.annotation or {}
    task = ann.get("task")
    task_id = task.get("id") if isinstance(task, dict) else task
    if task_id is None and event.task is not None:
        task_id = event.task.get("id")
    if isinstance(task_id, bool) or not isinstance(task_id, int):
        raise RequestError(f"annotation.task: got {task_id!r}, expected an integer")
    item = review_store(services).item_by_ls_task(target.ls_project_id, task_id)
    if item is None:
        return {"status": "ignored", "note": f"task {task_id} of review project {target.ls_project_id} is no item"}
    if ann.get("was_cancelled"):
        return {"status": "ignored", "note": "the moderator skipped the item; it stays in the queue", "item": item.id}
    labels = verdict_labels(ann.get("result"), source_control(services, item))
    return apply_verdict(services, item, labels, moderator_of(ann))


def source_control(services: Services, item: ReviewItemRecord) -> ControlSpec:
    """The source project's control the item is about."""
    project = services.store.projects.get(item.project_id)
    if project is None:
        raise UnprocessableRequest(f"review item {item.id}: project {item.project_id} is no longer known")
    try:
        return parse_label_config(project.label_config).control(item.control)
    except KeyError as exc:
        raise UnprocessableRequest(f"review item {item.id}: {exc.args[0]}") from None


def apply_verdict(services: Services, item: ReviewItemRecord, labels: list[str], moderator: str) -> dict[str, Any]:
    """Store the moderator label, close the item (and open items of the same text), queue a training."""
    reviews = review_store(services)
    label_id = reviews.put_moderator_label(item, labels, moderator)
    closed = reviews.resolve(item, labels, moderator)
    settings = services.settings
    tier = "fast" if settings.fast_tier else settings.slow_tier
    training = services.request_job(item.project_id, tier, f"moderator verdict on review item {item.id}")
    return {
        "status": "verdict",
        "item": item.id,
        "queue": item.queue,
        "labels": labels,
        "moderator_label": label_id,
        "resolved": closed,
        "training": {tier: training},
    }
