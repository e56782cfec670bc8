"""Moderation review persistence (the review plug-in's tables in ``models``): queue items, review projects in
Label Studio, moderator labels, served scores. Returns frozen records, never ORM rows.

Index spaces: ``task_id`` is a Label Studio task id of the *source* project (``project_id``);
``ls_project_id``/``ls_task_id`` name the review project and its task in Label Studio; ``id`` is the item's own key.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import bindparam, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from backend.store.db import Database
from backend.store.models import ModeratorLabel, ReviewItem, ReviewProject, ServedScore
from backend.store.records import (
    Example,
    ModeratorLabelRecord,
    NewItem,
    ReviewItemRecord,
    ReviewProjectRecord,
)

OPEN, RESOLVED, DISMISSED = "open", "resolved", "dismissed"


def text_key(text: str) -> str:
    """sha256 of a text (the key moderator labels and review items match texts by)."""
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _item(row: ReviewItem) -> ReviewItemRecord:
    return ReviewItemRecord(
        id=row.id,
        project_id=row.project_id,
        queue=row.queue,
        state=row.state,
        control=row.control,
        value_key=row.value_key,
        text=row.text,
        predicted=tuple(row.predicted or ()),
        human=tuple(row.human or ()),
        score=row.score,
        margin=row.margin,
        model_version=row.model_version,
        reason=row.reason,
        source=row.source,
        reporter=row.reporter,
        task_id=row.task_id,
        external_id=row.external_id,
        ls_project_id=row.ls_project_id,
        ls_task_id=row.ls_task_id,
        verdict=tuple(row.verdict) if row.verdict is not None else None,
        moderator=row.moderator,
        created_at=row.created_at,
        resolved_at=row.resolved_at,
    )


def _new_row(item: NewItem) -> ReviewItem:
    return ReviewItem(
        project_id=item.project_id,
        queue=item.queue,
        state=OPEN,
        control=item.control,
        value_key=item.value_key,
        text=item.text,
        text_key=text_key(item.text),
        predicted=list(item.predicted),
        human=list(item.human),
        score=item.score,
        margin=item.margin,
        model_version=item.model_version,
        reason=item.reason[:500],
        source=item.source,
        reporter=item.reporter[:320],
        task_id=item.task_id,
        external_id=item.external_id,
        moderator="",
    )


_REVIEW_PROJECT_BY_LS = select(*ReviewProject.__table__.c).where(  # built once: every webhook asks
    ReviewProject.__table__.c.ls_project_id == bindparam("ls_project_id")
)


class ReviewRepository:
    """The moderation tables: queue items, review projects, moderator labels, served scores."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # items ------------------------------------------------------------------------------------------
    def upsert_open_item(self, item: NewItem) -> tuple[ReviewItemRecord, bool]:
        """Insert an item, or refresh the open item of the same task in the same queue; (item, created)."""
        with self.db.session() as s:
            row = None
            if item.task_id is not None:
                row = s.scalar(
                    select(ReviewItem).where(
                        ReviewItem.project_id == item.project_id,
                        ReviewItem.task_id == item.task_id,
                        ReviewItem.queue == item.queue,
                        ReviewItem.state == OPEN,
                    )
                )
            if row is None:
                row = _new_row(item)
                s.add(row)
                s.flush()
                return _item(row), True
            row.predicted, row.human = list(item.predicted), list(item.human)
            row.score, row.margin, row.model_version = item.score, item.margin, item.model_version
            row.reason, row.text, row.text_key = item.reason[:500], item.text, text_key(item.text)
            s.flush()
            return _item(row), False

    def add_external(self, item: NewItem) -> tuple[ReviewItemRecord, bool]:
        """Insert an item reported with an ``external_id``, once: a repeated id returns the first item."""
        if item.external_id is None:
            raise ValueError("add_external needs an external_id")
        existing = self.by_external_id(item.project_id, item.external_id)
        if existing is not None:
            return existing, False
        try:
            with self.db.session() as s:
                row = _new_row(item)
                s.add(row)
                s.flush()
                return _item(row), True
        except IntegrityError:  # the same id reported concurrently: the other request created it
            again = self.by_external_id(item.project_id, item.external_id)
            if again is None:
                raise
            return again, False

    def by_external_id(self, project_id: int, external_id: str) -> ReviewItemRecord | None:
        """The item reported with this id, or None."""
        with self.db.session() as s:
            row = s.scalar(
                select(ReviewItem).where(ReviewItem.project_id == project_id, ReviewItem.external_id == external_id)
            )
            return _item(row) if row else None

    def get_item(self, item_id: int) -> ReviewItemRecord | None:
        """One item, or None."""
        with self.db.session() as s:
            row = s.get(ReviewItem, item_id)
            return _item(row) if row else None

    def item_by_ls_task(self, ls_project_id: int, ls_task_id: int) -> ReviewItemRecord | None:
        """The item a review project's task shows, or None."""
        with self.db.session() as s:
            row = s.scalar(
                select(ReviewItem).where(ReviewItem.ls_project_id == ls_project_id, ReviewItem.ls_task_id == ls_task_id)
            )
            return _item(row) if row else None

    def items(
        self, project_id: int, *, queue: str | None = None, states: Sequence[str] = (OPEN,), limit: int | None = None
    ) -> list[ReviewItemRecord]:
        """Items of a project (one queue, given states), oldest first; the caller orders them."""
        q = select(ReviewItem).where(ReviewItem.project_id == project_id, ReviewItem.state.in_(list(states)))
        if queue is not None:
            q = q.where(ReviewItem.queue == queue)
        q = q.order_by(ReviewItem.id)
        if limit is not None:
            q = q.limit(limit)
        with self.db.session() as s:
            return [_item(r) for r in s.scalars(q)]

    def open_task_items(self, project_id: int, task_id: int) -> list[ReviewItemRecord]:
        """Open items of one source task (any queue)."""
        with self.db.session() as s:
            q = select(ReviewItem).where(
                ReviewItem.project_id == project_id, ReviewItem.task_id == task_id, ReviewItem.state == OPEN
            )
            return [_item(r) for r in s.scalars(q)]

    def set_scored(self, item_id: int, *, score: float, margin: float, model_version: str) -> None:
        """Fill in the model's view of an item reported without one (external feedback)."""
        with self.db.session() as s:
            s.execute(
                update(ReviewItem)
                .where(ReviewItem.id == item_id)
                .values(score=score, margin=margin, model_version=model_version, updated_at=time.time())
            )

    def dismiss(self, item_ids: Sequence[int], reason: str) -> int:
        """Take open items out of their queue without a verdict (e.g. the annotator changed the label)."""
        if not item_ids:
            return 0
        with self.db.session() as s:
            result = s.execute(
                update(ReviewItem)
                .where(ReviewItem.id.in_(list(item_ids)), ReviewItem.state == OPEN)
                .values(state=DISMISSED, reason=reason[:500], resolved_at=time.time(), updated_at=time.time())
            )
            return int(getattr(result, "rowcount", 0) or 0)

    def resolve(self, item: ReviewItemRecord, verdict: Sequence[str], moderator: str) -> list[int]:
        """Record the verdict on ``item`` and close every open item of the project with the same text; returns
        the ids closed (``item`` first)."""
        now = time.time()
        with self.db.session() as s:
            rows = s.scalars(
                select(ReviewItem).where(
                    ReviewItem.project_id == item.project_id,
                    ReviewItem.text_key == text_key(item.text),
                    ReviewItem.control == item.control,
                    (ReviewItem.state == OPEN) | (ReviewItem.id == item.id),
                )
            ).all()
            for row in rows:
                row.state, row.verdict, row.moderator = RESOLVED, list(verdict), moderator[:320]
                row.resolved_at = row.updated_at = now
            return sorted((r.id for r in rows), key=lambda i: (i != item.id, i))

    def set_ls_task(self, item_id: int, ls_project_id: int | None, ls_task_id: int | None) -> None:
        """Record (or clear) the Label Studio task that shows an item."""
        with self.db.session() as s:
            s.execute(
                update(ReviewItem)
                .where(ReviewItem.id == item_id)
                .values(ls_project_id=ls_project_id, ls_task_id=ls_task_id, updated_at=time.time())
            )

    def stale_ls_tasks(self, project_id: int) -> list[ReviewItemRecord]:
        """Dismissed items whose Label Studio task is still there (to be deleted from the review project)."""
        with self.db.session() as s:
            q = select(ReviewItem).where(
                ReviewItem.project_id == project_id, ReviewItem.state == DISMISSED, ReviewItem.ls_task_id.is_not(None)
            )
            return [_item(r) for r in s.scalars(q)]

    def queue_counts(self, project_id: int, *, since: float) -> dict[str, dict[str, int]]:
        """Per queue: ``open``/``resolved``/``dismissed`` totals, ``resolved_recent`` (resolved after ``since``)."""
        out: dict[str, dict[str, int]] = {}
        with self.db.session() as s:
            q = (
                select(ReviewItem.queue, ReviewItem.state, func.count())
                .where(ReviewItem.project_id == project_id)
                .group_by(ReviewItem.queue, ReviewItem.state)
            )
            for queue, state, n in s.execute(q):
                out.setdefault(queue, {})[state] = int(n)
            recent = (
                select(ReviewItem.queue, func.count())
                .where(
                    ReviewItem.project_id == project_id, ReviewItem.state == RESOLVED, ReviewItem.resolved_at >= since
                )
                .group_by(ReviewItem.queue)
            )
            for queue, n in s.execute(recent):
                out.setdefault(queue, {})["resolved_recent"] = int(n)
        return out

    def tasks_with_items(self, project_id: int, queues: Sequence[str]) -> set[int]:
        """Source task ids that have an item (any state) in one of ``queues``."""
        with self.db.session() as s:
            q = select(ReviewItem.task_id).where(
                ReviewItem.project_id == project_id,
                ReviewItem.queue.in_(list(queues)),
                ReviewItem.task_id.is_not(None),
            )
            return {int(t) for t in s.scalars(q) if t is not None}

    # review projects --------------------------------------------------------------------------------
    def review_project(self, project_id: int, queue: str) -> ReviewProjectRecord | None:
        """The Label Studio project of a queue, or None."""
        with self.db.session() as s:
            row = s.scalar(
                select(ReviewProject).where(ReviewProject.project_id == project_id, ReviewProject.queue == queue)
            )
            return _review_project(row) if row else None

    def review_project_by_ls(self, ls_project_id: int) -> ReviewProjectRecord | None:
        """The queue a Label Studio project holds, or None (not a review project)."""
        with self.db.session() as s:
            row = s.execute(_REVIEW_PROJECT_BY_LS, {"ls_project_id": ls_project_id}).first()
            return _review_project(row) if row else None

    def review_projects(self, project_id: int) -> list[ReviewProjectRecord]:
        """Every review project of a source project."""
        with self.db.session() as s:
            q = select(ReviewProject).where(ReviewProject.project_id == project_id).order_by(ReviewProject.queue)
            return [_review_project(r) for r in s.scalars(q)]

    def add_review_project(self, rec: ReviewProjectRecord) -> None:
        """Remember a review project created in Label Studio."""
        with self.db.session() as s:
            s.add(
                ReviewProject(
                    ls_project_id=rec.ls_project_id,
                    project_id=rec.project_id,
                    queue=rec.queue,
                    control=rec.control,
                    webhook_url=rec.webhook_url,
                )
            )

    def set_webhook_url(self, ls_project_id: int, url: str) -> None:
        """Record that the review project's verdict webhook now exists."""
        with self.db.session() as s:
            s.execute(update(ReviewProject).where(ReviewProject.ls_project_id == ls_project_id).values(webhook_url=url))

    def forget_review_project(self, ls_project_id: int) -> None:
        """The review project is gone from Label Studio: unlink it and its items' tasks (they are pushed again)."""
        with self.db.session() as s:
            s.execute(delete(ReviewProject).where(ReviewProject.ls_project_id == ls_project_id))
            s.execute(
                update(ReviewItem)
                .where(ReviewItem.ls_project_id == ls_project_id)
                .values(ls_project_id=None, ls_task_id=None)
            )

    def merge_moderator_labels(self, project_id: int, examples: Iterable[Example]) -> list[Example]:
        """``examples`` with moderator labels applied: a verdict replaces the annotator's choices of its control
        for the same task (or, for a text with no task, any task whose control text is the same); verdicts on texts
        no task has become examples of their own with ``task_id`` = minus the moderator label's id."""
        with self.db.session() as s:
            labels = s.scalars(select(ModeratorLabel).where(ModeratorLabel.project_id == project_id)).all()
        out = list(examples)
        if not labels:
            return out
        by_task = {m.task_id: m for m in labels if m.task_id is not None}
        by_text = {(m.value_key, m.text): m for m in labels}
        keys = {m.value_key for m in labels}
        used: set[int] = set()
        for i, ex in enumerate(out):
            found = [m for m in (by_task.get(ex.task_id),) if m is not None]
            texts = [(k, v) for k in keys if isinstance(v := ex.data.get(k), str)]
            found += [m for kv in texts if (m := by_text.get(kv)) is not None and m not in found]
            if found:
                choices = dict(ex.choices)
                for m in found:
                    choices[m.control] = list(m.labels)
                    used.add(m.id)
                out[i] = Example(task_id=ex.task_id, data=ex.data, choices=choices)
        for m in labels:
            if m.id not in used:
                out.append(Example(task_id=-m.id, data={m.value_key: m.text}, choices={m.control: list(m.labels)}))
        return out

    # moderator labels ---------------------------------------------------------------------------------
    def put_moderator_label(self, item: ReviewItemRecord, labels: Sequence[str], moderator: str) -> int:
        """Store (or replace) the moderator's labels for the item's text; returns the label's id."""
        key = text_key(item.text)
        with self.db.session() as s:
            row = s.scalar(
                select(ModeratorLabel).where(
                    ModeratorLabel.project_id == item.project_id,
                    ModeratorLabel.control == item.control,
                    ModeratorLabel.text_key == key,
                )
            )
            if row is None:
                row = ModeratorLabel(
                    project_id=item.project_id, control=item.control, value_key=item.value_key, text=item.text
                )
                row.text_key = key
                s.add(row)
            row.labels, row.moderator, row.review_item_id = list(labels), moderator[:320], item.id
            row.task_id = item.task_id if item.task_id is not None else row.task_id
            s.flush()
            return row.id

    def moderator_labels(self, project_id: int) -> list[ModeratorLabelRecord]:
        """Every moderator label of a project, oldest first."""
        with self.db.session() as s:
            q = select(ModeratorLabel).where(ModeratorLabel.project_id == project_id).order_by(ModeratorLabel.id)
            return [
                ModeratorLabelRecord(
                    id=r.id,
                    project_id=r.project_id,
                    control=r.control,
                    value_key=r.value_key,
                    text=r.text,
                    task_id=r.task_id,
                    labels=tuple(r.labels),
                    moderator=r.moderator,
                    review_item_id=r.review_item_id,
                )
                for r in s.scalars(q)
            ]

    # served scores ------------------------------------------------------------------------------------
    def add_scores(self, project_id: int, model_version: str, kind: str, scores: Iterable[float]) -> None:
        """Append scores of a version (one INSERT)."""
        rows = [
            {"project_id": project_id, "model_version": model_version, "kind": kind, "score": float(v)} for v in scores
        ]
        if rows:
            with self.db.session() as s:
                s.execute(insert(ServedScore), rows)

    def replace_scores(self, project_id: int, model_version: str, kind: str, scores: Sequence[float]) -> None:
        """Replace a version's scores of one kind (the reference window is written once per version)."""
        with self.db.session() as s:
            s.execute(
                delete(ServedScore).where(
                    ServedScore.project_id == project_id,
                    ServedScore.model_version == model_version,
                    ServedScore.kind == kind,
                )
            )
        self.add_scores(project_id, model_version, kind, scores)

    def scores(self, project_id: int, model_version: str, kind: str, *, newest: int) -> list[float]:
        """The ``newest`` most recent scores of a version and kind."""
        with self.db.session() as s:
            q = (
                select(ServedScore.score)
                .where(
                    ServedScore.project_id == project_id,
                    ServedScore.model_version == model_version,
                    ServedScore.kind == kind,
                )
                .order_by(ServedScore.id.desc())
                .limit(newest)
            )
            return [float(v) for v in s.scalars(q)]

    def prune_served(self, project_id: int, model_version: str, *, keep: int) -> int:
        """Delete all but the newest ``keep`` served scores of a version; returns how many went."""
        with self.db.session() as s:
            cutoff = s.scalar(
                select(ServedScore.id)
                .where(
                    ServedScore.project_id == project_id,
                    ServedScore.model_version == model_version,
                    ServedScore.kind == "served",
                )
                .order_by(ServedScore.id.desc())
                .offset(keep)
                .limit(1)
            )
            if cutoff is None:
                return 0
            result = s.execute(
                delete(ServedScore).where(
                    ServedScore.project_id == project_id,
                    ServedScore.model_version == model_version,
                    ServedScore.kind == "served",
                    ServedScore.id <= cutoff,
                )
            )
            return int(getattr(result, "rowcount", 0) or 0)


def _review_project(row: Any) -> ReviewProjectRecord:
    """From a ``ReviewProject`` or a row of its table's columns."""
    return ReviewProjectRecord(
        ls_project_id=row.ls_project_id,
        project_id=row.project_id,
        queue=row.queue,
        control=row.control,
        webhook_url=row.webhook_url,
    )
