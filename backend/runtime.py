"""The processes tagloop runs: the web server (with its supervised worker by default) and worker processes.

- ``serve``: waitress on the app; with ``worker=process`` (the default) a ``Supervisor`` keeps one
  ``tagloop worker --supervised`` beside it, so training never runs in the web process (which serves with ONNX
  Runtime and never imports torch's training code); ``inprocess`` runs the worker threads in the web process;
  ``redis`` leaves the jobs to ``tagloop worker`` processes. SIGINT and SIGTERM stop the server and its worker.
- ``run_worker``: a ``WorkerPool`` (one thread per lane) woken by the supervisor's pipe, by Redis, or polling.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import sys
import threading
import time
from collections.abc import Iterator
from types import FrameType
from typing import Any

from backend.bootstrap import build
from backend.config import Settings
from backend.jobs.supervisor import Supervisor, die_with_parent
from backend.jobs.wakeup import CallbackWakeup, PipeWaiter, PipeWakeup, RedisWakeup, Waiter
from backend.jobs.worker import WorkerPool
from backend.placement import format_cpus, pin, plan
from backend.services import Services

log = logging.getLogger(__name__)

PRESENCE_EVERY_S = 5.0  # a scaled-out worker renews its presence key in Redis this often ...
PRESENCE_TTL_S = 20.0  # ... and it expires this long after a worker died without withdrawing it (kill -9)


@contextlib.contextmanager
def signals_as_interrupt() -> Iterator[None]:
    """Within the block SIGTERM and SIGHUP raise ``KeyboardInterrupt`` like SIGINT, so clean-up runs."""

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    previous = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def worker_command(settings: Settings, train_cpus: frozenset[int] | None = None) -> list[str]:
    """The supervised worker's command line (same interpreter, same data dir; the environment is inherited), with
    the training CPUs the web process planned (the worker inherits the web process's pinning, so it cannot plan
    them itself)."""
    command = [sys.executable, "-m", "backend", "worker", "--supervised", "--data-dir", str(settings.data_dir)]
    return command + (["--cpus", format_cpus(train_cpus)] if train_cpus else [])


def start_supervisor(services: Services, train_cpus: frozenset[int] | None = None) -> Supervisor | None:
    """With ``worker=process``: start the supervised worker process on ``train_cpus`` (None in the other modes)."""
    if services.settings.worker != "process" or not isinstance(services.wakeup, PipeWakeup):
        return None
    data = services.settings.data_dir
    command = worker_command(services.settings, train_cpus)
    supervisor = Supervisor(command, services.wakeup, log_path=data / "worker.log", pid_path=data / "worker.pid")
    supervisor.start()
    return supervisor


def serve(app: Any, services: Services, *, host: str, port: int, threads: int) -> None:
    """Serve ``app`` with waitress until SIGINT/SIGTERM, with the supervised worker; stop both on the way out."""
    from waitress import serve as waitress_serve

    serve_cpus, train_cpus = plan(services.settings)  # once, before pinning narrows what this process may use
    pin(serve_cpus, "web process")
    supervisor = start_supervisor(services, train_cpus)
    try:
        with signals_as_interrupt():
            waitress_serve(app, host=host, port=port, threads=threads, ident="tagloop")
    except KeyboardInterrupt:
        log.info("stopping")
    finally:
        if supervisor is not None:
            supervisor.stop()
        services.close()


def run_worker(
    settings: Settings, *, supervised: bool = False, burst: bool = False, cpus: frozenset[int] | None = None
) -> int:
    """A worker process: run jobs until stopped (SIGINT/SIGTERM; supervised: until the web process's pipe closes;
    ``burst``: until no job is queued or running). ``cpus``: planned by the supervising web process (else planned
    here). Returns the exit code."""
    if supervised:
        die_with_parent()
    train_cpus = cpus if cpus is not None else plan(settings)[1]
    pin(train_cpus, "worker process")
    services = build(settings, role="worker")
    waiter: Waiter | None
    if supervised:
        waiter = PipeWaiter()
    elif settings.worker == "redis":
        waiter = RedisWakeup(settings.redis_url, settings.resolved_database_url)
    else:
        waiter = None
    pool = WorkerPool(services, "supervised" if supervised else "worker", waiter)
    services.wakeup = CallbackWakeup(pool.nudge)
    stop = threading.Event()
    presence = waiter if isinstance(waiter, RedisWakeup) else None  # scaled out: the container health check reads it
    announced = 0.0
    pool.start()
    try:
        with signals_as_interrupt():
            while not stop.wait(0.5):
                if presence is not None and time.monotonic() - announced >= PRESENCE_EVERY_S:
                    presence.announce(ttl_s=PRESENCE_TTL_S)
                    announced = time.monotonic()
                if supervised and isinstance(waiter, PipeWaiter) and waiter.closed.is_set():
                    break  # the web process closed the pipe (or died)
                if burst and not services.jobs.active():
                    break
                if not pool.alive():
                    log.error("a worker thread died; exiting so the supervisor restarts the process")
                    return 1
    except KeyboardInterrupt:
        pass
    finally:
        started = time.monotonic()
        pool.stop(timeout=settings.job_stale_s)
        if presence is not None:
            presence.withdraw()
        log.info("worker stopped in %.1f s", time.monotonic() - started)
        services.close()
    return 0
