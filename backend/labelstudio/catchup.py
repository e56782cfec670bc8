"""Catch-up: read back from Label Studio's API the annotations tagloop missed (it was down, or connected
late), incrementally by task ``updated_at`` from the project's watermark."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from backend.errors import RequestError
from backend.labelstudio.client import LabelStudioClient
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
    """Upsert every annotation of tasks updated since the watermark; annotations gone from LS are deleted."""
    project = store.projects.get(project_id)
    watermark = project.synced_at if project else ""
    since = _minus_a_second(watermark)
    tasks = changed = deleted = 0
    newest = watermark
    for task in client.tasks_updated_since(project_id, since):
        tasks += 1
        store.tasks.upsert(project_id, [(int(task["id"]), dict(task.get("data") or {}))])
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
        newest = max(newest, str(task.get("updated_at") or ""))
    store.projects.set_synced_at(project_id, newest)
    return CatchUpResult(tasks, changed, deleted, newest)


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
