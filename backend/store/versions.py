"""Model versions: what each version was trained on, its metrics, its artifact, and its stop-set predictions."""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, func, select, update

from backend.store import models
from backend.store.db import Database
from backend.store.records import ModelVersionRecord

_VERSIONS = models.ModelVersion.__table__
_CONFIG_HASH = select(_VERSIONS.c.config_hash).where(_VERSIONS.c.name == bindparam("name"))  # every /predict asks
_TRAINED_ON = (  # built once: every webhook asks
    select(_VERSIONS.c.n_train)
    .where(_VERSIONS.c.project_id == bindparam("project_id"), _VERSIONS.c.tier == bindparam("tier"))
    .order_by(_VERSIONS.c.id.desc())
    .limit(1)
)


class VersionRepository:
    """The ``model_versions`` table."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def add(self, rec: ModelVersionRecord, *, stop_set: dict[int, int] | None = None) -> ModelVersionRecord:
        """Record a new model version (``stop_set``: its predicted label index per stop-set task)."""
        with self.db.session() as s:
            row = models.ModelVersion(
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
                stop_set={str(t): int(label) for t, label in stop_set.items()} if stop_set is not None else None,
            )
            s.add(row)
            s.flush()
            return _record(row)

    def mark_pruned(self, name: str) -> None:
        """The version's artifacts were deleted: it stays in the history, no longer loadable."""
        with self.db.session() as s:
            s.execute(
                update(models.ModelVersion)
                .where(models.ModelVersion.name == name)
                .values(status="pruned", artifact_path="")
            )

    def update_metrics(self, name: str, extra: dict[str, Any]) -> None:
        """Merge ``extra`` into a version's metrics (e.g. measured after it was recorded)."""
        with self.db.session() as s:
            row = s.scalar(select(models.ModelVersion).where(models.ModelVersion.name == name))
            if row is not None:
                row.metrics = {**(row.metrics or {}), **extra}

    def get(self, name: str) -> ModelVersionRecord | None:
        """A version by name, or None."""
        with self.db.session() as s:
            row = s.scalar(select(models.ModelVersion).where(models.ModelVersion.name == name))
            return _record(row) if row else None

    def of_project(self, project_id: int) -> list[ModelVersionRecord]:
        """A project's versions, oldest first."""
        with self.db.session() as s:
            q = select(models.ModelVersion).where(models.ModelVersion.project_id == project_id)
            return [_record(r) for r in s.scalars(q.order_by(models.ModelVersion.id))]

    def latest(self, project_id: int, tier: str) -> ModelVersionRecord | None:
        """The newest version of a tier, or None."""
        with self.db.session() as s:
            q = (
                select(models.ModelVersion)
                .where(models.ModelVersion.project_id == project_id, models.ModelVersion.tier == tier)
                .order_by(models.ModelVersion.id.desc())
                .limit(1)
            )
            row = s.scalar(q)
            return _record(row) if row else None

    def config_hash(self, name: str) -> str | None:
        """The labeling config hash a version was trained for (None: no such version); one column, not the row with
        its metrics and stop-set predictions."""
        with self.db.reads() as r:
            found = r.scalar(_CONFIG_HASH, {"name": name})
            return None if found is None else str(found)

    def trained_on(self, project_id: int, tier: str) -> int:
        """How many labels the newest version of a tier was trained on (0: none yet); one column, for every webhook."""
        with self.db.session() as s:
            return int(s.scalar(_TRAINED_ON, {"project_id": project_id, "tier": tier}) or 0)

    def newest(self, project_id: int, tier: str, limit: int) -> list[ModelVersionRecord]:
        """The newest ``limit`` versions of a tier, newest first."""
        with self.db.session() as s:
            q = (
                select(models.ModelVersion)
                .where(models.ModelVersion.project_id == project_id, models.ModelVersion.tier == tier)
                .order_by(models.ModelVersion.id.desc())
                .limit(limit)
            )
            return [_record(r) for r in s.scalars(q)]

    def count(self, project_id: int, tier: str) -> int:
        """How many versions of this tier the project has (to number the next one)."""
        with self.db.session() as s:
            q = (
                select(func.count())
                .select_from(models.ModelVersion)
                .where(models.ModelVersion.project_id == project_id, models.ModelVersion.tier == tier)
            )
            return int(s.scalar(q) or 0)

    def last_stop_set_labels(self, project_id: int) -> int | None:
        """Labels (``n_train``) of the newest version that recorded stop-set predictions, or None."""
        with self.db.session() as s:
            q = (
                select(models.ModelVersion.n_train, models.ModelVersion.stop_set)
                .where(models.ModelVersion.project_id == project_id, models.ModelVersion.status != "rejected")
                .order_by(models.ModelVersion.id.desc())
            )
            for n, sset in s.execute(q):
                if isinstance(sset, dict):
                    return int(n)
        return None

    def stop_sets(self, project_id: int) -> list[tuple[str, int, dict[int, int]]]:
        """``[(version, n_train, {task id: predicted label index})]`` of the served (not rejected) versions that
        recorded stop-set predictions, oldest first."""
        with self.db.session() as s:
            q = (
                select(models.ModelVersion.name, models.ModelVersion.n_train, models.ModelVersion.stop_set)
                .where(models.ModelVersion.project_id == project_id, models.ModelVersion.status != "rejected")
                .order_by(models.ModelVersion.id)
            )
            rows = s.execute(q).all()
        return [(n, int(k), {int(t): int(v) for t, v in sset.items()}) for n, k, sset in rows if isinstance(sset, dict)]


def _record(row: models.ModelVersion) -> ModelVersionRecord:
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
