"""Workers: claim jobs from the database queue and run them through the registered handlers.

A ``WorkerPool`` runs one thread per lane (``kinds.Lane``): the fast lane (fast-tier heads, pushes, catch-ups,
review) is never held up by a slow training of the same project. Each thread claims jobs of its lane, runs them with
a heartbeat and progress, and records the result (or the failure, retried with backoff). One waiting thread turns a
wake-up (``backend.jobs.wakeup``) into a nudge for every lane; without one, each lane polls every
``worker_poll_s``. The pool runs inside the web process (``inprocess``), in the worker process ``tagloop serve``
supervises (``process``, the default), or in ``tagloop worker`` processes woken through Redis (``redis``).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from backend.jobs.handlers import JobContext
from backend.jobs.kinds import Lane
from backend.jobs.priority import lower_priority
from backend.jobs.records import JobRecord
from backend.jobs.wakeup import Waiter
from backend.jobs.yielding import YieldToServing

if TYPE_CHECKING:
    from backend.services import Services

log = logging.getLogger(__name__)


def worker_name(prefix: str) -> str:
    """host:pid:prefix, unique per process and lane."""
    return f"{socket.gethostname()}:{os.getpid()}:{prefix}"


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this host (one of another user counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


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


class Worker:
    """Runs the jobs of one lane, one at a time."""

    def __init__(self, services: Services, name: str, lane: Lane) -> None:
        self.services = services
        self.name = name
        self.lane = lane

    def run_once(self) -> JobRecord | None:
        """Requeue stale jobs, then claim and run one job of the lane; returns it (None when nothing was runnable)."""
        jobs = self.services.jobs
        jobs.recover_stale(self.services.settings.job_stale_s)
        job = jobs.claim(self.name, self.lane)
        if job is not None:
            self.execute(job)
        return job

    def execute(self, job: JobRecord) -> None:
        """Run a claimed job with a heartbeat; a failure is recorded (and retried), never raised."""
        services, jobs = self.services, self.services.jobs
        done = threading.Event()
        beat = threading.Thread(target=self._beat, args=(job.id, done), daemon=True, name=f"heartbeat-{job.id}")
        beat.start()
        settings = services.settings
        yielding = YieldToServing(
            services.activity, quiet_s=settings.training_yield_ms / 1000, max_share=settings.training_yield_share
        )

        def progress(fraction: float, message: str) -> None:
            jobs.heartbeat(job.id, progress=fraction, message=message)

        context = JobContext(job, progress, yielding if self.lane == Lane.SLOW else None)
        try:
            result = services.handlers.get(job.kind)(services, context)
        except Exception as exc:  # recorded on the job; the served version stays as it was
            log.exception("job %s (%s of project %s) failed", job.id, job.kind, job.project_id)
            failed = jobs.fail(job.id, f"{type(exc).__name__}: {exc}")
            log.info("job %s is now %s", job.id, failed.state if failed else "gone")
        else:
            jobs.finish(job.id, result)
        finally:
            done.set()
            beat.join(timeout=5)
            if yielding.paused_s >= 0.1:
                log.info("job %s paused %.1f s for requests being served", job.id, yielding.paused_s)

    def run_forever(self, stop: threading.Event, wait: Callable[[float], None]) -> None:
        """Loop until ``stop`` is set: run every runnable job, then wait for a nudge or ``worker_poll_s``."""
        configured = self.services.settings.training_priority
        # the slow lane at the configured priority (idle by default); the fast lane's short jobs at most at "low",
        # so the web process's requests (webhook acks, /predict) come first on a shared machine
        priority = configured if self.lane == Lane.SLOW else ("normal" if configured == "normal" else "low")
        applied = lower_priority(priority)
        log.info("worker %s started (priority %s)", self.name, applied)
        while not stop.is_set():
            try:
                job = self.run_once()
            except Exception:  # the database went away for a moment: log, wait, try again
                log.exception("worker %s: claiming a job failed", self.name)
                job = None
            if job is None:
                if self.lane == Lane.FAST:
                    self._upkeep()
                wait(self.services.settings.worker_poll_s)

    def _upkeep(self) -> None:
        """Webhooks Label Studio dropped (1 s timeout, no retry) are read back by a periodic catch-up; plug-ins
        schedule their periodic work (the review scan)."""
        try:
            self.services.upkeep()
        except Exception:  # the database went away for a moment: the next idle loop tries again
            log.exception("worker %s: scheduling periodic jobs failed", self.name)

    def _beat(self, job_id: int, done: threading.Event) -> None:
        interval = max(0.5, self.services.settings.job_stale_s / 6)
        while not done.wait(interval):
            try:
                self.services.jobs.heartbeat(job_id)
            except Exception:  # a missed beat is harmless unless it lasts job_stale_s
                log.warning("heartbeat for job %s failed", job_id)


class WorkerPool:
    """One worker thread per lane, nudged by one waiting thread (or polling when ``waiter`` is None)."""

    def __init__(self, services: Services, prefix: str, waiter: Waiter | None = None) -> None:
        self.services = services
        self.waiter = waiter
        self._stop = threading.Event()
        self._nudges = {lane: threading.Event() for lane in Lane}
        self.workers = [Worker(services, worker_name(f"{prefix}-{lane.value}"), lane) for lane in Lane]
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def start(self) -> None:
        """Requeue the jobs of dead local workers, then start the lane threads (and the waiting thread)."""
        with self._lock:
            if self._threads and all(t.is_alive() for t in self._threads):
                return
            requeued = recover_dead_local_workers(self.services)
            if requeued:
                log.info("requeued %d job(s) of workers on this host that are gone", requeued)
            self._threads = [
                threading.Thread(
                    target=w.run_forever,
                    args=(self._stop, self._waiter_for(w.lane)),
                    daemon=True,
                    name=f"tagloop-worker-{w.lane.value}",
                )
                for w in self.workers
            ]
            if self.waiter is not None:
                self._threads.append(threading.Thread(target=self._relay, daemon=True, name="tagloop-wakeup"))
            for thread in self._threads:
                thread.start()

    def _waiter_for(self, lane: Lane) -> Callable[[float], None]:
        nudge = self._nudges[lane]

        def wait(timeout: float) -> None:
            nudge.wait(timeout)
            nudge.clear()

        return wait

    def nudge(self) -> None:
        """Make every lane look for runnable jobs now."""
        for event in self._nudges.values():
            event.set()

    def _relay(self) -> None:
        assert self.waiter is not None
        while not self._stop.is_set():
            self.waiter.wait(self.services.settings.worker_poll_s)
            self.nudge()

    def stop(self, timeout: float | None = None) -> None:
        """Stop after the running jobs (wait up to ``timeout`` seconds for the threads)."""
        self._stop.set()
        self.nudge()
        for thread in self._threads:
            thread.join(timeout)

    def alive(self) -> bool:
        """Whether every lane thread runs."""
        return bool(self._threads) and all(t.is_alive() for t in self._threads)


class InProcessWorker:
    """The ``inprocess`` mode: a ``WorkerPool`` in the web process, started on the first wake-up."""

    def __init__(self, services: Services) -> None:
        self._pool = WorkerPool(services, "inprocess")

    def wake(self) -> None:
        """Start the pool on first use, then nudge it."""
        if not self._pool.alive():
            self._pool.start()
        self._pool.nudge()

    def close(self) -> None:
        """Stop after the current jobs."""
        self._pool.stop(timeout=0)
