"""In-process background training: one worker thread, one job at a time, requests coalesce.

Jobs are keyed by (project, tier). A request for a key already queued joins it (a burst of labels gives one
job); fast-tier jobs run before queued slow-tier ones.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)


@dataclass
class JobState:
    """What a project's training is doing (kept in memory by the runner)."""

    state: str = "idle"
    """idle | queued | running"""
    reason: str = ""
    started_at: float | None = None
    last_version: str | None = None
    last_error: str | None = None
    last_seconds: float | None = None
    runs: int = 0
    failures: int = 0
    requests: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        """JSON-ready view."""
        return {
            "state": self.state,
            "reason": self.reason,
            "last_version": self.last_version,
            "last_error": self.last_error,
            "last_seconds": self.last_seconds,
            "runs": self.runs,
            "failures": self.failures,
            "running_for_s": round(time.time() - self.started_at, 1) if self.started_at else None,
        }


Key = tuple[int, str]


class TrainingRunner:
    """Runs ``train(project_id, tier) -> version`` on a daemon thread; never inside a request."""

    def __init__(self, train: Callable[[int, str], str], *, priority: str = "fast") -> None:
        self._train = train
        self._priority = priority
        self._cv = threading.Condition()
        self._queue: list[Key] = []
        self._states: dict[Key, JobState] = {}
        self._thread: threading.Thread | None = None
        self._stopping = False

    def request(self, project_id: int, reason: str, tier: str = "setfit") -> str:
        """Queue a ``tier`` training of the project; a request while one is queued joins it. Returns the state."""
        key = (project_id, tier)
        with self._cv:
            state = self._states.setdefault(key, JobState())
            if key in self._queue:
                return "already_queued"
            self._queue.append(key)
            if state.state != "running":
                state.state, state.reason = "queued", reason
            self._ensure_thread()
            self._cv.notify_all()
            return "queued"

    def status(self, project_id: int, tier: str = "setfit") -> dict[str, Any]:
        """The state of the project's ``tier`` jobs."""
        key = (project_id, tier)
        with self._cv:
            out = self._states.get(key, JobState()).as_json()
            out["queued"] = key in self._queue
            return out

    def wait_idle(self, timeout: float) -> bool:
        """Block until nothing is queued or running (for the CLI and tests)."""
        deadline = time.monotonic() + timeout
        with self._cv:
            while self._queue or any(s.state == "running" for s in self._states.values()):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cv.wait(left)
            return True

    def stop(self) -> None:
        """Stop the worker thread after the current job."""
        with self._cv:
            self._stopping = True
            self._cv.notify_all()

    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            self._thread = threading.Thread(target=self._loop, name="tagloop-trainer", daemon=True)
            self._thread.start()

    def _loop(self) -> None:
        while True:
            with self._cv:
                while not self._queue and not self._stopping:
                    self._cv.wait()
                if self._stopping:
                    return
                key = next((k for k in self._queue if k[1] == self._priority), self._queue[0])
                self._queue.remove(key)
                state = self._states.setdefault(key, JobState())
                state.state, state.started_at = "running", time.time()
            self._run(key, state)

    def _run(self, key: Key, state: JobState) -> None:
        started = time.perf_counter()
        try:
            version = self._train(*key)
            error = None
        except Exception as exc:  # recorded on the job state; the served model stays as it was
            log.exception("training %s of project %s failed", key[1], key[0])
            version, error = None, f"{type(exc).__name__}: {exc}"
        with self._cv:
            state.runs += 1
            state.last_seconds = round(time.perf_counter() - started, 2)
            state.started_at = None
            if error is None:
                state.last_version, state.last_error = version, None
            else:
                state.failures += 1
                state.last_error = error
            state.state = "queued" if key in self._queue else "idle"
            self._cv.notify_all()
