"""Tasks: the data of each (project, LS task id) tagloop has seen, and the prediction it last served for it."""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import insert, select, tuple_
from sqlalchemy.orm import Session

from backend.store import models
from backend.store.db import Database

CHUNK = 500


def text_hash(data: dict[str, Any]) -> str:
    """Hash of a task's data (stable key order), to notice changed texts."""
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


def _live_annotation(project_id: int) -> Any:
    """``(project_id, task_id)`` pairs with a live (non-deleted) annotation, as a subquery."""
    return select(models.Annotation.task_id).where(
        models.Annotation.project_id == project_id, models.Annotation.deleted.is_(False)
    )


class TaskRepository:
    """The ``tasks`` table. Task ids are LS task ids, meaningful only with their project."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def upsert(self, project_id: int, tasks: Iterable[tuple[int, dict[str, Any]]]) -> int:
        """Store task data; returns how many rows were new or changed."""
        items = {int(tid): data for tid, data in tasks}
        if not items:
            return 0
        with self.db.session() as s:
            return upsert_tasks(s, project_id, items)

    def get(self, project_id: int, task_id: int) -> dict[str, Any] | None:
        """A task's data, or None."""
        with self.db.session() as s:
            row = s.get(models.Task, (project_id, task_id))
            return dict(row.data) if row else None

    def served(self, project_id: int, task_id: int) -> tuple[dict[str, Any], dict[str, Any] | None] | None:
        """(task data, last served prediction or None) of a stored task, or None if tagloop never saw it."""
        with self.db.session() as s:
            row = s.get(models.Task, (project_id, task_id))
            return (dict(row.data), dict(row.prediction) if row.prediction else None) if row else None

    def record_predictions(self, project_id: int, predictions: Mapping[int, dict[str, Any]]) -> None:
        """Remember the prediction served for each task (tasks tagloop has not stored are skipped)."""
        if predictions:
            with self.db.session() as s:
                record_predictions(s, {(project_id, int(t)): p for t, p in predictions.items()})

    def predictions(self, project_id: int, task_ids: Sequence[int] | None = None) -> dict[int, dict[str, Any] | None]:
        """Task id → last served prediction (or None), for the given tasks (all stored tasks of the project for
        None)."""
        base = select(models.Task.id, models.Task.prediction).where(models.Task.project_id == project_id)
        with self.db.session() as s:
            if task_ids is None:
                return {int(tid): pred for tid, pred in s.execute(base)}
            ids, out = list(task_ids), {}
            for start in range(0, len(ids), CHUNK):
                q = base.where(models.Task.id.in_(ids[start : start + CHUNK]))
                out.update({int(tid): pred for tid, pred in s.execute(q)})
            return out

    def unlabeled(self, project_id: int, *, limit: int) -> list[tuple[int, dict[str, Any]]]:
        """Tasks of the project with no live annotation, by task id: ``[(task_id, data)]``."""
        q = (
            select(models.Task.id, models.Task.data)
            .where(models.Task.project_id == project_id, models.Task.id.not_in(_live_annotation(project_id)))
            .order_by(models.Task.id)
            .limit(limit)
        )
        with self.db.session() as s:
            return [(int(tid), dict(data)) for tid, data in s.execute(q)]

    def labeled_among(self, project_id: int, task_ids: Iterable[int]) -> set[int]:
        """Those of ``task_ids`` that have a live annotation now."""
        ids, out = sorted({int(t) for t in task_ids}), set[int]()
        with self.db.session() as s:
            for start in range(0, len(ids), CHUNK):
                q = _live_annotation(project_id).where(models.Annotation.task_id.in_(ids[start : start + CHUNK]))
                out.update(int(t) for t in s.scalars(q))
        return out

    def unlabeled_predictions(self, project_id: int, model_version: str) -> list[tuple[int, dict, dict]]:
        """``[(task_id, data, prediction)]`` of unlabeled tasks last served by ``model_version``, by task id."""
        q = (
            select(models.Task.id, models.Task.data, models.Task.prediction)
            .where(
                models.Task.project_id == project_id,
                models.Task.id.not_in(_live_annotation(project_id)),
                models.Task.prediction.is_not(None),
            )
            .order_by(models.Task.id)
        )
        with self.db.session() as s:
            return [
                (int(tid), dict(data), dict(pred))
                for tid, data, pred in s.execute(q)
                if isinstance(pred, dict) and pred.get("model_version") == model_version
            ]

    def ids(self, project_id: int) -> list[int]:
        """Every stored task id of the project, ascending."""
        with self.db.session() as s:
            q = select(models.Task.id).where(models.Task.project_id == project_id).order_by(models.Task.id)
            return [int(t) for t in s.scalars(q)]

    def data(self, project_id: int, task_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
        """Task id → data for the stored ones of ``task_ids``."""
        ids, out = list(task_ids), {}
        with self.db.session() as s:
            for start in range(0, len(ids), CHUNK):
                q = select(models.Task.id, models.Task.data).where(
                    models.Task.project_id == project_id, models.Task.id.in_(ids[start : start + CHUNK])
                )
                out.update({int(tid): dict(d) for tid, d in s.execute(q)})
        return out

    def sample(self, project_id: int, n: int, seed: int) -> list[dict[str, Any]]:
        """The data of ``n`` of the project's known tasks drawn at random (all when it has fewer), by task id."""
        ids = self.ids(project_id)
        if len(ids) > n:
            ids = sorted(random.Random(seed).sample(ids, n))
        found = self.data(project_id, ids)
        return [found[t] for t in ids if t in found]


def upsert_tasks(s: Session, project_id: int, items: dict[int, dict[str, Any]]) -> int:
    """Insert or update (project, task id) rows in session ``s``; returns how many were new or changed."""
    changed = 0
    existing: dict[int, models.Task] = {}
    ids = list(items)
    for start in range(0, len(ids), CHUNK):
        q = select(models.Task).where(
            models.Task.project_id == project_id, models.Task.id.in_(ids[start : start + CHUNK])
        )
        existing.update({t.id: t for t in s.scalars(q)})
    new: list[dict[str, Any]] = []
    for tid, data in items.items():
        digest = text_hash(data)
        row = existing.get(tid)
        if row is None:
            new.append({"project_id": project_id, "id": tid, "data": data, "text_hash": digest})
        elif row.text_hash != digest:
            row.data, row.text_hash = data, digest
        else:
            continue
        changed += 1
    if new:  # one (executemany) INSERT, no ORM objects to flush
        s.execute(insert(models.Base.metadata.tables["tasks"]), new)
    return changed


def record_predictions(s: Session, predictions: Mapping[tuple[int, int], dict[str, Any]]) -> None:
    """Set ``prediction`` of each stored (project, task id) in session ``s``."""
    keys = list(predictions)
    for start in range(0, len(keys), CHUNK):
        chunk = keys[start : start + CHUNK]
        q = select(models.Task).where(tuple_(models.Task.project_id, models.Task.id).in_(chunk))
        for row in s.scalars(q):
            row.prediction = predictions[(row.project_id, row.id)]
