"""Annotations: human labels by (project, LS annotation id), with what the annotator was shown, and the training
set they make."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import bindparam, func, insert, select, update

from backend.store import models
from backend.store.db import Database
from backend.store.records import AnnotationRecord, Example
from backend.store.tasks import upsert_tasks

_ANNOTATIONS = models.Base.metadata.tables["annotations"]
# Statements every webhook makes, built once: building a select costs several times what SQLite takes to run it.
_EXISTS = select(_ANNOTATIONS.c.id).where(
    _ANNOTATIONS.c.project_id == bindparam("project_id"), _ANNOTATIONS.c.id == bindparam("id")
)
_INSERT = insert(_ANNOTATIONS)
_COUNT_USABLE = select(func.count()).select_from(
    select(_ANNOTATIONS.c.task_id)  # distinct task ids from the partial index ``ix_annotations_usable`` alone
    .distinct()
    .where(
        _ANNOTATIONS.c.project_id == bindparam("project_id"),
        _ANNOTATIONS.c.deleted.is_(False),
        _ANNOTATIONS.c.was_cancelled.is_(False),
    )
    .subquery()
)


class AnnotationRepository:
    """The ``annotations`` table."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def upsert(self, rec: AnnotationRecord, *, task_data: dict[str, Any] | None = None) -> bool:
        """Insert or update by (project, LS annotation id); a deleted annotation stays deleted, an older delivery
        never overwrites a newer one. True if it changed. ``task_data`` stores the task in the same transaction.
        ``rec.suggested``/``rec.accepted`` are kept from the first delivery (what the annotator was shown then)."""
        with self.db.session() as s:
            if task_data is not None:
                upsert_tasks(s, rec.project_id, {rec.task_id: task_data})
            known = s.scalar(_EXISTS, {"project_id": rec.project_id, "id": rec.id}) is not None
            if not known:  # a new label (nearly every webhook): one INSERT, no ORM object to flush
                s.execute(
                    _INSERT,
                    {
                        "project_id": rec.project_id,
                        "id": rec.id,
                        "task_id": rec.task_id,
                        "choices": rec.choices,
                        "author": rec.author,
                        "was_cancelled": rec.was_cancelled,
                        "deleted": rec.deleted,
                        "ls_created_at": rec.ls_created_at,
                        "ls_updated_at": rec.ls_updated_at,
                        "suggested": rec.suggested,
                        "accepted": rec.accepted,
                    },
                )
                return True
            row = s.get(models.Annotation, (rec.project_id, rec.id))
            if row is None or row.deleted:
                return False
            if rec.ls_updated_at and row.ls_updated_at and rec.ls_updated_at < row.ls_updated_at:
                return False  # an older delivery arriving late
            new = (rec.choices, rec.author, rec.was_cancelled, rec.ls_updated_at)
            if (row.choices, row.author, row.was_cancelled, row.ls_updated_at) == new:
                return False
            row.choices, row.author, row.was_cancelled, row.ls_updated_at = new
            row.task_id = rec.task_id
            return True

    def mark_deleted(self, project_id: int, annotation_ids: Sequence[int]) -> int:
        """Mark annotations deleted (kept for provenance, never trained on); returns how many changed."""
        if not annotation_ids:
            return 0
        with self.db.session() as s:
            result = s.execute(
                update(models.Annotation)
                .where(
                    models.Annotation.project_id == project_id,
                    models.Annotation.id.in_([int(a) for a in annotation_ids]),
                    models.Annotation.deleted.is_(False),
                )
                .values(deleted=True)
            )
            return int(getattr(result, "rowcount", 0) or 0)

    def get(self, project_id: int, annotation_id: int) -> AnnotationRecord | None:
        """One annotation, or None."""
        with self.db.session() as s:
            row = s.get(models.Annotation, (project_id, annotation_id))
            return _record(row) if row else None

    def of_project(self, project_id: int) -> list[AnnotationRecord]:
        """Every stored annotation of a project (deleted and cancelled included), by id."""
        with self.db.session() as s:
            q = (
                select(models.Annotation)
                .where(models.Annotation.project_id == project_id)
                .order_by(models.Annotation.id)
            )
            return [_record(r) for r in s.scalars(q)]

    def of_task(self, project_id: int, task_id: int) -> list[AnnotationRecord]:
        """Every stored annotation of one task."""
        with self.db.session() as s:
            q = (
                select(models.Annotation)
                .where(models.Annotation.project_id == project_id, models.Annotation.task_id == task_id)
                .order_by(models.Annotation.id)
            )
            return [_record(r) for r in s.scalars(q)]

    def training_set(self, project_id: int) -> list[Example]:
        """Per task, its newest usable (not cancelled, not deleted) annotation with the task's data, by task id.
        (Plug-ins change them through ``Services.labeled_examples``: moderators' verdicts.)"""
        with self.db.session() as s:
            q = (
                select(models.Annotation, models.Task)
                .join(
                    models.Task,
                    (models.Task.project_id == models.Annotation.project_id)
                    & (models.Task.id == models.Annotation.task_id),
                )
                .where(
                    models.Annotation.project_id == project_id,
                    models.Annotation.deleted.is_(False),
                    models.Annotation.was_cancelled.is_(False),
                )
                .order_by(models.Annotation.task_id, models.Annotation.ls_updated_at, models.Annotation.id)
            )
            latest: dict[int, Example] = {}
            for ann, task in s.execute(q):
                latest[ann.task_id] = Example(task_id=task.id, data=dict(task.data), choices=dict(ann.choices))
            return list(latest.values())

    def count(self, project_id: int, *, usable: bool = False) -> int:
        """How many annotations the project has stored; ``usable``: how many *tasks* have a usable (not deleted, not
        skipped) annotation (Label Studio may store a re-run submit twice: that is still one label)."""
        if usable:
            with self.db.session() as s:
                return int(s.scalar(_COUNT_USABLE, {"project_id": project_id}) or 0)
        q = select(func.count()).select_from(models.Annotation).where(models.Annotation.project_id == project_id)
        with self.db.session() as s:
            return int(s.scalar(q) or 0)

    def acceptance_rows(self, project_id: int) -> list[tuple[int, str, bool]]:
        """``[(annotation id, suggestion's model version, accepted)]`` of submitted (not skipped) annotations that
        had a suggestion, oldest first."""
        q = (
            select(models.Annotation.id, models.Annotation.suggested, models.Annotation.accepted)
            .where(models.Annotation.project_id == project_id, models.Annotation.accepted.is_not(None))
            .order_by(models.Annotation.created_at, models.Annotation.id)
        )
        with self.db.session() as s:
            return [(int(i), str((sug or {}).get("model_version", "")), bool(acc)) for i, sug, acc in s.execute(q)]


def _record(row: models.Annotation) -> AnnotationRecord:
    return AnnotationRecord(
        id=row.id,
        project_id=row.project_id,
        task_id=row.task_id,
        choices=dict(row.choices),
        author=row.author,
        was_cancelled=row.was_cancelled,
        deleted=row.deleted,
        ls_created_at=row.ls_created_at,
        ls_updated_at=row.ls_updated_at,
        suggested=dict(row.suggested) if row.suggested else None,
        accepted=row.accepted,
    )
