"""The ``Services`` container: everything a request or a job needs, built once per process.

``build_services`` opens the store and wires the model registry, the job queue and the bookkeeping written behind
responses. It imports no web framework and starts no worker: the entry points (``backend.bootstrap``) register the
job handlers, install the plug-ins and choose how queued jobs wake a worker.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from backend.config import Settings
from backend.hooks import Hooks
from backend.jobs.handlers import JobHandlers
from backend.jobs.queue import JobQueue
from backend.jobs.records import JobRecord
from backend.jobs.wakeup import NoWakeup, Wakeup
from backend.jobs.yielding import ACTIVITY_FILE, ServingActivity
from backend.models.embedding_cache import EmbeddingCache
from backend.models.encoder import Encoder
from backend.models.registry import ModelRegistry
from backend.store.records import Example, ProjectRecord
from backend.store.served_log import ServedLog
from backend.store.sql_store import SqlStore


@dataclass
class Services:
    """Settings, store, job queue, served models, the embedding cache, hooks and job handlers of one process."""

    settings: Settings
    store: SqlStore
    models: ModelRegistry
    jobs: JobQueue
    embeddings: EmbeddingCache
    """The one embedding cache (``models.embeddings``)."""
    served: ServedLog
    """/predict's bookkeeping (task data, served predictions, PSI scores), written behind the responses."""
    activity: ServingActivity
    """Marked by /predict; training on this machine pauses between steps while it is recent."""
    wakeup: Wakeup = field(default_factory=NoWakeup)
    """Tells a worker that a job was queued (chosen by the entry point)."""
    handlers: JobHandlers = field(default_factory=JobHandlers)
    hooks: Hooks = field(default_factory=Hooks)

    def request_job(self, project_id: int, kind: str, reason: str, *, delay_s: float = 0.0) -> str:
        """Queue a job (joining a queued one of the same project and kind) and wake a worker once it is committed."""
        _, created = self.jobs.enqueue(project_id, kind, reason, delay_s=delay_s)
        self.store.after_commit(self.wakeup.wake)
        return "queued" if created else "already_queued"

    def labeled_examples(self, project_id: int) -> list[Example]:
        """The project's training examples: per task its newest usable annotation, then the plug-ins' changes
        (``training_labels``: moderators' verdicts). The one reader every consumer uses."""
        examples = self.store.annotations.training_set(project_id)
        for hook in self.hooks.training_labels:
            examples = hook(self, project_id, examples)
        return examples

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
        self.request_job(project.id, "catchup", "periodic catch-up")
        return True

    def upkeep(self) -> None:
        """What an idle worker schedules for every project: due catch-ups and the plug-ins' periodic work."""
        for project in self.store.projects.all():
            self.catch_up_if_due(project)
            if not project.detached:
                for hook in self.hooks.upkeep:
                    hook(self, project)

    def wait_idle(self, timeout: float, project_id: int | None = None) -> bool:
        """Block until no job (of the project) is queued or running; False on timeout (CLI and tests)."""
        deadline = time.monotonic() + timeout
        while self.jobs.active(project_id):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.2)
        return True

    def latest_job(self, project_id: int, kind: str) -> JobRecord | None:
        """The newest job of a project and kind."""
        return self.jobs.latest(project_id, kind)

    def close(self) -> None:
        """Stop waking workers and release the models and the database."""
        self.wakeup.close()
        self.models.close()
        self.served.close()
        self.store.close()


def build_services(settings: Settings, *, base_encoder: Encoder | None = None) -> Services:
    """Open (and migrate) the store and wire models, the job queue and the served-log writer.

    ``base_encoder`` lets several services in one process (tests) share one loaded body.
    """
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = SqlStore(settings.resolved_database_url)
    store.migrate()
    models = ModelRegistry(settings, store, base=base_encoder)
    return Services(
        settings,
        store,
        models,
        JobQueue(store, max_attempts=settings.job_max_attempts, backoff_s=settings.job_backoff_s),
        models.embeddings,
        ServedLog(store, interval_s=settings.write_behind_ms / 1000),
        ServingActivity(settings.data_dir / ACTIVITY_FILE),
    )
