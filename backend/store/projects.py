"""Projects: their labeling config, where their Label Studio is, what tagloop pushed there, and whether it is
still there (detached)."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import bindparam, select, update

from backend.store import models
from backend.store.db import Database
from backend.store.records import ProjectRecord

_PROJECTS = models.Base.metadata.tables["projects"]
_BY_ID = select(*_PROJECTS.c).where(_PROJECTS.c.id == bindparam("id"))  # built once: every /predict and label asks


class ProjectRepository:
    """The ``projects`` table."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def upsert(
        self, project_id: int, label_config: str, config_hash: str, *, ls_url: str = "", ls_token: str = ""
    ) -> ProjectRecord:
        """Create or update a project; empty ``ls_url``/``ls_token`` keep the stored values. A detached project that
        Label Studio calls again is attached again."""
        with self.db.session() as s:
            row = s.get(models.Project, project_id)
            if row is None:
                row = models.Project(
                    id=project_id, label_config=label_config, config_hash=config_hash, ls_url=ls_url, ls_token=ls_token
                )
                s.add(row)
            else:
                row.label_config, row.config_hash = label_config, config_hash
                row.ls_url = ls_url or row.ls_url
                row.ls_token = ls_token or row.ls_token
                row.detached_at, row.detached_reason, row.ls_failing_since = None, "", None
            s.flush()
            return _record(row)

    def get(self, project_id: int) -> ProjectRecord | None:
        """The project, or None."""
        with self.db.reads() as r:
            row = r.execute(_BY_ID, {"id": project_id}).first()
            return _record(row) if row else None

    def all(self) -> list[ProjectRecord]:
        """All projects, by id."""
        with self.db.session() as s:
            return [_record(r) for r in s.scalars(select(models.Project).order_by(models.Project.id))]

    def _set(self, project_id: int, **values: Any) -> None:
        with self.db.session() as s:
            s.execute(update(models.Project).where(models.Project.id == project_id).values(**values))

    def set_current_version(self, project_id: int, name: str | None) -> None:
        """Make ``name`` the served version of the project (None: zero-shot)."""
        self._set(project_id, current_version=name)

    def set_strategy(self, project_id: int, strategy: str) -> None:
        """Set the project's query strategy ("" for the default)."""
        self._set(project_id, strategy=strategy)

    def set_synced_at(self, project_id: int, watermark: str) -> None:
        """Record the catch-up watermark."""
        self._set(project_id, synced_at=watermark)

    def set_pushed_tasks(
        self,
        project_id: int,
        task_ids: Sequence[int],
        protected: Mapping[int, float] | None = None,
        *,
        ranking: tuple[str, str] | None = None,
    ) -> None:
        """Record which LS tasks now carry tagloop's pushed predictions, and which of them are protected (task id
        → since when: their predictions are kept by the next pushes); ``ranking``: the model version pushed and the
        strategy that ranked it."""
        values: dict[str, Any] = {"pushed_tasks": [int(t) for t in task_ids]}
        if ranking is not None:
            values["pushed_version"], values["pushed_strategy"] = ranking
        if protected is not None:
            values["protected_tasks"] = {str(t): float(ts) for t, ts in protected.items()}
        self._set(project_id, **values)

    def ls_reached(self, project_id: int) -> None:
        """A call to the project's Label Studio worked: forget earlier failures."""
        self._set(project_id, ls_failing_since=None)

    def ls_failed(self, project_id: int, reason: str, *, definite: bool, detach_after_s: float) -> ProjectRecord | None:
        """A call to the project's Label Studio failed. ``definite`` (Label Studio says the project does not exist)
        detaches it at once; other failures (connection refused, timeouts, 5xx) detach it once they have lasted
        ``detach_after_s``. Returns the project as it now is."""
        now = time.time()
        with self.db.session() as s:
            row = s.get(models.Project, project_id)
            if row is None:
                return None
            row.ls_failing_since = row.ls_failing_since or now
            if row.detached_at is None and (definite or now - row.ls_failing_since >= detach_after_s):
                row.detached_at, row.detached_reason = now, reason[:2000]
            s.flush()
            return _record(row)


def _record(row: Any) -> ProjectRecord:
    """From a ``Project`` or a row of its table's columns."""
    return ProjectRecord(
        id=row.id,
        label_config=row.label_config,
        config_hash=row.config_hash,
        ls_url=row.ls_url,
        ls_token=row.ls_token,
        current_version=row.current_version,
        pushed_tasks=tuple(row.pushed_tasks or ()),
        pushed_version=row.pushed_version,
        pushed_strategy=row.pushed_strategy,
        protected_tasks={int(t): float(ts) for t, ts in (row.protected_tasks or {}).items()},
        synced_at=row.synced_at or "",
        strategy=row.strategy or "",
        ls_failing_since=row.ls_failing_since,
        detached_at=row.detached_at,
        detached_reason=row.detached_reason or "",
    )
