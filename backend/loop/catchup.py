"""Catch-up: read back from Label Studio's API the tasks and annotations tagloop missed (it was down, connected
late, or Label Studio dropped a webhook), incrementally by task ``updated_at`` from the project's watermark, in
short reads that do not hold Label Studio's database against the annotators (``client``)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from backend.errors import RequestError
from backend.labelstudio.client import PAGE, LabelStudioClient
from backend.labelstudio.label_config import LabelSpec
from backend.labelstudio.payloads import WebhookEvent, annotation_record
from backend.store.sql_store import SqlStore

log = logging.getLogger(__name__)
LS_DATETIME = "%Y-%m-%dT%H:%M:%S.%fZ"


@dataclass(frozen=True)
class CatchUpResult:
    """What a catch-up read and changed."""

    tasks: int
    changed: int
    deleted: int
    watermark: str


def catch_up(store: SqlStore, project_id: int, spec: LabelSpec, client: LabelStudioClient) -> CatchUpResult:
    """Store the data of every task updated since the watermark (the pool tagloop ranks) and upsert the annotations
    of those that have any, or that tagloop holds live annotations of (an annotation gone from LS is deleted).

    Two kinds of short read (``client``): ``task_only`` pages of the changed tasks, then their annotations for the
    ones that need them; the watermark advances page by page, so an interrupted catch-up resumes where it stopped.
    """
    project = store.projects.get(project_id)
    watermark = project.synced_at if project else ""
    tasks = changed = deleted = 0
    newest = watermark
    page: list[dict[str, Any]] = []
    for task in client.tasks_updated_since(project_id, _minus_a_second(watermark)):
        page.append(task)
        if len(page) == PAGE:
            found = _apply(store, project_id, spec, client, page)
            tasks, changed, deleted = tasks + len(page), changed + found[0], deleted + found[1]
            newest = max(newest, *(str(t.get("updated_at") or "") for t in page))
            store.projects.set_synced_at(project_id, newest)
            page = []
    if page:
        found = _apply(store, project_id, spec, client, page)
        tasks, changed, deleted = tasks + len(page), changed + found[0], deleted + found[1]
        newest = max(newest, *(str(t.get("updated_at") or "") for t in page))
    store.projects.set_synced_at(project_id, newest)
    return CatchUpResult(tasks, changed, deleted, newest)


def _apply(
    store: SqlStore, project_id: int, spec: LabelSpec, client: LabelStudioClient, page: list[dict[str, Any]]
) -> tuple[int, int]:
    """One page of changed tasks: store their data, then fetch and apply the annotations of those that need it;
    returns (annotations changed, annotations deleted)."""
    store.tasks.upsert(project_id, [(int(t["id"]), dict(t.get("data") or {})) for t in page])
    ids = [int(t["id"]) for t in page]
    held = {a.task_id for t in ids for a in store.annotations.of_task(project_id, t) if not a.deleted}
    wanted = [
        int(t["id"])
        for t in page
        if int(t.get("total_annotations") or 0) + int(t.get("cancelled_annotations") or 0) > 0 or int(t["id"]) in held
    ]
    changed = deleted = 0
    for task in client.tasks_with_annotations(project_id, wanted) if wanted else ():
        seen = set()
        for ann in task.get("annotations") or []:
            seen.add(int(ann["id"]))
            changed += _upsert(store, project_id, spec, task, ann)
        snapshot = str(task.get("updated_at") or "")
        gone = [
            a.id
            for a in store.annotations.of_task(project_id, int(task["id"]))
            if a.id not in seen and not a.deleted and _older(a.ls_updated_at or a.ls_created_at, snapshot)
        ]
        deleted += store.annotations.mark_deleted(project_id, gone)
    return changed, deleted


def _older(annotation_time: str, snapshot: str) -> bool:
    """Whether an annotation we hold predates the task snapshot that no longer lists it. An annotation that
    arrived by webhook after the snapshot was taken is not "gone" (the listing raced its creation)."""
    if not annotation_time or not snapshot:
        return False
    try:
        parse = lambda t: datetime.fromisoformat(t.replace("Z", "+00:00")).astimezone(UTC)  # noqa: E731
        return parse(annotation_time) <= parse(snapshot)
    except ValueError:
        return False


def _upsert(store: SqlStore, project_id: int, spec: LabelSpec, task: dict[str, Any], ann: dict[str, Any]) -> int:
    event = WebhookEvent(
        action="ANNOTATION_UPDATED", project_id=project_id, label_config=None, annotation=ann, task=task
    )
    try:
        return int(store.annotations.upsert(annotation_record(event, spec)))
    except RequestError as exc:  # e.g. a label the config no longer has: skipped, like its webhook would be
        log.warning("catch-up of project %s skipped annotation %s: %s", project_id, ann.get("id"), exc.reason)
        return 0


def _minus_a_second(stamp: str) -> str:
    """Re-read a second of overlap (ties at the watermark); re-delivery is idempotent."""
    if not stamp:
        return ""
    try:
        moment = datetime.fromisoformat(stamp.replace("Z", "+00:00")).astimezone(UTC) - timedelta(seconds=1)
    except ValueError:
        return ""
    return moment.strftime(LS_DATETIME)  # the one format Label Studio's Data Manager filters parse
