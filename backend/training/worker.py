"""Workers: claim training jobs from the database queue and run them, in-process or as `tagloop worker`.

Both modes run a claimed job through ``Worker.execute``; they differ only in how a job reaches a worker: the
in-process worker (``InProcessWorker``, the default) is a thread woken by a ``threading.Event`` that the web app
sets when it queues a job; ``tagloop worker`` receives job ids from Redis through RQ (``rq_worker``). The database
is the only source of truth, so a lost wake-up costs at most ``worker_poll_s`` seconds, and a killed worker's job
is requeued by ``recover_stale``.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from backend.store.jobs import JobRecord
from backend.training.priority import lower_priority
from backend.training.yielding import YieldToServing

if TYPE_CHECKING:
    from backend.services import Services

log = logging.getLogger(__name__)
Progress = Callable[[float, str], None]


def worker_name(prefix: str) -> str:
    """host:pid:prefix, unique per process."""
    return f"{socket.gethostname()}:{os.getpid()}:{prefix}"


class Worker:
    """Runs jobs from ``services.jobs`` one at a time."""

    def __init__(self, services: Services, name: str, *, wait: Callable[[float], None]) -> None:
        self.services = services
        self.name = name
        self._wait = wait

    def run_once(self) -> JobRecord | None:
        """Requeue stale jobs, then claim and run one job; returns it (None when nothing was runnable)."""
        jobs = self.services.jobs
        jobs.recover_stale(self.services.settings.job_stale_s)
        job = jobs.claim(self.name)
        if job is not None:
            self.execute(job)
        return job

    def execute(self, job: JobRecord) -> None:
        """Run a claimed job with a heartbeat; a failure is recorded (and retried), never raised."""
        from backend.training.jobs import train_project

        jobs = self.services.jobs
        done = threading.Event()
        beat = threading.Thread(target=self._beat, args=(job.id, done), daemon=True, name=f"heartbeat-{job.id}")
        beat.start()

        settings = self.services.settings
        yield_to_serving = YieldToServing(
            self.services.activity, quiet_s=settings.training_yield_ms / 1000, max_share=settings.training_yield_share
        )

        def progress(fraction: float, message: str) -> None:
            jobs.heartbeat(job.id, progress=fraction, message=message)

        try:
            version = train_project(self.services, job.project_id, job.tier, progress=progress, pause=yield_to_serving)
        except Exception as exc:  # recorded on the job; the served version stays as it was
            log.exception("job %s (%s of project %s) failed", job.id, job.tier, job.project_id)
            failed = jobs.fail(job.id, f"{type(exc).__name__}: {exc}")
            log.info("job %s is now %s", job.id, failed.state if failed else "gone")
        else:
            jobs.finish(job.id, version)
        finally:
            done.set()
            beat.join(timeout=5)
            if yield_to_serving.paused_s >= 0.1:
                log.info("job %s paused %.1f s for requests being served", job.id, yield_to_serving.paused_s)

    def run_forever(self, stop: threading.Event) -> None:
        """Loop until ``stop`` is set: run every runnable job, then wait for a wake-up or ``poll_s``."""
        applied = lower_priority(self.services.settings.training_priority)
        log.info("worker %s started (training priority %s)", self.name, applied)
        requeued = recover_dead_local_workers(self.services)
        if requeued:
            log.info("requeued %d job(s) of workers on this host that are gone", requeued)
        while not stop.is_set():
            try:
                job = self.run_once()
            except Exception:  # the database went away for a moment: log, wait, try again
                log.exception("worker %s: claiming a job failed", self.name)
                job = None
            if job is None:
                self._catch_up_when_idle()
                self._wait(self.services.settings.worker_poll_s)

    def _catch_up_when_idle(self) -> None:
        """Webhooks Label Studio dropped (1 s timeout, no retry) are read back by a periodic catch-up; moderated
        projects get a periodic review scan."""
        try:
            self.services.upkeep()
        except Exception:  # the database went away for a moment: the next idle loop tries again
            log.exception("worker %s: scheduling catch-ups failed", self.name)

    def _beat(self, job_id: int, done: threading.Event) -> None:
        interval = max(0.5, self.services.settings.job_stale_s / 6)
        while not done.wait(interval):
            try:
                self.services.jobs.heartbeat(job_id)
            except Exception:  # a missed beat is harmless unless it lasts job_stale_s
                log.warning("heartbeat for job %s failed", job_id)


def recover_dead_local_workers(services: Services) -> int:
    """Requeue running jobs claimed by a process of this host that no longer exists (no need to wait for
    ``job_stale_s`` after a crash and restart)."""
    host = socket.gethostname()
    count = 0
    for job in services.jobs.active():
        parts = job.worker.split(":")
        if job.state != "running" or len(parts) < 3 or parts[0] != host or not parts[1].isdigit():
            continue
        if not pid_alive(int(parts[1])):
            services.jobs.fail(job.id, f"worker {job.worker} is gone (process {parts[1]} no longer exists)")
            count += 1
    return count


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this host (one of another user counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class InProcessWorker:
    """The default: one daemon thread in the web process, woken when the app queues a job."""

    def __init__(self, services: Services) -> None:
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._worker = Worker(services, worker_name("inprocess"), wait=self._wait)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def _wait(self, timeout: float) -> None:
        self._wake.wait(timeout)
        self._wake.clear()

    def wake(self, job: JobRecord | None = None) -> None:
        """Start the thread on first use, and wake it (it claims whatever is runnable, ``job`` included)."""
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._worker.run_forever, args=(self._stop,), daemon=True, name="tagloop-worker"
                )
                self._thread.start()
        self._wake.set()

    def stop(self) -> None:
        """Stop after the current job."""
        self._stop.set()
        self._wake.set()
