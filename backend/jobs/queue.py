"""``JobQueue``: durable jobs in the database, claimed atomically by any worker process (the one state machine).

States: ``queued`` → ``running`` → ``done`` | ``failed``. A failed attempt goes back to ``queued`` with an
exponential backoff until ``max_attempts``; a ``running`` job whose heartbeat stops (its worker was killed) is
requeued by ``recover_stale``. A project runs at most one job per lane (``kinds.Lane``), and a request for a
(project, kind) that is already queued joins that job, so a burst of labels is one job. Redis, when used, only
wakes workers up (``backend.jobs.wakeup``): the database is the only record of a job.
"""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

from sqlalchemy import bindparam, select, update

from backend.jobs.kinds import PRIORITY, Lane, kinds_of, lane_of
from backend.jobs.records import JobRecord
from backend.store.models import Job, Project
from backend.store.sql_store import SqlStore

_JOBS = Job.__table__
_QUEUED = select(*_JOBS.c).where(  # built once: every webhook asks (a burst of labels joins the queued job)
    _JOBS.c.project_id == bindparam("project_id"), _JOBS.c.kind == bindparam("kind"), _JOBS.c.state == "queued"
)


def _record(row: Any) -> JobRecord:
    """From a ``Job`` or a row of its table's columns."""
    return JobRecord(
        id=row.id,
        project_id=row.project_id,
        kind=row.kind,
        state=row.state,
        reason=row.reason,
        attempts=row.attempts,
        max_attempts=row.max_attempts,
        run_after=row.run_after,
        progress=row.progress,
        message=row.message,
        error=row.error,
        worker=row.worker,
        heartbeat_at=row.heartbeat_at,
        created_at=row.created_at,
        started_at=row.started_at,
        finished_at=row.finished_at,
        result=dict(row.result or {}),
    )


class JobQueue:
    """Jobs on the store's database."""

    def __init__(self, store: SqlStore, *, max_attempts: int = 3, backoff_s: float = 5.0) -> None:
        self.store = store
        self.max_attempts = max_attempts
        self.backoff_s = backoff_s

    def enqueue(self, project_id: int, kind: str, reason: str, *, delay_s: float = 0.0) -> tuple[JobRecord, bool]:
        """Queue a job; returns (job, created). A queued job of the same project and kind is reused (and keeps the
        earlier of the two start times). ``delay_s``: not before this many seconds from now."""
        run_after = time.time() + delay_s
        with self.store.session() as s:
            existing = s.execute(_QUEUED, {"project_id": project_id, "kind": kind}).first()
            if existing is not None:
                joined = _record(existing)
                if run_after < joined.run_after:
                    s.execute(update(Job).where(Job.id == joined.id).values(run_after=run_after))
                    joined = replace(joined, run_after=run_after)
                return joined, False
            row = Job(
                project_id=project_id,
                kind=kind,
                lane=lane_of(kind).value,
                reason=reason[:200],
                max_attempts=self.max_attempts,
                state="queued",
                run_after=run_after,
                result={},
            )
            s.add(row)
            s.flush()
            return _record(row), True

    def runnable(self, lane: Lane | None = None, *, limit: int = 100) -> list[JobRecord]:
        """Queued jobs past their backoff whose project runs nothing in their lane, in claim order."""
        now = time.time()
        with self.store.session() as s:
            busy = {(p, ln) for p, ln in s.execute(select(Job.project_id, Job.lane).where(Job.state == "running"))}
            q = select(Job).where(Job.state == "queued", Job.run_after <= now)
            if lane is not None:
                q = q.where(Job.kind.in_([k.value for k in kinds_of(lane)]))
            rows = [r for r in s.scalars(q.order_by(Job.id)) if (r.project_id, r.lane) not in busy]
        order = {k.value: i for i, k in enumerate(PRIORITY)}
        rows.sort(key=lambda r: (order.get(r.kind, len(order)), r.id))
        return [_record(r) for r in rows[:limit]]

    def claim(self, worker: str, lane: Lane | None = None) -> JobRecord | None:
        """Atomically take the next runnable job (of ``lane``, or any)."""
        for job in self.runnable(lane, limit=5):
            claimed = self.claim_id(job.id, worker)
            if claimed is not None:
                return claimed
        return None

    def claim_id(self, job_id: int, worker: str) -> JobRecord | None:
        """Atomically take job ``job_id`` if it is queued, past its backoff, and its project runs nothing in its lane.

        The project's row is locked first (``SELECT … FOR UPDATE`` on PostgreSQL; SQLite serialises writers), so
        two workers claiming two jobs of one project and lane at the same moment cannot both succeed.
        """
        now = time.time()
        with self.store.session() as s:
            row = s.get(Job, job_id)
            if row is None or row.state != "queued" or row.run_after > now:
                return None
            s.execute(select(Project.id).where(Project.id == row.project_id).with_for_update())
            busy = s.scalar(
                select(Job.id).where(Job.project_id == row.project_id, Job.lane == row.lane, Job.state == "running")
            )
            if busy is not None:
                return None
            claimed = s.execute(
                update(Job)
                .where(Job.id == job_id, Job.state == "queued")
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
        with self.store.session() as s:
            s.execute(update(Job).where(Job.id == job_id).values(**values))

    def finish(self, job_id: int, result: dict[str, Any]) -> None:
        """The job is done; ``result`` is what it produced (JSON-ready)."""
        with self.store.session() as s:
            s.execute(
                update(Job)
                .where(Job.id == job_id)
                .values(state="done", result=result, progress=1.0, finished_at=time.time(), message="done")
            )

    def fail(self, job_id: int, error: str) -> JobRecord | None:
        """Record a failed attempt: requeue with backoff (5 s, 10 s, 20 s…) or give up after max_attempts."""
        with self.store.session() as s:
            row = s.get(Job, job_id)
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
        with self.store.session() as s:
            stale = s.scalars(select(Job.id).where(Job.state == "running", Job.heartbeat_at < limit)).all()
        for job_id in stale:
            self.fail(job_id, f"worker stopped heart-beating for more than {timeout_s:.0f} s")
        return len(stale)

    def get(self, job_id: int) -> JobRecord | None:
        """One job."""
        with self.store.session() as s:
            row = s.get(Job, job_id)
            return _record(row) if row else None

    def latest(self, project_id: int, kind: str) -> JobRecord | None:
        """The newest job of a project and kind."""
        with self.store.session() as s:
            row = s.scalar(
                select(Job).where(Job.project_id == project_id, Job.kind == kind).order_by(Job.id.desc()).limit(1)
            )
            return _record(row) if row else None

    def active(self, project_id: int | None = None) -> list[JobRecord]:
        """Queued and running jobs (of one project, or all), oldest first."""
        q = select(Job).where(Job.state.in_(("queued", "running")))
        if project_id is not None:
            q = q.where(Job.project_id == project_id)
        with self.store.session() as s:
            return [_record(r) for r in s.scalars(q.order_by(Job.id))]
