"""``SqlStore``: the only place that opens database sessions. One short transaction per method."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Hashable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, func, select, update
from sqlalchemy.orm import Session, sessionmaker

from backend.store import orm
from backend.store.records import AnnotationRecord, Example, ModelVersionRecord, ProjectRecord

MIGRATIONS = Path(__file__).parent / "migrations"


def make_engine(url: str) -> Engine:
    """An engine; SQLite gets WAL, full fsync on commit, foreign keys and a busy timeout."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    for pragma in ("journal_mode=WAL", "synchronous=FULL", "foreign_keys=ON", "busy_timeout=30000"):
        cur.execute(f"PRAGMA {pragma}")
    cur.close()


def text_hash(data: dict[str, Any]) -> str:
    """Hash of a task's data (stable key order), to notice changed texts."""
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


class SqlStore:
    """Projects, tasks, annotations and model versions on SQLite or PostgreSQL."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self._sessions = sessionmaker(self.engine, expire_on_commit=False)

    def migrate(self) -> None:
        """Bring the schema to the newest Alembic revision."""
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        with self.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")

    def close(self) -> None:
        """Release pooled connections."""
        self.engine.dispose()

    def session(self) -> Session:
        """A new session (callers own the transaction; keep it short)."""
        return self._sessions()

    def _session(self) -> Session:
        return self._sessions()

    # projects -------------------------------------------------------------------------------------
    def upsert_project(
        self, project_id: int, label_config: str, config_hash: str, *, ls_url: str = "", ls_token: str = ""
    ) -> ProjectRecord:
        """Create or update a project; empty ``ls_url``/``ls_token`` keep the stored values."""
        with self._session() as s, s.begin():
            row = s.get(orm.Project, project_id)
            if row is None:
                row = orm.Project(
                    id=project_id,
                    label_config=label_config,
                    config_hash=config_hash,
                    ls_url=ls_url,
                    ls_token=ls_token,
                )
                s.add(row)
            else:
                row.label_config, row.config_hash = label_config, config_hash
                row.ls_url = ls_url or row.ls_url
                row.ls_token = ls_token or row.ls_token
            s.flush()
            return _project(row)

    def get_project(self, project_id: int) -> ProjectRecord | None:
        """The project, or None."""
        with self._session() as s:
            row = s.get(orm.Project, project_id)
            return _project(row) if row else None

    def list_projects(self) -> list[ProjectRecord]:
        """All projects, by id."""
        with self._session() as s:
            return [_project(r) for r in s.scalars(select(orm.Project).order_by(orm.Project.id))]

    def set_current_version(self, project_id: int, name: str) -> None:
        """Make ``name`` the served version of the project."""
        with self._session() as s, s.begin():
            s.execute(update(orm.Project).where(orm.Project.id == project_id).values(current_version=name))

    def set_strategy(self, project_id: int, strategy: str) -> None:
        """Set the project's query strategy ("" for the default)."""
        with self._session() as s, s.begin():
            s.execute(update(orm.Project).where(orm.Project.id == project_id).values(strategy=strategy))

    def set_synced_at(self, project_id: int, watermark: str) -> None:
        """Record the catch-up watermark."""
        with self._session() as s, s.begin():
            s.execute(update(orm.Project).where(orm.Project.id == project_id).values(synced_at=watermark))

    def set_pushed_tasks(
        self, project_id: int, task_ids: Sequence[int], protected: Mapping[int, float] | None = None
    ) -> None:
        """Record which LS tasks now carry tagloop's pushed predictions, and which of them are protected (task id
        → since when: their predictions are kept by the next pushes)."""
        values: dict[str, Any] = {"pushed_tasks": list(task_ids)}
        if protected is not None:
            values["protected_tasks"] = {str(t): float(ts) for t, ts in protected.items()}
        with self._session() as s, s.begin():
            s.execute(update(orm.Project).where(orm.Project.id == project_id).values(**values))

    # tasks ----------------------------------------------------------------------------------------
    def upsert_tasks(self, project_id: int, tasks: Iterable[tuple[int, dict[str, Any]]]) -> int:
        """Store task data by LS task id; returns how many rows were new or changed."""
        items = {int(tid): data for tid, data in tasks}
        if not items:
            return 0
        with self._session() as s, s.begin():
            return _upsert_tasks(s, project_id, items)

    def record_predictions(self, predictions: dict[int, dict[str, Any]]) -> None:
        """Remember the prediction served for each task id (tasks tagloop has not stored are skipped)."""
        if not predictions:
            return
        with self._session() as s, s.begin():
            for row in s.scalars(select(orm.Task).where(orm.Task.id.in_(list(predictions)))):
                row.prediction = predictions[row.id]

    def tasks_with_predictions(self, project_id: int) -> dict[int, dict[str, Any] | None]:
        """Task id → last served prediction (or None), for every stored task of the project."""
        with self._session() as s:
            q = select(orm.Task.id, orm.Task.prediction).where(orm.Task.project_id == project_id)
            return {int(tid): pred for tid, pred in s.execute(q)}

    def get_task(self, task_id: int) -> dict[str, Any] | None:
        """A task's data, or None."""
        with self._session() as s:
            row = s.get(orm.Task, task_id)
            return dict(row.data) if row else None

    def unlabeled_tasks(self, project_id: int, *, limit: int) -> list[tuple[int, dict[str, Any]]]:
        """Tasks of the project with no live (non-deleted) annotation, by task id: ``[(task_id, data)]``."""
        labeled = select(orm.Annotation.task_id).where(
            orm.Annotation.project_id == project_id, orm.Annotation.deleted.is_(False)
        )
        q = (
            select(orm.Task.id, orm.Task.data)
            .where(orm.Task.project_id == project_id, orm.Task.id.not_in(labeled))
            .order_by(orm.Task.id)
            .limit(limit)
        )
        with self._session() as s:
            return [(int(tid), dict(data)) for tid, data in s.execute(q)]

    # annotations ----------------------------------------------------------------------------------
    def upsert_annotation(self, rec: AnnotationRecord, *, task_data: dict[str, Any] | None = None) -> bool:
        """Insert or update by LS annotation id; a deleted annotation stays deleted. True if it changed.

        With ``task_data`` the task is stored in the same transaction (one commit per webhook).
        """
        with self._session() as s, s.begin():
            if task_data is not None:
                _upsert_tasks(s, rec.project_id, {rec.task_id: task_data})
            row = s.get(orm.Annotation, rec.id)
            if row is None:
                s.add(
                    orm.Annotation(
                        id=rec.id,
                        project_id=rec.project_id,
                        task_id=rec.task_id,
                        choices=rec.choices,
                        author=rec.author,
                        was_cancelled=rec.was_cancelled,
                        deleted=rec.deleted,
                        ls_created_at=rec.ls_created_at,
                        ls_updated_at=rec.ls_updated_at,
                    )
                )
                return True
            if row.deleted:
                return False
            if rec.ls_updated_at and row.ls_updated_at and rec.ls_updated_at < row.ls_updated_at:
                return False  # an older delivery arriving late
            new = (rec.choices, rec.author, rec.was_cancelled, rec.ls_updated_at)
            if (row.choices, row.author, row.was_cancelled, row.ls_updated_at) == new:
                return False
            row.choices, row.author, row.was_cancelled, row.ls_updated_at = new
            row.task_id = rec.task_id
            return True

    def mark_deleted(self, annotation_ids: Sequence[int]) -> int:
        """Mark annotations deleted (kept for provenance, never trained on); returns how many changed."""
        if not annotation_ids:
            return 0
        with self._session() as s, s.begin():
            result = s.execute(
                update(orm.Annotation)
                .where(orm.Annotation.id.in_(list(annotation_ids)), orm.Annotation.deleted.is_(False))
                .values(deleted=True)
            )
            return int(getattr(result, "rowcount", 0) or 0)

    def get_annotation(self, annotation_id: int) -> AnnotationRecord | None:
        """One annotation, or None."""
        with self._session() as s:
            row = s.get(orm.Annotation, annotation_id)
            return _annotation(row) if row else None

    def annotations(self, project_id: int) -> list[AnnotationRecord]:
        """Every stored annotation of a project (deleted and cancelled included), by id."""
        with self._session() as s:
            q = select(orm.Annotation).where(orm.Annotation.project_id == project_id).order_by(orm.Annotation.id)
            return [_annotation(r) for r in s.scalars(q)]

    def annotations_of_task(self, task_id: int) -> list[AnnotationRecord]:
        """Every stored annotation of one task."""
        with self._session() as s:
            q = select(orm.Annotation).where(orm.Annotation.task_id == task_id).order_by(orm.Annotation.id)
            return [_annotation(r) for r in s.scalars(q)]

    def training_set(self, project_id: int) -> list[Example]:
        """Per task, its newest usable (not cancelled, not deleted) annotation with the task's data; moderator
        verdicts override it for their control (``review_store.merge_moderator_labels``)."""
        from backend.store.review_store import merge_moderator_labels

        with self._session() as s:
            q = (
                select(orm.Annotation, orm.Task)
                .join(orm.Task, orm.Task.id == orm.Annotation.task_id)
                .where(
                    orm.Annotation.project_id == project_id,
                    orm.Annotation.deleted.is_(False),
                    orm.Annotation.was_cancelled.is_(False),
                )
                .order_by(orm.Annotation.task_id, orm.Annotation.ls_updated_at, orm.Annotation.id)
            )
            latest: dict[int, Example] = {}
            for ann, task in s.execute(q):
                latest[ann.task_id] = Example(task_id=task.id, data=dict(task.data), choices=dict(ann.choices))
            return merge_moderator_labels(s, project_id, latest.values())

    def count_annotations(self, project_id: int) -> int:
        """How many annotations the project has stored (deleted and cancelled included)."""
        with self._session() as s:
            q = select(func.count()).select_from(orm.Annotation).where(orm.Annotation.project_id == project_id)
            return int(s.scalar(q) or 0)

    def count_usable(self, project_id: int) -> int:
        """How many usable annotations the project has."""
        with self._session() as s:
            q = (
                select(func.count())
                .select_from(orm.Annotation)
                .where(
                    orm.Annotation.project_id == project_id,
                    orm.Annotation.deleted.is_(False),
                    orm.Annotation.was_cancelled.is_(False),
                )
            )
            return int(s.scalar(q) or 0)

    # embeddings -----------------------------------------------------------------------------------------
    def get_embeddings(self, body_key: str, text_hashes: Sequence[str]) -> dict[str, bytes]:
        """Cached float32 vectors (raw bytes) by text hash, for the hashes present."""
        out: dict[str, bytes] = {}
        unique = list(dict.fromkeys(text_hashes))
        with self._session() as s:
            for start in range(0, len(unique), 500):
                chunk = unique[start : start + 500]
                q = select(orm.Embedding.text_hash, orm.Embedding.vector).where(
                    orm.Embedding.body_key == body_key, orm.Embedding.text_hash.in_(chunk)
                )
                out.update({h: bytes(v) for h, v in s.execute(q)})
        return out

    def put_embeddings(self, body_key: str, vectors: dict[str, bytes]) -> None:
        """Store vectors by text hash; existing ones are kept (same text and body give the same vector)."""
        self.put_embeddings_batch({body_key: vectors})

    def put_embeddings_batch(self, batch: Mapping[Hashable, Mapping[Any, bytes]]) -> None:
        """``put_embeddings`` for several bodies (body key → text hash → vector) in one transaction."""
        from sqlalchemy.dialects import postgresql, sqlite

        insert = postgresql.insert if self.engine.dialect.name == "postgresql" else sqlite.insert
        rows = [
            {"body_key": str(key), "text_hash": str(h), "vector": v}
            for key, vectors in batch.items()
            for h, v in vectors.items()
        ]
        if not rows:
            return
        with self._session() as s, s.begin():
            for start in range(0, len(rows), 1000):
                s.execute(insert(orm.Embedding).values(rows[start : start + 1000]).on_conflict_do_nothing())

    # model versions -------------------------------------------------------------------------------
    def add_version(self, rec: ModelVersionRecord) -> ModelVersionRecord:
        """Record a new model version."""
        with self._session() as s, s.begin():
            row = orm.ModelVersion(
                project_id=rec.project_id,
                name=rec.name,
                tier=rec.tier,
                status=rec.status,
                n_train=rec.n_train,
                label_counts=rec.label_counts,
                metrics=rec.metrics,
                train_seconds=rec.train_seconds,
                artifact_path=rec.artifact_path,
                config_hash=rec.config_hash,
                error=rec.error,
            )
            s.add(row)
            s.flush()
            return _version(row)

    def mark_pruned(self, name: str) -> None:
        """The version's artifacts were deleted: it stays in the history, no longer loadable."""
        with self._session() as s, s.begin():
            s.execute(
                update(orm.ModelVersion).where(orm.ModelVersion.name == name).values(status="pruned", artifact_path="")
            )

    def get_version(self, name: str) -> ModelVersionRecord | None:
        """A version by name, or None."""
        with self._session() as s:
            row = s.scalar(select(orm.ModelVersion).where(orm.ModelVersion.name == name))
            return _version(row) if row else None

    def list_versions(self, project_id: int) -> list[ModelVersionRecord]:
        """A project's versions, oldest first."""
        with self._session() as s:
            q = select(orm.ModelVersion).where(orm.ModelVersion.project_id == project_id)
            return [_version(r) for r in s.scalars(q.order_by(orm.ModelVersion.id))]

    def latest_version(self, project_id: int, tier: str) -> ModelVersionRecord | None:
        """The newest version of a tier, or None."""
        with self._session() as s:
            q = (
                select(orm.ModelVersion)
                .where(orm.ModelVersion.project_id == project_id, orm.ModelVersion.tier == tier)
                .order_by(orm.ModelVersion.id.desc())
                .limit(1)
            )
            row = s.scalar(q)
            return _version(row) if row else None

    def count_versions(self, project_id: int, tier: str) -> int:
        """How many versions of this tier the project has (to number the next one)."""
        with self._session() as s:
            q = (
                select(func.count())
                .select_from(orm.ModelVersion)
                .where(orm.ModelVersion.project_id == project_id, orm.ModelVersion.tier == tier)
            )
            return int(s.scalar(q) or 0)


def _upsert_tasks(s: Session, project_id: int, items: dict[int, dict[str, Any]]) -> int:
    changed = 0
    existing = {t.id: t for t in s.scalars(select(orm.Task).where(orm.Task.id.in_(list(items))))}
    for tid, data in items.items():
        digest = text_hash(data)
        row = existing.get(tid)
        if row is None:
            s.add(orm.Task(id=tid, project_id=project_id, data=data, text_hash=digest))
        elif row.text_hash != digest:
            row.data, row.text_hash, row.project_id = data, digest, project_id
        else:
            continue
        changed += 1
    return changed


def _project(row: orm.Project) -> ProjectRecord:
    return ProjectRecord(
        id=row.id,
        label_config=row.label_config,
        config_hash=row.config_hash,
        ls_url=row.ls_url,
        ls_token=row.ls_token,
        current_version=row.current_version,
        pushed_tasks=tuple(row.pushed_tasks or ()),
        protected_tasks={int(t): float(ts) for t, ts in (row.protected_tasks or {}).items()},
        synced_at=row.synced_at or "",
        strategy=row.strategy or "",
    )


def _annotation(row: orm.Annotation) -> AnnotationRecord:
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
    )


def _version(row: orm.ModelVersion) -> ModelVersionRecord:
    return ModelVersionRecord(
        name=row.name,
        project_id=row.project_id,
        tier=row.tier,
        status=row.status,
        n_train=row.n_train,
        label_counts=dict(row.label_counts),
        metrics=dict(row.metrics),
        train_seconds=row.train_seconds,
        artifact_path=row.artifact_path,
        config_hash=row.config_hash,
        error=row.error,
        created_at=row.created_at,
    )
