"""Every table tagloop keeps, as SQLAlchemy 2.0 typed declarative models (one module: the whole schema at a glance).

Identity: a project is its Label Studio id; a task and an annotation are (project, Label Studio id), because Label
Studio hands the same task ids out again after a project is deleted. Times are Unix seconds (floats) everywhere,
compared the same way on SQLite and PostgreSQL. Alembic migrations in ``migrations/`` create these tables; the
moderation tables (``review_*``, ``moderator_labels``, ``served_scores``) are used only by the review plug-in.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    and_,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    """Declarative base of every tagloop table."""


def _project_fk() -> Mapped[int]:
    return mapped_column(BigInteger, ForeignKey("projects.id", ondelete="CASCADE"))


class Project(Base):
    """A Label Studio project tagloop serves."""

    __tablename__ = "projects"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    label_config: Mapped[str] = mapped_column(Text)
    config_hash: Mapped[str] = mapped_column(String(32))
    ls_url: Mapped[str] = mapped_column(String(500), default="")
    ls_token: Mapped[str] = mapped_column(String(500), default="")
    current_version: Mapped[str | None] = mapped_column(String(120), default=None)
    pushed_tasks: Mapped[list[int]] = mapped_column(JSON, default=list)
    """LS task ids that carry predictions tagloop pushed for the current version, in queue order."""
    pushed_version: Mapped[str | None] = mapped_column(String(120), default=None)
    """The model version of those predictions (None: nothing pushed yet)."""
    pushed_strategy: Mapped[str | None] = mapped_column(String(200), default=None)
    """The strategy that ranked them."""
    protected_tasks: Mapped[dict[str, float] | None] = mapped_column(JSON, default=dict)
    """Pushed tasks an annotator may have open (LS task id → when first protected): their predictions are kept."""
    synced_at: Mapped[str] = mapped_column(String(64), default="")
    """Catch-up watermark: newest LS task ``updated_at`` read back (ISO string, Label Studio's clock)."""
    strategy: Mapped[str] = mapped_column(String(200), default="")
    """Query strategy of the project; empty means the settings' default."""
    ls_failing_since: Mapped[float | None] = mapped_column(Float, default=None)
    """First of an unbroken run of failed calls to the project's Label Studio (None: the last call worked)."""
    detached_at: Mapped[float | None] = mapped_column(Float, default=None)
    """When Label Studio was found to no longer have the project: it stops costing jobs until it calls again."""
    detached_reason: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[float] = mapped_column(Float, default=time.time)
    updated_at: Mapped[float] = mapped_column(Float, default=time.time, onupdate=time.time)


class Task(Base):
    """A task's data as tagloop last saw it (from /predict, a webhook or a catch-up)."""

    __tablename__ = "tasks"
    __table_args__ = (Index("ix_tasks_text_hash", "text_hash"),)

    project_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    text_hash: Mapped[str] = mapped_column(String(64))
    prediction: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    """The last prediction tagloop served or pushed: ``{"model_version", "score", "choices": {control: [...]},
    "probabilities": {control: {label: p}}}``; what an annotator opening the task is shown."""
    updated_at: Mapped[float] = mapped_column(Float, default=time.time, onupdate=time.time)


class Annotation(Base):
    """A human label, keyed by (project, Label Studio annotation id)."""

    __tablename__ = "annotations"
    __table_args__ = (
        Index("ix_annotations_project_deleted", "project_id", "deleted"),
        Index("ix_annotations_project_task", "project_id", "task_id"),
    )

    project_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True, autoincrement=False
    )
    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    task_id: Mapped[int] = mapped_column(BigInteger)
    choices: Mapped[dict[str, Any]] = mapped_column(JSON)
    """``{control name: [choice, ...]}``."""
    author: Mapped[str] = mapped_column(String(320), default="")
    was_cancelled: Mapped[bool] = mapped_column(Boolean, default=False)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    ls_created_at: Mapped[str] = mapped_column(String(64), default="")
    ls_updated_at: Mapped[str] = mapped_column(String(64), default="")
    suggested: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    """The suggestion the annotator was shown when submitting: ``{"model_version", "choices": {control: [...]}}``
    (None: tagloop had served no prediction for the task)."""
    accepted: Mapped[bool | None] = mapped_column(Boolean, default=None)
    """Whether the submitted choices equal the suggestion's (None: no suggestion, or skipped)."""
    created_at: Mapped[float] = mapped_column(Float, default=time.time)
    updated_at: Mapped[float] = mapped_column(Float, default=time.time, onupdate=time.time)


_USABLE = and_(Annotation.deleted.is_(False), Annotation.was_cancelled.is_(False))
# the per-webhook count of labeled tasks reads this index alone (no table rows, no temporary B-tree); its WHERE is
# the queries' own ``.is_(False)`` terms, so each dialect renders both alike (SQLite ``IS 0``, PostgreSQL ``IS false``)
Index(
    "ix_annotations_usable",
    Annotation.project_id,
    Annotation.task_id,
    sqlite_where=_USABLE,
    postgresql_where=_USABLE,
)


class ModelVersion(Base):
    """A trained model version of a project."""

    __tablename__ = "model_versions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    project_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    tier: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(32), default="ready")
    n_train: Mapped[int] = mapped_column(Integer, default=0)
    label_counts: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    train_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    artifact_path: Mapped[str] = mapped_column(String(1000), default="")
    config_hash: Mapped[str] = mapped_column(String(32), default="")
    error: Mapped[str] = mapped_column(Text, default="")
    stop_set: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    """The version's predicted label (index) per task of the project's stop set, ``{task id: label}``: successive
    versions are compared on it (stabilizing predictions, ``strategies.stopping``)."""
    created_at: Mapped[float] = mapped_column(Float, default=time.time)


class Embedding(Base):
    """A cached embedding: float32 bytes of one text under one served body (body key: body, precision, length)."""

    __tablename__ = "embeddings"

    body_key: Mapped[str] = mapped_column(String(32), primary_key=True)
    text_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    vector: Mapped[bytes] = mapped_column(LargeBinary)


class Job(Base):
    """A background job and its life: queued → running → done | failed (retried with backoff); see ``backend.jobs``."""

    __tablename__ = "jobs"
    __table_args__ = (
        Index("ix_jobs_state", "state", "run_after"),
        Index("ix_jobs_project_kind", "project_id", "kind"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    project_id: Mapped[int] = _project_fk()
    kind: Mapped[str] = mapped_column(String(16))
    lane: Mapped[str] = mapped_column(String(8))
    """``fast`` or ``slow``: a project runs at most one job per lane at a time."""
    state: Mapped[str] = mapped_column(String(16), default="queued")
    reason: Mapped[str] = mapped_column(String(200), default="")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=3)
    run_after: Mapped[float] = mapped_column(Float, default=time.time)
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    message: Mapped[str] = mapped_column(String(200), default="")
    error: Mapped[str] = mapped_column(Text, default="")
    result: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    """What the job produced, as data."""
    worker: Mapped[str] = mapped_column(String(120), default="")
    heartbeat_at: Mapped[float | None] = mapped_column(Float, default=None)
    created_at: Mapped[float] = mapped_column(Float, default=time.time)
    started_at: Mapped[float | None] = mapped_column(Float, default=None)
    finished_at: Mapped[float | None] = mapped_column(Float, default=None)


# --- moderation review (used by the review plug-in only) ------------------------------------------------------


class ReviewItem(Base):
    """A text waiting for (or given) a moderator's verdict in one queue."""

    __tablename__ = "review_items"
    __table_args__ = (UniqueConstraint("project_id", "external_id", name="uq_review_items_external_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    project_id: Mapped[int] = _project_fk()
    queue: Mapped[str] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(16), default="open")
    control: Mapped[str] = mapped_column(String(200))
    value_key: Mapped[str] = mapped_column(String(200))
    text: Mapped[str] = mapped_column(Text)
    text_key: Mapped[str] = mapped_column(String(64))
    predicted: Mapped[list[str]] = mapped_column(JSON, default=list)
    """Labels the model (or the reporting system) applied."""
    human: Mapped[list[str]] = mapped_column(JSON, default=list)
    """Labels the annotator gave (or the reporter says are correct)."""
    score: Mapped[float | None] = mapped_column(Float, default=None)
    """Harm score (highest harmful-label probability) at ``model_version``."""
    margin: Mapped[float | None] = mapped_column(Float, default=None)
    """How surely the model is wrong (high) or how close to a threshold it is (low): the ordering key."""
    model_version: Mapped[str] = mapped_column(String(120), default="")
    reason: Mapped[str] = mapped_column(String(500), default="")
    source: Mapped[str] = mapped_column(String(16))
    """webhook | scan | feedback."""
    reporter: Mapped[str] = mapped_column(String(320), default="")
    task_id: Mapped[int | None] = mapped_column(BigInteger, default=None)
    """LS task id in the *source* project (``project_id``)."""
    external_id: Mapped[str | None] = mapped_column(String(200), default=None)
    ls_project_id: Mapped[int | None] = mapped_column(BigInteger, default=None)
    ls_task_id: Mapped[int | None] = mapped_column(BigInteger, default=None)
    verdict: Mapped[list[str] | None] = mapped_column(JSON, default=None)
    moderator: Mapped[str] = mapped_column(String(320), default="")
    created_at: Mapped[float] = mapped_column(Float, default=time.time)
    updated_at: Mapped[float] = mapped_column(Float, default=time.time, onupdate=time.time)
    resolved_at: Mapped[float | None] = mapped_column(Float, default=None)


class ReviewProject(Base):
    """The Label Studio project that holds one queue of one source project."""

    __tablename__ = "review_projects"
    __table_args__ = (UniqueConstraint("project_id", "queue", name="uq_review_projects_queue"),)

    ls_project_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    project_id: Mapped[int] = _project_fk()
    queue: Mapped[str] = mapped_column(String(32))
    control: Mapped[str] = mapped_column(String(200))
    webhook_url: Mapped[str] = mapped_column(String(1000), default="")
    created_at: Mapped[float] = mapped_column(Float, default=time.time)


class ModeratorLabel(Base):
    """A moderator's verdict on a text: a training label with provenance ``moderator``."""

    __tablename__ = "moderator_labels"
    __table_args__ = (UniqueConstraint("project_id", "control", "text_key", name="uq_moderator_labels_text"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    project_id: Mapped[int] = _project_fk()
    control: Mapped[str] = mapped_column(String(200))
    value_key: Mapped[str] = mapped_column(String(200))
    text: Mapped[str] = mapped_column(Text)
    text_key: Mapped[str] = mapped_column(String(64))
    task_id: Mapped[int | None] = mapped_column(BigInteger, default=None)
    labels: Mapped[list[str]] = mapped_column(JSON)
    moderator: Mapped[str] = mapped_column(String(320), default="")
    review_item_id: Mapped[int | None] = mapped_column(Integer, default=None)
    created_at: Mapped[float] = mapped_column(Float, default=time.time)
    updated_at: Mapped[float] = mapped_column(Float, default=time.time, onupdate=time.time)


class ServedScore(Base):
    """One score of a version: served by /predict (``served``) or on its reference window (``reference``)."""

    __tablename__ = "served_scores"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    project_id: Mapped[int] = _project_fk()
    model_version: Mapped[str] = mapped_column(String(120))
    kind: Mapped[str] = mapped_column(String(16))
    score: Mapped[float] = mapped_column(Float)
    created_at: Mapped[float] = mapped_column(Float, default=time.time)
