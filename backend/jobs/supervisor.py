"""The web process's supervision of its worker process (``tagloop serve``'s default ``process`` mode).

``Supervisor`` starts ``tagloop worker --supervised`` with a pipe on its stdin, hands the pipe to the
``PipeWakeup`` the web process wakes it through, and restarts it when it exits (a crash, a ``kill -9``), waiting
``restart_backoff_s`` (doubled up to a minute while it keeps dying at once). The restarted worker requeues the job
its predecessor was running (``recover_dead_local_workers``). ``stop`` closes the pipe (the worker finishes its
current step and exits), then sends SIGTERM and finally SIGKILL to its process group. The worker also asks the
kernel to kill it if the web process dies (``PR_SET_PDEATHSIG``), so no worker outlives ``tagloop serve``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from backend.jobs.wakeup import PipeWakeup

log = logging.getLogger(__name__)
MAX_BACKOFF_S = 60.0


class Supervisor:
    """Keeps one worker process running beside the web process."""

    def __init__(
        self,
        command: Sequence[str],
        wakeup: PipeWakeup,
        *,
        env: Mapping[str, str] | None = None,
        log_path: Path | None = None,
        pid_path: Path | None = None,
        restart_backoff_s: float = 1.0,
    ) -> None:
        self.command = list(command)
        self.wakeup = wakeup
        self.env = dict(env) if env is not None else None
        self.log_path = log_path
        self.pid_path = pid_path
        """Where the running worker's pid is written (operators and tests find it there)."""
        self.restart_backoff_s = restart_backoff_s
        self.restarts = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._watch, daemon=True, name="tagloop-supervisor")

    @property
    def pid(self) -> int | None:
        """The running worker's process id."""
        proc = self._proc
        return proc.pid if proc is not None and proc.poll() is None else None

    def start(self) -> None:
        """Start the worker and the thread that restarts it."""
        self._spawn()
        self._thread.start()

    def _spawn(self) -> None:
        with self._lock:
            if self._stop.is_set():
                return
            out = self.log_path.open("ab") if self.log_path is not None else None
            try:
                self._proc = subprocess.Popen(
                    self.command,
                    stdin=subprocess.PIPE,
                    stdout=out,
                    stderr=subprocess.STDOUT if out is not None else None,
                    env=self.env,
                    start_new_session=True,  # its own process group: signals reach its threads' children too
                )
            finally:
                if out is not None:
                    out.close()
            assert self._proc.stdin is not None
            fd = self._proc.stdin.fileno()
            os.set_blocking(fd, False)
            self.wakeup.attach(fd)
            self.wakeup.wake()  # look for queued jobs at once
            if self.pid_path is not None:
                self.pid_path.write_text(f"{self._proc.pid}\n")
            log.info("worker process %s started", self._proc.pid)

    def _watch(self) -> None:
        backoff = self.restart_backoff_s
        while not self._stop.is_set():
            proc = self._proc
            if proc is None:
                return
            started = time.monotonic()
            code = proc.wait()
            self.wakeup.attach(None)
            if self._stop.is_set():
                return
            lived = time.monotonic() - started
            backoff = self.restart_backoff_s if lived > MAX_BACKOFF_S else min(backoff * 2, MAX_BACKOFF_S)
            log.warning("worker process %s exited with %s after %.0f s; restarting", proc.pid, code, lived)
            if self._stop.wait(backoff if lived < 5 else self.restart_backoff_s):
                return
            self.restarts += 1
            self._spawn()

    def stop(self, timeout: float = 15.0) -> None:
        """Stop the worker: close its pipe (it exits after its current step), SIGTERM, then SIGKILL the group."""
        self._stop.set()
        with self._lock:
            proc = self._proc
        self.wakeup.attach(None)
        if proc is None:
            return
        if proc.stdin is not None:
            with contextlib.suppress(OSError):
                proc.stdin.close()
        try:
            proc.wait(timeout / 2)
        except subprocess.TimeoutExpired:
            _signal_group(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout / 2)
            except subprocess.TimeoutExpired:
                _signal_group(proc.pid, signal.SIGKILL)
                proc.wait()
        _signal_group(proc.pid, signal.SIGKILL)  # anything it left in its group
        if self.pid_path is not None:
            self.pid_path.unlink(missing_ok=True)
        if self._thread.is_alive():
            self._thread.join(timeout=5)


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def die_with_parent() -> None:
    """Linux: ask the kernel to SIGTERM this process when its parent dies (no orphaned worker)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGTERM)
    except (OSError, AttributeError):  # not Linux: the closed pipe still stops the worker
        log.debug("PR_SET_PDEATHSIG unavailable")
