"""Typed declarative models. Label Studio ids are the primary keys where LS owns the entity."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


def utcnow() -> datetime:
    """Timezone-aware now, for column defaults."""
    return datetime.now(UTC)


class Base(DeclarativeBase):
    """Declarative base of every tagloop table."""


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
    protected_tasks: Mapped[dict[str, float] | None] = mapped_column(JSON, default=dict)
    """Pushed tasks an annotator may have open (LS task id → when first protected): their predictions are kept."""
    synced_at: Mapped[str] = mapped_column(String(64), default="")
    strategy: Mapped[str] = mapped_column(String(200), default="")
    """Query strategy of the project; empty means the settings' default."""
    """Catch-up watermark: newest LS task updated_at read back (ISO string)."""
    """LS task ids that carry predictions tagloop pushed for the current version."""
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class Task(Base):
    """A task's text as tagloop last saw it (from /predict or a webhook)."""

    __tablename__ = "tasks"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    project_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    text_hash: Mapped[str] = mapped_column(String(64), index=True)
    prediction: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    """The last prediction tagloop served: ``{"model_version", "score", "choices": {control: [...]}}``."""
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class Annotation(Base):
    """A human label, keyed by its Label Studio annotation id."""

    __tablename__ = "annotations"
    __table_args__ = (Index("ix_annotations_project_deleted", "project_id", "deleted"),)

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    project_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("projects.id", ondelete="CASCADE"))
    task_id: Mapped[int] = mapped_column(BigInteger, index=True)
    choices: Mapped[dict[str, Any]] = mapped_column(JSON)
    """``{control name: [choice, ...]}``."""
    author: Mapped[str] = mapped_column(String(320), default="")
    was_cancelled: Mapped[bool] = mapped_column(Boolean, default=False)
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
    ls_created_at: Mapped[str] = mapped_column(String(64), default="")
    ls_updated_at: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class ModelVersion(Base):
    """A trained (or zero-shot) model version of a project."""

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
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Embedding(Base):
    """A cached embedding: float32 bytes of one text under one body."""

    __tablename__ = "embeddings"

    body_key: Mapped[str] = mapped_column(String(32), primary_key=True)
    text_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    vector: Mapped[bytes] = mapped_column(LargeBinary)


class TrainingJob(Base):
    """A training request and its life: queued → running → done | failed (retried with backoff)."""

    __tablename__ = "training_jobs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    project_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("projects.id", ondelete="CASCADE"))
    tier: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16), default="queued")
    reason: Mapped[str] = mapped_column(String(200), default="")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=3)
    run_after: Mapped[float] = mapped_column(Float, default=time.time)
    progress: Mapped[float] = mapped_column(Float, default=0.0)
    message: Mapped[str] = mapped_column(String(200), default="")
    error: Mapped[str] = mapped_column(Text, default="")
    version: Mapped[str] = mapped_column(String(120), default="")
    worker: Mapped[str] = mapped_column(String(120), default="")
    heartbeat_at: Mapped[float | None] = mapped_column(Float, default=None)
    created_at: Mapped[float] = mapped_column(Float, default=time.time)
    started_at: Mapped[float | None] = mapped_column(Float, default=None)
    finished_at: Mapped[float | None] = mapped_column(Float, default=None)
