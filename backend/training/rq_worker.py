"""Scaled-out mode: training jobs dispatched through Redis with RQ, run by `tagloop worker` processes.

The database stays the only source of truth for a job (state, attempts, backoff, progress, the one-training-
per-project rule); RQ is the transport that hands a job id to one worker process:

- a web process queues a job in the database, then ``RQDispatcher.wake(job)`` enqueues the RQ job
  ``run_training_job(job_id)`` under the id ``tagloop-<store>-job-<id>-a<attempt>`` on the queue
  ``tagloop-training-<store>`` (``<store>`` tags the database, so stores sharing a Redis database stay apart; the id
  is unique: a burst of labels joins one database job and one RQ job);
- ``tagloop worker`` runs a ``TrainingRQWorker`` (RQ's ``SimpleWorker``: jobs run in the worker process itself,
  so loaded models stay loaded between jobs) that claims the database job by id and runs it with the same
  ``Worker.execute`` the in-process mode uses;
- a sweeper thread in the worker process requeues jobs of dead workers (heartbeat older than ``job_stale_s``),
  re-dispatches queued jobs whose RQ message was lost or whose backoff has passed, and schedules catch-ups and
  review scans.

A lost RQ message, a Redis restart or a ``kill -9`` of a worker therefore delays a job by at most
``worker_poll_s`` (or ``job_stale_s`` for a job that was running), and never loses or duplicates it.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from backend.store.jobs import JobRecord
from backend.training.worker import Worker, recover_dead_local_workers, worker_name

if TYPE_CHECKING:
    from backend.services import Services

log = logging.getLogger(__name__)
QUEUE = "tagloop-training"
JOB_TIMEOUT_S = 6 * 3600
FINISHED_STATES = ("finished", "failed", "stopped", "canceled")
_current: ContextVar[_WorkerContext] = ContextVar("tagloop_rq_worker")
"""The worker-process context a job function runs in (set by ``TrainingRQWorker`` around each job)."""


def _redis(url: str) -> Any:
    import redis

    return redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=30)


def store_namespace(database_url: str) -> str:
    """A short, stable tag of the store: stores that share one Redis database never see each other's jobs."""
    return hashlib.sha256(database_url.encode()).hexdigest()[:10]


def queue_name(database_url: str) -> str:
    """The RQ queue of one store's training jobs."""
    return f"{QUEUE}-{store_namespace(database_url)}"


def rq_job_id(job: JobRecord, database_url: str) -> str:
    """The RQ job id of a database job's current attempt in the store at ``database_url``."""
    return f"tagloop-{store_namespace(database_url)}-job-{job.id}-a{job.attempts}"


class RQDispatcher:
    """Enqueues RQ jobs for database jobs (the ``Waker`` of web processes in scaled-out mode)."""

    def __init__(self, services: Services) -> None:
        from rq import Queue

        self.services = services
        self.connection = _redis(services.settings.redis_url)
        self.queue = Queue(queue_name(services.settings.resolved_database_url), connection=self.connection)

    def wake(self, job: JobRecord | None = None) -> None:
        """Dispatch ``job`` (or every runnable job); a Redis failure is logged: the sweeper dispatches later."""
        try:
            if job is None:
                self.dispatch_runnable()
            elif job.state == "queued":
                self.dispatch(job)
        except Exception as exc:  # the job is safe in the database; a worker's sweeper picks it up
            log.warning("could not dispatch to Redis at %s: %s", self.services.settings.redis_url, exc)

    def dispatch(self, job: JobRecord) -> bool:
        """Enqueue the RQ job of ``job``'s current attempt unless one is queued or running; True if enqueued."""
        from rq.exceptions import DuplicateJobError, NoSuchJobError
        from rq.job import Job

        job_id = rq_job_id(job, self.services.settings.resolved_database_url)
        for _ in range(2):
            try:
                self.queue.enqueue_call(
                    "backend.training.rq_worker.run_training_job",
                    args=(job.id,),
                    job_id=job_id,
                    unique=True,
                    timeout=JOB_TIMEOUT_S,
                    result_ttl=3600,
                    failure_ttl=24 * 3600,
                    description=f"{job.tier} training of project {job.project_id} (job {job.id})",
                    at_front=job.tier == "fast",
                )
                return True
            except DuplicateJobError:
                try:
                    existing = Job.fetch(job_id, connection=self.connection)
                except NoSuchJobError:
                    continue
                if existing.get_status(refresh=True).value not in FINISHED_STATES:
                    return False
                existing.delete()  # it ran but the job is queued again (its project was busy): send it anew
        return False

    def dispatch_runnable(self) -> int:
        """Dispatch every runnable database job; the number enqueued."""
        return sum(self.dispatch(job) for job in self.services.jobs.runnable())

    def stop(self) -> None:
        """Close the Redis connection pool."""
        self.connection.close()


class _WorkerContext:
    """What a job function needs in the worker process: the ``Worker`` and the dispatcher."""

    def __init__(self, services: Services, name: str) -> None:
        self.worker = Worker(services, name, wait=lambda _timeout: None)
        self.dispatcher = RQDispatcher(services)


def run_training_job(job_id: int) -> str:
    """The RQ job function: claim database job ``job_id`` and run it (``skipped`` if it is not runnable now)."""
    context = _current.get()
    worker = context.worker
    job = worker.services.jobs.claim_id(job_id, worker.name)
    if job is None:
        current = worker.services.jobs.get(job_id)
        return f"skipped: job {job_id} is {current.state if current else 'gone'}"
    worker.execute(job)
    context.dispatcher.wake()  # the project's next queued job (or a retry) may be runnable now
    done = worker.services.jobs.get(job_id)
    return f"job {job_id}: {done.state if done else 'gone'} {done.version if done else ''}".strip()


def _worker_class() -> type:
    from rq import SimpleWorker

    class TrainingRQWorker(SimpleWorker):
        """RQ's in-process worker with tagloop's services made available to the job function."""

        tagloop_context: _WorkerContext

        def perform_job(self, job: Any, queue: Any, execution: Any) -> bool:
            token = _current.set(self.tagloop_context)
            try:
                return bool(super().perform_job(job, queue, execution))
            finally:
                _current.reset(token)

    return TrainingRQWorker


class Sweeper:
    """Periodic upkeep in a worker process: stale jobs, lost dispatches, retries past backoff, catch-ups."""

    def __init__(self, services: Services, dispatcher: RQDispatcher) -> None:
        self.services = services
        self.dispatcher = dispatcher
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="tagloop-sweeper")

    def sweep(self) -> None:
        """One round (each step logs and survives a database or Redis hiccup)."""
        services = self.services
        try:
            services.jobs.recover_stale(services.settings.job_stale_s)
            self.dispatcher.dispatch_runnable()
            services.upkeep()
        except Exception:
            log.exception("sweeper: one round failed; retrying in %.1f s", services.settings.worker_poll_s)

    def _run(self) -> None:
        while not self._stop.wait(self.services.settings.worker_poll_s):
            self.sweep()

    def start(self) -> None:
        """Sweep once now, then every ``worker_poll_s`` in a daemon thread."""
        self.sweep()
        self._thread.start()

    def stop(self) -> None:
        """Stop after the current round."""
        self._stop.set()
        self._thread.join(timeout=10)


def run_worker(services: Services, *, burst: bool = False) -> None:
    """`tagloop worker`: an RQ worker on the training queue plus the sweeper; returns after SIGTERM/SIGINT
    (RQ finishes the current job first: warm shutdown) or, with ``burst``, when the queue is empty."""
    name = worker_name("rq")
    requeued = recover_dead_local_workers(services)
    if requeued:
        log.info("requeued %d job(s) of workers on this host that are gone", requeued)
    context = _WorkerContext(services, name)
    sweeper = Sweeper(services, context.dispatcher)
    worker_cls = _worker_class()
    worker = worker_cls([context.dispatcher.queue], connection=context.dispatcher.connection, name=name)
    worker.tagloop_context = context
    sweeper.start()
    try:
        worker.work(burst=burst, logging_level="WARNING", with_scheduler=False)
    finally:
        sweeper.stop()
        context.dispatcher.stop()
