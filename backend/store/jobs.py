"""``JobQueue``: durable training jobs in the database, claimed atomically by any worker process.

States: ``queued`` → ``running`` → ``done`` | ``failed``. A failed attempt goes back to ``queued`` with an
exponential backoff until ``max_attempts``; a ``running`` job whose heartbeat stops (its worker was killed)
is requeued by ``recover_stale``. At most one job per project runs at a time, and a request for a
(project, tier) that is already queued joins that job.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from sqlalchemy import select, update

from backend.store import models as orm
from backend.store.sql_store import SqlStore


@dataclass(frozen=True)
class JobRecord:
    """A training job as stored."""

    id: int
    project_id: int
    tier: str
    state: str
    reason: str
    attempts: int
    max_attempts: int
    run_after: float
    progress: float
    message: str
    error: str
    version: str
    worker: str
    heartbeat_at: float | None
    created_at: float
    started_at: float | None
    finished_at: float | None

    def as_json(self) -> dict[str, object]:
        """JSON-ready view (times as Unix seconds)."""
        return dict(self.__dict__)


def _record(row: orm.TrainingJob) -> JobRecord:
    return JobRecord(**{name: getattr(row, name) for name in JobRecord.__dataclass_fields__})


class JobQueue:
    """Training jobs on the store's database."""

    def __init__(self, store: SqlStore, *, max_attempts: int = 3, backoff_s: float = 5.0) -> None:
        self.store = store
        self.max_attempts = max_attempts
        self.backoff_s = backoff_s

    def enqueue(self, project_id: int, tier: str, reason: str) -> tuple[JobRecord, bool]:
        """Queue a job; returns (job, created). A queued job of the same project and tier is reused."""
        with self.store.db.session() as s:
            existing = s.scalar(
                select(orm.TrainingJob).where(
                    orm.TrainingJob.project_id == project_id,
                    orm.TrainingJob.tier == tier,
                    orm.TrainingJob.state == "queued",
                )
            )
            if existing is not None:
                return _record(existing), False
            row = orm.TrainingJob(
                project_id=project_id, tier=tier, reason=reason[:200], max_attempts=self.max_attempts, state="queued"
            )
            s.add(row)
            s.flush()
            return _record(row), True

    def claim(self, worker: str, *, priority: str = "fast") -> JobRecord | None:
        """Atomically take the next runnable job (``priority`` tier first) of a project with none running."""
        for row in self.runnable(priority=priority, limit=5):
            claimed = self.claim_id(row.id, worker)
            if claimed is not None:
                return claimed
        return None

    def runnable(self, *, priority: str = "fast", limit: int = 100) -> list[JobRecord]:
        """Queued jobs past their backoff, of projects with no running job (``priority`` tier first)."""
        busy = select(orm.TrainingJob.project_id).where(orm.TrainingJob.state == "running")
        with self.store.db.session() as s:
            rows = s.scalars(
                select(orm.TrainingJob)
                .where(
                    orm.TrainingJob.state == "queued",
                    orm.TrainingJob.run_after <= time.time(),
                    orm.TrainingJob.project_id.not_in(busy),
                )
                .order_by((orm.TrainingJob.tier != priority), orm.TrainingJob.id)
                .limit(limit)
            ).all()
            return [_record(r) for r in rows]

    def claim_id(self, job_id: int, worker: str) -> JobRecord | None:
        """Atomically take job ``job_id`` if it is queued, past its backoff, and its project runs nothing.

        The project's row is locked first (``SELECT … FOR UPDATE`` on PostgreSQL; SQLite serialises writers), so
        two workers claiming two jobs of one project at the same moment cannot both succeed.
        """
        now = time.time()
        with self.store.db.session() as s:
            row = s.get(orm.TrainingJob, job_id)
            if row is None or row.state != "queued" or row.run_after > now:
                return None
            s.execute(select(orm.Project.id).where(orm.Project.id == row.project_id).with_for_update())
            busy = s.scalar(
                select(orm.TrainingJob.id).where(
                    orm.TrainingJob.project_id == row.project_id, orm.TrainingJob.state == "running"
                )
            )
            if busy is not None:
                return None
            claimed = s.execute(
                update(orm.TrainingJob)
                .where(orm.TrainingJob.id == job_id, orm.TrainingJob.state == "queued")
                .values(state="running", worker=worker, started_at=now, heartbeat_at=now, progress=0.0)
            )
            if getattr(claimed, "rowcount", 0) != 1:
                return None
            s.flush()
            s.refresh(row)
            return _record(row)

    def heartbeat(self, job_id: int, *, progress: float | None = None, message: str | None = None) -> None:
        """Mark the job alive, optionally with progress in [0, 1] and a short message."""
        values: dict[str, object] = {"heartbeat_at": time.time()}
        if progress is not None:
            values["progress"] = max(0.0, min(1.0, progress))
        if message is not None:
            values["message"] = message[:200]
        with self.store.db.session() as s:
            s.execute(update(orm.TrainingJob).where(orm.TrainingJob.id == job_id).values(**values))

    def finish(self, job_id: int, version: str) -> None:
        """The job produced ``version``."""
        with self.store.db.session() as s:
            s.execute(
                update(orm.TrainingJob)
                .where(orm.TrainingJob.id == job_id)
                .values(state="done", version=version, progress=1.0, finished_at=time.time(), message="done")
            )

    def fail(self, job_id: int, error: str) -> JobRecord | None:
        """Record a failed attempt: requeue with backoff (5 s, 10 s, 20 s…) or give up after max_attempts."""
        with self.store.db.session() as s:
            row = s.get(orm.TrainingJob, job_id)
            if row is None:
                return None
            row.attempts += 1
            row.error = error[-4000:]
            row.heartbeat_at = None
            if row.attempts >= row.max_attempts:
                row.state, row.finished_at, row.message = "failed", time.time(), "gave up"
            else:
                row.state = "queued"
                row.run_after = time.time() + self.backoff_s * 2 ** (row.attempts - 1)
                row.message = f"retry {row.attempts + 1}/{row.max_attempts} after backoff"
            s.flush()
            return _record(row)

    def recover_stale(self, timeout_s: float) -> int:
        """Requeue (as a failed attempt) running jobs whose worker stopped heart-beating for ``timeout_s``."""
        limit = time.time() - timeout_s
        with self.store.db.session() as s:
            stale = s.scalars(
                select(orm.TrainingJob.id).where(
                    orm.TrainingJob.state == "running", orm.TrainingJob.heartbeat_at < limit
                )
            ).all()
        for job_id in stale:
            self.fail(job_id, f"worker stopped heart-beating for more than {timeout_s:.0f} s")
        return len(stale)

    def get(self, job_id: int) -> JobRecord | None:
        """One job."""
        with self.store.db.session() as s:
            row = s.get(orm.TrainingJob, job_id)
            return _record(row) if row else None

    def latest(self, project_id: int, tier: str) -> JobRecord | None:
        """The newest job of a project and tier."""
        with self.store.db.session() as s:
            row = s.scalar(
                select(orm.TrainingJob)
                .where(orm.TrainingJob.project_id == project_id, orm.TrainingJob.tier == tier)
                .order_by(orm.TrainingJob.id.desc())
                .limit(1)
            )
            return _record(row) if row else None

    def active(self, project_id: int | None = None) -> list[JobRecord]:
        """Queued and running jobs (of one project, or all), oldest first."""
        q = select(orm.TrainingJob).where(orm.TrainingJob.state.in_(("queued", "running")))
        if project_id is not None:
            q = q.where(orm.TrainingJob.project_id == project_id)
        with self.store.db.session() as s:
            return [_record(r) for r in s.scalars(q.order_by(orm.TrainingJob.id))]
