"""The ``Services`` container: everything a request or a job needs, built once per process."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Protocol

from flask import current_app

from backend.config import Settings
from backend.models.embedding_cache import EmbeddingCache
from backend.models.encoder import Encoder
from backend.models.registry import ModelRegistry
from backend.store.jobs import JobQueue, JobRecord
from backend.store.records import ProjectRecord
from backend.store.served_log import ServedLog
from backend.store.sql_store import SqlStore
from backend.training.yielding import ACTIVITY_FILE, ServingActivity


class Waker(Protocol):
    """Tells workers that a job was queued (``job``; None: look for any runnable job)."""

    def wake(self, job: JobRecord | None = None) -> None: ...

    def stop(self) -> None: ...


@dataclass
class Services:
    """Settings, store, job queue, served models and the embedding cache of one process."""

    settings: Settings
    store: SqlStore
    models: ModelRegistry
    jobs: JobQueue
    embeddings: EmbeddingCache
    waker: Waker
    served: ServedLog
    """/predict's bookkeeping (task data, served predictions, PSI scores), written behind the responses."""
    activity: ServingActivity
    """Marked by /predict; training on this machine pauses between steps while it is recent."""

    def request_training(self, project_id: int, tier: str, reason: str) -> str:
        """Queue a job (joining a queued one of the same project and tier) and wake a worker once it is committed."""
        job, created = self.jobs.enqueue(project_id, tier, reason)
        self.store.after_commit(lambda: self.waker.wake(job))
        return "queued" if created else "already_queued"

    def catch_up_if_due(self, project: ProjectRecord) -> bool:
        """Queue a catch-up from Label Studio's API if the project has an LS address and the last one is older
        than ``catch_up_every_s`` (called by /setup, which LS calls often, and by idle workers)."""
        if project.detached or (not (project.ls_url and project.ls_token) and not self.settings.label_studio_url):
            return False
        last = self.jobs.latest(project.id, "catchup")
        if last is not None and last.state in ("queued", "running"):
            return False
        if last is not None and (last.finished_at or last.created_at) > time.time() - self.settings.catch_up_every_s:
            return False
        self.request_training(project.id, "catchup", "periodic catch-up")
        return True

    def review_scan_if_due(self, project: ProjectRecord) -> bool:
        """Queue the review job of a moderated project when its last one is older than ``review_scan_every_s``
        (called by idle workers: the periodic scan of served predictions, on top of the event-driven runs)."""
        every = self.settings.review_scan_every_s
        if every <= 0 or project.detached:
            return False
        last = self.jobs.latest(project.id, "review")
        if last is not None and (last.state in ("queued", "running") or (last.finished_at or 0) > time.time() - every):
            return False
        if last is None and project.current_version is None:
            return False  # nothing served yet: the first version's training queues the first review job
        from backend.labelstudio.label_config import parse_label_config
        from backend.review.moderation import moderation_control

        if moderation_control(parse_label_config(project.label_config), self.settings.harmful_label_set) is None:
            return False
        self.request_training(project.id, "review", "periodic review scan")
        return True

    def upkeep(self) -> None:
        """What an idle worker schedules for every project: due catch-ups and due review scans."""
        for project in self.store.projects.all():
            self.catch_up_if_due(project)
            self.review_scan_if_due(project)

    def wait_idle(self, timeout: float, project_id: int | None = None) -> bool:
        """Block until no job (of the project) is queued or running; False on timeout (CLI and tests)."""
        deadline = time.monotonic() + timeout
        while self.jobs.active(project_id):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.2)
        return True

    def close(self) -> None:
        """Stop the in-process worker and release the database."""
        self.waker.stop()
        self.models.close()
        self.served.close()
        self.store.close()


def build_services(settings: Settings, *, base_encoder: Encoder | None = None, worker: bool = True) -> Services:
    """Open (and migrate) the store and wire models, jobs and the worker of ``settings.worker``.

    ``base_encoder`` lets several apps in one process (tests) share one loaded body. ``worker=False`` builds
    services that only queue jobs, dispatched through Redis/RQ to `tagloop worker` processes.
    """

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = SqlStore(settings.resolved_database_url)
    store.migrate()
    models = ModelRegistry(settings, store, base=base_encoder)
    jobs = JobQueue(store, max_attempts=settings.job_max_attempts, backoff_s=settings.job_backoff_s)
    holder: list[Services] = []
    services = Services(
        settings,
        store,
        models,
        jobs,
        EmbeddingCache(store),
        _LazyInProcess(holder),
        ServedLog(store, interval_s=settings.write_behind_ms / 1000),
        ServingActivity(settings.data_dir / ACTIVITY_FILE),
    )
    holder.append(services)
    if settings.worker == "redis" or not worker:
        from backend.training.rq_worker import RQDispatcher

        services.waker = RQDispatcher(services)
    return services


class _LazyInProcess:
    """Creates the in-process worker on the first wake-up (so services that never queue start no thread)."""

    def __init__(self, holder: list[Services]) -> None:
        self._holder = holder
        self._worker: Waker | None = None

    def wake(self, job: JobRecord | None = None) -> None:
        from backend.training.worker import InProcessWorker

        if self._worker is None:
            self._worker = InProcessWorker(self._holder[0])
        self._worker.wake(job)

    def stop(self) -> None:
        if self._worker is not None:
            self._worker.stop()


def get_services() -> Services:
    """The services of the current Flask app."""
    services: Services = current_app.extensions["tagloop"]
    return services
